"""The pipeline's state machine, exactly the flow of docs/DESIGN.md.

JSONPath only (no JSONata): the local run executes this very definition in
moto's ASL interpreter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from pipeline_core import errors
from stacks.data_phase import data_phase

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

#: RouteFailure: error name → Fail state. Anything else ends in PipelineFailed.
FAILURE_ROUTES: dict[str, tuple[str, ...]] = {
    "InvalidInput": (
        errors.InvalidInputError.__name__,
        errors.TooFewTrainObjectsError.__name__,
    ),
    "InvalidDataset": (
        errors.InvalidDatasetError.__name__,
        errors.SourceNotFoundError.__name__,
        errors.SourceAccessDeniedError.__name__,
    ),
    "TuningFailed": (errors.TuningJobFailedError.__name__,),
    "QualityGateFailed": (errors.QualityGateFailedError.__name__,),
    "EndpointFailed": (
        errors.EndpointDeploymentFailedError.__name__,
        errors.EndpointBusyError.__name__,
    ),
}
DEFAULT_FAILURE = "PipelineFailed"

#: Statuses (normalised by the describe handlers) that mean "poll again". The
#: raw SageMaker in-progress statuses are accepted too, as a safety net.
TUNING_IN_PROGRESS: tuple[str, ...] = ("InProgress", "Stopping")
ENDPOINT_IN_PROGRESS: tuple[str, ...] = (
    "InProgress",
    "Pending",
    "Creating",
    "Updating",
    "SystemUpdating",
    "RollingBack",
)


def summary_parameters() -> dict[str, object]:
    """Parameters of the Summarize Pass state: the compact execution output
    (and the success notice), built from the final state, which it replaces."""
    return {
        "execution_name": JsonPath.execution_name,
        "target_digit": JsonPath.number_at("$.run.target_digit"),
        "confusion_matrix": JsonPath.object_at("$.evaluation.confusion_matrix"),
        "metrics": JsonPath.object_at("$.evaluation.metrics"),
        "single_prediction": JsonPath.object_at("$.evaluation.single_prediction"),
        "report_uri": JsonPath.string_at("$.evaluation.report_uri"),
        "tuning_job": JsonPath.string_at("$.tuning.name"),
        "best_training_job": JsonPath.object_at("$.tuning.best"),
        "endpoint_name": JsonPath.string_at("$.deploy.endpoint_name"),
        "endpoint_config_name": JsonPath.string_at("$.deploy.endpoint_config_name"),
    }


@dataclass(frozen=True, kw_only=True)
class PipelineFunctions:
    """The Lambdas the state machine invokes (cleanup is not one of them)."""

    validate_input: lambda_.IFunction
    convert: lambda_.IFunction
    start_tuning: lambda_.IFunction
    describe_tuning: lambda_.IFunction
    deploy: lambda_.IFunction
    describe_endpoint: lambda_.IFunction
    evaluate: lambda_.IFunction
    #: Sharded sources (stacks/data_phase.py); without them only the pickle path.
    convert_shard: lambda_.IFunction | None = None
    finalize_dataset: lambda_.IFunction | None = None


def _any_of(path: str, values: Sequence[str]) -> sfn.Condition:
    conditions = [sfn.Condition.string_equals(path, v) for v in values]
    return conditions[0] if len(conditions) == 1 else sfn.Condition.or_(*conditions)


class PipelineStateMachine(Construct):
    """Validate → convert → tune (poll) → gate → deploy (poll) → evaluate → summarize → notify."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: PipelineFunctions,
        topic: sns.ITopic,
        log_group_name: str,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        timeout: Duration,
        data_bucket: s3.IBucket | None = None,
        map_max_concurrency: int = 40,
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions = functions
        self._data_bucket = data_bucket
        self._map_max_concurrency = map_max_concurrency
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=log_group_name,
            retention=log_retention,
            removal_policy=removal_policy,
        )
        self._topic = topic
        self._notify_failure = self._failure_chain()
        definition = self._definition()
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=timeout,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ALL,
                include_execution_data=True,
            ),
            comment="MNIST Linear Learner: is this digit the target digit?",
        )

    # -- building blocks --------------------------------------------------------

    def _invoke(
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
            self,
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
        if endpoint_busy:
            # Another update of the same endpoint is running; it ends on its own.
            task.add_retry(
                errors=[errors.EndpointBusyError.__name__],
                interval=Duration.minutes(2),
                max_attempts=3,
                backoff_rate=2,
            )
        task.add_catch(self._notify_failure, errors=list(NAMED_ERRORS), result_path="$.error")
        task.add_catch(self._notify_failure, errors=[sfn.Errors.ALL], result_path="$.error")
        return task

    def _error_pass(self, state_name: str, error: str, detail_path: str) -> sfn.Pass:
        """Set ``$.error`` like a Catch would, for failures a Choice detects."""
        step = sfn.Pass(
            self,
            state_name,
            parameters={
                "Error": error,
                "Cause": JsonPath.json_to_string(JsonPath.object_at(detail_path)),
            },
            result_path="$.error",
        )
        step.next(self._notify_failure)
        return step

    def _failure_chain(self) -> tasks.SnsPublish:
        """NotifyFailure → RouteFailure → the named Fail states."""
        route = sfn.Choice(self, "RouteFailure")
        for state_name, error_names in FAILURE_ROUTES.items():
            route.when(_any_of("$.error.Error", error_names), self._fail(state_name))
        route.otherwise(self._fail(DEFAULT_FAILURE))

        notify = tasks.SnsPublish(
            self,
            "NotifyFailure",
            topic=self._topic,
            subject="MNIST Linear Learner pipeline FAILED",
            message=sfn.TaskInput.from_object(
                {
                    "status": "FAILED",
                    "execution": JsonPath.execution_name,
                    "error": JsonPath.string_at("$.error.Error"),
                    "cause": JsonPath.string_at("$.error.Cause"),
                }
            ),
            result_path=JsonPath.DISCARD,
        )
        self._add_sns_retry(notify)
        # A failed publish must still end in the right Fail state.
        notify.add_catch(route, errors=[sfn.Errors.ALL], result_path="$.notify_error")
        notify.next(route)
        return notify

    def _fail(self, state_name: str) -> sfn.Fail:
        return sfn.Fail(
            self,
            state_name,
            error_path=JsonPath.string_at("$.error.Error"),
            cause_path=JsonPath.string_at("$.error.Cause"),
        )

    @staticmethod
    def _add_sns_retry(task: tasks.SnsPublish) -> None:
        task.add_retry(
            errors=[sfn.Errors.TASKS_FAILED],
            interval=Duration.seconds(2),
            max_attempts=3,
            backoff_rate=2,
        )

    def _poll_seconds(self) -> sfn.WaitTime:
        return sfn.WaitTime.seconds_path("$.run.poll_seconds")

    # -- the flow ---------------------------------------------------------------

    def _definition(self) -> sfn.IChainable:
        f = self.functions

        validate = self._invoke(
            "ValidateInput",
            f.validate_input,
            {"input": JsonPath.entire_payload, "execution_name": JsonPath.execution_name},
            "$.run",
        )
        convert = self._invoke(
            "ConvertDataset", f.convert, {"run": JsonPath.object_at("$.run")}, "$.data"
        )
        start_tuning = self._invoke(
            "StartTuning",
            f.start_tuning,
            {"run": JsonPath.object_at("$.run"), "data": JsonPath.object_at("$.data")},
            "$.tuning",
            sagemaker_limits=True,
        )
        wait_tuning = sfn.Wait(self, "WaitForTuning", time=self._poll_seconds())
        describe_tuning = self._invoke(
            "DescribeTuning",
            f.describe_tuning,
            {"run": JsonPath.object_at("$.run"), "tuning": JsonPath.object_at("$.tuning")},
            "$.tuning",
        )
        tuning_failed = self._error_pass(
            "TuningJobNotCompleted", errors.TuningJobFailedError.__name__, "$.tuning"
        )
        tuning_unexpected = self._error_pass(
            "UnexpectedTuningStatus", UNEXPECTED_STATUS_ERROR, "$.tuning"
        )
        gate_failed = self._error_pass(
            "QualityGateNotMet", errors.QualityGateFailedError.__name__, "$.tuning"
        )

        deploy = self._invoke(
            "Deploy",
            f.deploy,
            {"run": JsonPath.object_at("$.run"), "tuning": JsonPath.object_at("$.tuning")},
            "$.deploy",
            sagemaker_limits=True,
            endpoint_busy=True,
        )
        # Seeds the poll counter the describe handler carries forward.
        start_polling = sfn.Pass(
            self,
            "StartEndpointPolling",
            result=sfn.Result.from_object({"status": "Pending", "polls": 0}),
            result_path="$.endpoint",
        )
        wait_endpoint = sfn.Wait(self, "WaitForEndpoint", time=self._poll_seconds())
        describe_endpoint = self._invoke(
            "DescribeEndpoint",
            f.describe_endpoint,
            {
                "run": JsonPath.object_at("$.run"),
                "deploy": JsonPath.object_at("$.deploy"),
                "endpoint": JsonPath.object_at("$.endpoint"),
            },
            "$.endpoint",
        )
        endpoint_failed = self._error_pass(
            "EndpointNotInService", errors.EndpointDeploymentFailedError.__name__, "$.endpoint"
        )
        endpoint_unexpected = self._error_pass(
            "UnexpectedEndpointStatus", UNEXPECTED_STATUS_ERROR, "$.endpoint"
        )
        evaluate = self._invoke(
            "Evaluate",
            f.evaluate,
            {
                "run": JsonPath.object_at("$.run"),
                "data": JsonPath.object_at("$.data"),
                "deploy": JsonPath.object_at("$.deploy"),
            },
            "$.evaluation",
        )
        # No result_path: the compact summary replaces the state and is the output.
        summarize = sfn.Pass(self, "Summarize", parameters=summary_parameters())
        succeeded = sfn.Succeed(self, "Succeeded")
        notify_success = tasks.SnsPublish(
            self,
            "NotifySuccess",
            topic=self._topic,
            subject="MNIST Linear Learner pipeline succeeded",
            message=sfn.TaskInput.from_json_path_at("$"),
            result_path=JsonPath.DISCARD,
        )
        self._add_sns_retry(notify_success)
        # The model is deployed and evaluated; a lost notice must not undo that
        # (the output is then the summary plus $.notify_error).
        notify_success.add_catch(succeeded, errors=[sfn.Errors.ALL], result_path="$.notify_error")

        tuning_status = (
            sfn.Choice(self, "TuningStatus")
            .when(sfn.Condition.is_not_present("$.tuning.status"), tuning_unexpected)
            .when(
                sfn.Condition.string_equals("$.tuning.status", "Completed"),
                self._gate(deploy, gate_failed),
            )
            .when(_any_of("$.tuning.status", ("Failed", "Stopped")), tuning_failed)
            .when(_any_of("$.tuning.status", TUNING_IN_PROGRESS), wait_tuning)
            .otherwise(tuning_unexpected)
        )
        endpoint_status = (
            sfn.Choice(self, "EndpointStatus")
            .when(sfn.Condition.is_not_present("$.endpoint.status"), endpoint_unexpected)
            .when(sfn.Condition.string_equals("$.endpoint.status", "InService"), evaluate)
            .when(_any_of("$.endpoint.status", ("Failed", "UpdateFailed")), endpoint_failed)
            .when(_any_of("$.endpoint.status", ENDPOINT_IN_PROGRESS), wait_endpoint)
            .otherwise(endpoint_unexpected)
        )

        wait_tuning.next(describe_tuning).next(tuning_status)
        deploy.next(start_polling).next(wait_endpoint)
        wait_endpoint.next(describe_endpoint).next(endpoint_status)
        evaluate.next(summarize).next(notify_success).next(succeeded)
        return validate.next(self._data_phase(convert)).next(start_tuning).next(wait_tuning)

    def _data_phase(self, convert: tasks.LambdaInvoke) -> sfn.IChainable:
        f = self.functions
        if f.convert_shard is None or f.finalize_dataset is None or self._data_bucket is None:
            return convert
        return data_phase(
            self,
            invoke=lambda name, fn, payload, result_path: self._invoke(
                name, fn, payload, result_path
            ),
            convert=convert,
            convert_shard=f.convert_shard,
            finalize=f.finalize_dataset,
            bucket=self._data_bucket,
            max_concurrency=self._map_max_concurrency,
            transient_errors=(*LAMBDA_TRANSIENT_ERRORS, THROTTLING_ERROR),
        )

    def _gate(self, deploy: sfn.IChainable, gate_failed: sfn.IChainable) -> sfn.Choice:
        # Checked for presence first: a missing flag fails the gate, never errors.
        return (
            sfn.Choice(self, "QualityGate")
            .when(sfn.Condition.is_not_present("$.tuning.gate.passed"), gate_failed)
            .when(sfn.Condition.boolean_equals("$.tuning.gate.passed", True), deploy)
            .otherwise(gate_failed)
        )
