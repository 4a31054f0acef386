"""Trust policies of the roles AWS services assume: the service may assume
the role only on behalf of this stack's account (``aws:SourceAccount``) and
of resources in its region (``aws:SourceArn``), so another account's resource
can never make the service act with our role (the confused deputy).

SageMaker and EventBridge Scheduler both set these keys when they assume a
role. Scheduler's ``aws:SourceArn`` is the schedule *group* (never a single
schedule); SageMaker's is the job, model or endpoint the role serves.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct


def confined_service(scope: Construct, service: str, source_arn: str) -> iam.ServicePrincipal:
    """``service`` (``sagemaker.amazonaws.com``) acting for ``source_arn`` in this account."""
    return iam.ServicePrincipal(
        service,
        conditions={
            "StringEquals": {"aws:SourceAccount": Stack.of(scope).account},
            "ArnLike": {"aws:SourceArn": source_arn},
        },
    )


def sagemaker_principal(scope: Construct) -> iam.ServicePrincipal:
    """SageMaker, for any SageMaker resource of this account and region: the
    execution role serves tuning/training jobs, models, endpoints and
    transform jobs, whose names are made at run time."""
    stack = Stack.of(scope)
    return confined_service(
        scope,
        "sagemaker.amazonaws.com",
        f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:*",
    )


def scheduler_principal(scope: Construct, group: str = "default") -> iam.ServicePrincipal:
    """EventBridge Scheduler, for schedules of ``group`` in this account and region."""
    stack = Stack.of(scope)
    return confined_service(
        scope,
        "scheduler.amazonaws.com",
        f"arn:{stack.partition}:scheduler:{stack.region}:{stack.account}:schedule-group/{group}",
    )
