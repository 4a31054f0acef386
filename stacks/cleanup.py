"""Custom resource that removes what executions created, on stack delete.

Endpoints, endpoint configs and models made by an execution are not
CloudFormation resources, so ``cdk destroy`` would leave them billing. The
onEvent handler (``lambdas.cleanup.handler``) deletes, on Delete only, those
tagged ``mnist-ll:stack=<STACK_TAG>`` and stops tagged in-progress tuning jobs.
"""

from __future__ import annotations

from aws_cdk import CustomResource, Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
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
            log_group=self.provider_log_group,
        )
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.provider.service_token,
            resource_type="Custom::MnistLinearLearnerCleanup",
            properties={"StackTag": stack_tag},
            # The handler bounds itself well below this.
            service_timeout=Duration.minutes(15),
        )
