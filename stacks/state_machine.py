"""The pipeline's state machine, exactly the flow of docs/DESIGN.md.

JSONPath only (no JSONata): the local run executes this very definition in
moto's ASL interpreter. The flow is assembled from the phases in
:mod:`stacks.phases` (data, tuning, deploy, evaluate, end handling).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.phases.common import (
    LAMBDA_TRANSIENT_ERRORS,
    NAMED_ERRORS,
    RESOURCE_LIMIT_ERROR,
    THROTTLING_ERROR,
    UNEXPECTED_STATUS_ERROR,
    BusyRetry,
    JsonPath,
    PipelineFunctions,
    Steps,
)
from stacks.phases.data import ShardSource, data_phase
from stacks.phases.deploy import ENDPOINT_IN_PROGRESS, deploy_phase
from stacks.phases.end import DEFAULT_FAILURE, FAILURE_ROUTES, failure_chain
from stacks.phases.evaluate import evaluate_phase, summary_parameters
from stacks.phases.tuning import TUNING_IN_PROGRESS, tuning_phase

__all__ = [
    "DEFAULT_FAILURE",
    "ENDPOINT_IN_PROGRESS",
    "FAILURE_ROUTES",
    "LAMBDA_TRANSIENT_ERRORS",
    "NAMED_ERRORS",
    "RESOURCE_LIMIT_ERROR",
    "THROTTLING_ERROR",
    "TUNING_IN_PROGRESS",
    "UNEXPECTED_STATUS_ERROR",
    "BusyRetry",
    "PipelineFunctions",
    "PipelineStateMachine",
    "summary_parameters",
]


#: Deploy waits for a busy endpoint by default (``endpoint_busy: wait``).
DEFAULT_BUSY_RETRY = BusyRetry()


class PipelineStateMachine(Construct):
    """Validate → data → tuning (gate) → deploy (endpoint or transform) → evaluate → notify."""

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
        endpoint_busy_retry: BusyRetry | None = DEFAULT_BUSY_RETRY,
        data_bucket: s3.IBucket | None = None,
        map_max_concurrency: int = 40,
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions = functions
        #: None: an endpoint busy with another deployment fails the run at once.
        self.endpoint_busy_retry = endpoint_busy_retry
        # Sharded sources: the bucket the Distributed Map lists, its concurrency.
        self._shards = (
            None if data_bucket is None else ShardSource(data_bucket, map_max_concurrency)
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=log_group_name,
            retention=log_retention,
            removal_policy=removal_policy,
        )
        self._topic = topic
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

    def _definition(self) -> sfn.IChainable:
        """Back to front, so each phase is built knowing where it continues."""
        f = self.functions
        steps = Steps(
            self,
            failure_chain(self, self._topic),
            endpoint_busy_retry=self.endpoint_busy_retry,
        )
        evaluate = evaluate_phase(steps, f, self._topic)
        deploy = deploy_phase(steps, f, evaluate)
        tuning = tuning_phase(steps, f, deploy)
        data = data_phase(steps, f, tuning, self._shards)
        validate = steps.invoke(
            "ValidateInput",
            f.validate_input,
            {"input": JsonPath.entire_payload, "execution_name": JsonPath.execution_name},
            "$.run",
        )
        return validate.next(data)
