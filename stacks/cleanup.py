"""Custom resource that removes what executions created, on stack delete.

Endpoints, endpoint configs and models made by an execution are not
CloudFormation resources, so ``cdk destroy`` would leave them billing. The
onEvent handler (``lambdas.cleanup.handler``) stops the running executions,
the tuning and transform jobs and the TTL schedules, and deletes what it can,
on Delete only, of what is tagged ``mnist-ll:stack=<STACK_TAG>``; the
isComplete handler (``lambdas.cleanup_complete.handler``) then waits, up to
``total_timeout``, for endpoints still Creating/Updating and deletes them,
their configs and models (pipeline_core/teardown.py).
"""

from __future__ import annotations

from aws_cdk import CustomResource, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct


class ExecutionCleanup(Construct):
    """Provider framework + the custom resource itself."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        on_event: lambda_.IFunction,
        is_complete: lambda_.IFunction,
        stack_tag: str,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.provider_log_group = logs.LogGroup(
            self, "ProviderLogs", retention=log_retention, removal_policy=removal_policy
        )
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=on_event,
            # Polls until every endpoint could be deleted (Creating/Updating
            # ones cannot); the handler names what is left at its deadline.
            is_complete_handler=is_complete,
            query_interval=Duration.seconds(30),
            total_timeout=Duration.minutes(55),
            log_group=self.provider_log_group,
            disable_waiter_state_machine_logging=False,
            waiter_state_machine_log_options=cr.LogOptions(
                destination=logs.LogGroup(
                    self, "WaiterLogs", retention=log_retention, removal_policy=removal_policy
                ),
                level=sfn.LogLevel.ALL,
            ),
        )
        self._trace_waiter()
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.provider.service_token,
            resource_type="Custom::MnistLinearLearnerCleanup",
            properties={"StackTag": stack_tag},
            # The longest CloudFormation waits for a custom resource.
            service_timeout=Duration.minutes(60),
        )

    def _trace_waiter(self) -> None:
        """X-Ray tracing on the framework's waiter state machine (no option for it)."""
        waiter = self.provider.node.find_child("waiter-state-machine")
        cfn = waiter.node.find_child("Resource")
        assert isinstance(cfn, sfn.CfnStateMachine)
        cfn.tracing_configuration = sfn.CfnStateMachine.TracingConfigurationProperty(enabled=True)
        role = waiter.node.find_child("Role")
        assert isinstance(role, iam.Role)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                ],
                resources=["*"],
            )
        )
