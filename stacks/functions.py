"""One pipeline Lambda: its own role, its own log group, tracing on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

#: The newest Python runtime this aws-cdk-lib knows.
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
SERVICE_NAME = "mnist-ll-pipeline"


@dataclass(frozen=True, kw_only=True)
class FunctionSpec:
    """What differs between the pipeline's Lambdas."""

    module: str
    description: str
    memory_mb: int = 256
    timeout_seconds: int = 60
    ephemeral_storage_mb: int = 512

    @property
    def handler(self) -> str:
        return f"lambdas.{self.module}.handler"


class PipelineFunction(Construct):
    """A Python arm64 Lambda from the shared asset, with least-privilege role.

    The role starts with nothing but write access to the function's own log
    group and X-Ray; the stack grants the rest.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        code: lambda_.Code,
        environment: Mapping[str, str],
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"mnist-ll {spec.module} Lambda",
        )
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=removal_policy
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=code,
            handler=spec.handler,
            role=self.role,
            memory_size=spec.memory_mb,
            ephemeral_storage_size=Size.mebibytes(spec.ephemeral_storage_mb),
            timeout=Duration.seconds(spec.timeout_seconds),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            environment={**environment, "POWERTOOLS_SERVICE_NAME": SERVICE_NAME},
        )
        self.log_group.grant_write(self.role)
