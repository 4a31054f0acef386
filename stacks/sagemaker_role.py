"""The execution role SageMaker assumes for training jobs and endpoints."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.trust import sagemaker_principal


class SageMakerExecutionRole(Construct):
    """A role trusted by SageMaker only, acting for this account and region
    (stacks.trust). The stack grants what it may touch."""

    def __init__(self, scope: Construct, construct_id: str, *, description: str) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=sagemaker_principal(self),
            description=description,
        )
