"""Deploy phase: by endpoint mode, an endpoint (realtime or serverless, with its
TTL schedule) or a Batch Transform job (mode ``none``), polled until ready."""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn

from pipeline_core import errors
from stacks.phases.common import (
    UNEXPECTED_STATUS_ERROR,
    JsonPath,
    PipelineFunctions,
    Steps,
    any_of,
)

#: Statuses that mean "poll again". The raw SageMaker in-progress statuses are
#: accepted too, as a safety net.
ENDPOINT_IN_PROGRESS: tuple[str, ...] = (
    "InProgress",
    "Pending",
    "Creating",
    "Updating",
    "SystemUpdating",
    "RollingBack",
)
TRANSFORM_IN_PROGRESS: tuple[str, ...] = ("InProgress", "Pending", "Stopping")

#: ``$.lifecycle`` before either branch fills its part: no TTL schedule (no
#: ``deletes_at``), no transform. (CDK drops JSON nulls from a Pass Result.)
LIFECYCLE_SEED: dict[str, object] = {
    "ttl": {"action": "none"},
    "transform": {"status": "Pending", "polls": 0, "seconds": 0},
}


def deploy_phase(steps: Steps, f: PipelineFunctions, then: sfn.IChainable) -> sfn.IChainable:
    """StartDeployment → EndpointMode → (endpoint | transform) → ``then``."""
    seed = steps.seed("StartDeployment", LIFECYCLE_SEED, "$.lifecycle")
    mode = (
        sfn.Choice(steps.scope, "EndpointMode")
        .when(
            sfn.Condition.string_equals("$.run.endpoint_mode", "none"),
            _transform_branch(steps, f, then),
        )
        .otherwise(_endpoint_branch(steps, f, then))
    )
    seed.next(mode)
    return seed


def _endpoint_branch(steps: Steps, f: PipelineFunctions, then: sfn.IChainable) -> sfn.IChainable:
    """Deploy → ScheduleEndpointTtl → poll DescribeEndpoint until InService."""
    deploy = steps.invoke(
        "Deploy",
        f.deploy,
        {"run": JsonPath.object_at("$.run"), "tuning": JsonPath.object_at("$.tuning")},
        "$.deploy",
        sagemaker_limits=True,
        endpoint_busy=True,
    )
    # Right after the create/update call: the endpoint is covered by its TTL
    # even if the run fails later.
    schedule = steps.invoke(
        "ScheduleEndpointTtl",
        f.schedule_ttl,
        {"run": JsonPath.object_at("$.run"), "deploy": JsonPath.object_at("$.deploy")},
        "$.lifecycle.ttl",
    )
    # Seeds the poll counter the describe handler carries forward.
    start_polling = steps.seed(
        "StartEndpointPolling", {"status": "Pending", "polls": 0}, "$.endpoint"
    )
    wait = steps.poll_wait("WaitForEndpoint")
    describe = steps.invoke(
        "DescribeEndpoint",
        f.describe_endpoint,
        {
            "run": JsonPath.object_at("$.run"),
            "deploy": JsonPath.object_at("$.deploy"),
            "endpoint": JsonPath.object_at("$.endpoint"),
        },
        "$.endpoint",
    )
    failed = steps.error_pass(
        "EndpointNotInService", errors.EndpointDeploymentFailedError.__name__, "$.endpoint"
    )
    unexpected = steps.error_pass("UnexpectedEndpointStatus", UNEXPECTED_STATUS_ERROR, "$.endpoint")
    rolled_back = steps.error_pass(
        "EndpointUpdateRolledBack", errors.EndpointUpdateRolledBackError.__name__, "$.endpoint"
    )
    status = (
        sfn.Choice(steps.scope, "EndpointStatus")
        .when(sfn.Condition.is_not_present("$.endpoint.status"), unexpected)
        .when(sfn.Condition.string_equals("$.endpoint.status", "InService"), then)
        .when(sfn.Condition.string_equals("$.endpoint.status", "Failed"), failed)
        .when(sfn.Condition.string_equals("$.endpoint.status", "UpdateFailed"), rolled_back)
        .when(any_of("$.endpoint.status", ENDPOINT_IN_PROGRESS), wait)
        .otherwise(unexpected)
    )
    deploy.next(schedule).next(start_polling).next(wait)
    wait.next(describe).next(status)
    return deploy


def _transform_branch(steps: Steps, f: PipelineFunctions, then: sfn.IChainable) -> sfn.IChainable:
    """StartTransform → poll DescribeTransform until Completed (no endpoint at all)."""
    start = steps.invoke(
        "StartTransform",
        f.start_transform,
        {
            "run": JsonPath.object_at("$.run"),
            "tuning": JsonPath.object_at("$.tuning"),
            "data": JsonPath.object_at("$.data"),
        },
        "$.deploy",
        sagemaker_limits=True,
    )
    wait = steps.poll_wait("WaitForTransform")
    describe = steps.invoke(
        "DescribeTransform",
        f.describe_transform,
        {
            "run": JsonPath.object_at("$.run"),
            "deploy": JsonPath.object_at("$.deploy"),
            "transform": JsonPath.object_at("$.lifecycle.transform"),
        },
        "$.lifecycle.transform",
    )
    failed = steps.error_pass(
        "TransformNotCompleted",
        errors.TransformJobFailedError.__name__,
        "$.lifecycle.transform",
    )
    unexpected = steps.error_pass(
        "UnexpectedTransformStatus", UNEXPECTED_STATUS_ERROR, "$.lifecycle.transform"
    )
    status = (
        sfn.Choice(steps.scope, "TransformStatus")
        .when(sfn.Condition.is_not_present("$.lifecycle.transform.status"), unexpected)
        .when(sfn.Condition.string_equals("$.lifecycle.transform.status", "Completed"), then)
        .when(any_of("$.lifecycle.transform.status", ("Failed", "Stopped")), failed)
        .when(any_of("$.lifecycle.transform.status", TRANSFORM_IN_PROGRESS), wait)
        .otherwise(unexpected)
    )
    start.next(wait)
    wait.next(describe).next(status)
    return start
