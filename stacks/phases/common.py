"""Building blocks every phase uses: Lambda tasks with the standard Retry and
Catch, Pass states that set ``$.error`` like a Catch, poll waits, and the
error-name constants (derived from :mod:`pipeline_core.errors`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from pipeline_core import errors

JsonPath = sfn.JsonPath

#: Transient Lambda service errors: retried quickly with backoff.
LAMBDA_TRANSIENT_ERRORS: tuple[str, ...] = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
#: Raised by handlers when an AWS API throttled them past boto3's own retries.
THROTTLING_ERROR = errors.ThrottlingError.__name__
RESOURCE_LIMIT_ERROR = errors.ResourceLimitError.__name__

#: Every named pipeline error (each PipelineError subclass), caught by name
#: before States.ALL. Derived, so a new error class is caught automatically.
NAMED_ERRORS: tuple[str, ...] = tuple(
    cls.__name__
    for cls in vars(errors).values()
    if isinstance(cls, type)
    and issubclass(cls, errors.PipelineError)
    and cls is not errors.PipelineError
)

#: Error name the Pass states use when a Choice meets a status it does not know.
UNEXPECTED_STATUS_ERROR = "UnexpectedStatusError"


@dataclass(frozen=True, kw_only=True)
class PipelineFunctions:
    """The Lambdas the state machine invokes (cleanup and the lifecycle
    functions outside the execution are not among them)."""

    validate_input: lambda_.IFunction
    convert: lambda_.IFunction
    start_tuning: lambda_.IFunction
    describe_tuning: lambda_.IFunction
    deploy: lambda_.IFunction
    describe_endpoint: lambda_.IFunction
    evaluate: lambda_.IFunction
    schedule_ttl: lambda_.IFunction
    start_transform: lambda_.IFunction
    describe_transform: lambda_.IFunction
    #: Sharded sources (stacks/phases/data.py); without them only the pickle path.
    convert_shard: lambda_.IFunction | None = None
    finalize_dataset: lambda_.IFunction | None = None


def any_of(path: str, values: Sequence[str]) -> sfn.Condition:
    conditions = [sfn.Condition.string_equals(path, v) for v in values]
    return conditions[0] if len(conditions) == 1 else sfn.Condition.or_(*conditions)


@dataclass(frozen=True, kw_only=True)
class BusyRetry:
    """Deploy's Retry on ``EndpointBusyError``: another execution holds the
    endpoint's lease (``endpoint_busy: wait``); the wait is bounded by these."""

    interval_seconds: int = 120
    max_attempts: int = 3
    backoff_rate: float = 1.0


class Steps:
    """Creates states in ``scope``; every task's Catch goes to ``notify_failure``."""

    def __init__(
        self,
        scope: Construct,
        notify_failure: sfn.IChainable,
        *,
        endpoint_busy_retry: BusyRetry | None = None,
    ) -> None:
        self.scope = scope
        self.notify_failure = notify_failure
        #: None: an endpoint busy with another deployment fails the run at once.
        self.endpoint_busy_retry = endpoint_busy_retry

    def invoke(
        self,
        state_name: str,
        function: lambda_.IFunction,
        payload: dict[str, object],
        result_path: str,
        *,
        sagemaker_limits: bool = False,
        endpoint_busy: bool = False,
    ) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self.scope,
            state_name,
            lambda_function=function,
            payload=sfn.TaskInput.from_object(payload),
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path=result_path,
        )
        task.add_retry(
            errors=list(LAMBDA_TRANSIENT_ERRORS),
            interval=Duration.seconds(2),
            max_attempts=6,
            backoff_rate=2,
            jitter_strategy=sfn.JitterType.FULL,
        )
        task.add_retry(
            errors=[THROTTLING_ERROR],
            interval=Duration.seconds(5),
            max_attempts=5,
            backoff_rate=2,
            jitter_strategy=sfn.JitterType.FULL,
        )
        if sagemaker_limits:
            # A quota (e.g. concurrent training instances) may free up when
            # another job ends; after these attempts the Catch reports it.
            task.add_retry(
                errors=[RESOURCE_LIMIT_ERROR],
                interval=Duration.minutes(1),
                max_attempts=3,
                backoff_rate=2,
            )
        if endpoint_busy and self.endpoint_busy_retry is not None:
            # Another execution is deploying to the endpoint; wait for its turn.
            busy = self.endpoint_busy_retry
            task.add_retry(
                errors=[errors.EndpointBusyError.__name__],
                interval=Duration.seconds(busy.interval_seconds),
                max_attempts=busy.max_attempts,
                backoff_rate=busy.backoff_rate,
            )
        task.add_catch(self.notify_failure, errors=list(NAMED_ERRORS), result_path="$.error")
        task.add_catch(self.notify_failure, errors=[sfn.Errors.ALL], result_path="$.error")
        return task

    def error_pass(self, state_name: str, error: str, detail_path: str) -> sfn.Pass:
        """Set ``$.error`` like a Catch would, for failures a Choice detects."""
        step = sfn.Pass(
            self.scope,
            state_name,
            parameters={
                "Error": error,
                "Cause": JsonPath.json_to_string(JsonPath.object_at(detail_path)),
            },
            result_path="$.error",
        )
        step.next(self.notify_failure)
        return step

    def poll_wait(self, state_name: str) -> sfn.Wait:
        return sfn.Wait(
            self.scope, state_name, time=sfn.WaitTime.seconds_path("$.run.poll_seconds")
        )

    def seed(self, state_name: str, result: dict[str, object], result_path: str) -> sfn.Pass:
        """A Pass that puts a fixed object at ``result_path`` (e.g. a poll counter at 0)."""
        return sfn.Pass(
            self.scope,
            state_name,
            result=sfn.Result.from_object(result),
            result_path=result_path,
        )

    @staticmethod
    def add_sns_retry(task: tasks.SnsPublish) -> None:
        task.add_retry(
            errors=[sfn.Errors.TASKS_FAILED],
            interval=Duration.seconds(2),
            max_attempts=3,
            backoff_rate=2,
        )
