"""What watches executions from outside: the end-of-execution rule, the
role EventBridge Scheduler assumes to run an endpoint's TTL deletion, and
where the asynchronously invoked functions send a failure they cannot handle.

Locally, the account sends Step Functions' status change events to this
rule itself (moto sends none: local/account/execution_events.py) and fires
the TTL schedules on its own Scheduler (local/account/scheduler.py).
"""

from __future__ import annotations

import jsii
from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IConstruct

from stacks.trust import scheduler_principal

#: Endings the execution cannot report itself (a timeout, a Stop), and FAILED.
ENDED_STATUSES: tuple[str, ...] = ("FAILED", "TIMED_OUT", "ABORTED")
DETAIL_TYPE = "Step Functions Execution Status Change"


class ExecutionEndRule(Construct):
    """EventBridge rule: this state machine's FAILED/TIMED_OUT/ABORTED → a Lambda."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.IStateMachine,
        handler: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "Rule",
            description="Stop the run's jobs and tell the topic when an execution does not succeed",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=[DETAIL_TYPE],
                detail={
                    "stateMachineArn": [state_machine.state_machine_arn],
                    "status": list(ENDED_STATUSES),
                },
            ),
            targets=[
                targets.LambdaFunction(
                    handler,
                    retry_attempts=8,
                    max_event_age=Duration.hours(2),
                )
            ],
        )


class SchedulerRole(Construct):
    """The role EventBridge Scheduler assumes to invoke the EndpointTtl Lambda
    (the stack grants it lambda:InvokeFunction on that function only). Only
    schedules of this account's default group may assume it (stacks.trust):
    ScheduleEndpointTtl creates the TTL schedules there."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=scheduler_principal(self),
            description="Assumed by EventBridge Scheduler to delete mnist-ll endpoints (TTL)",
        )


@jsii.implements(lambda_.IDestination)
class _TopicDestination:
    """The topic as an async-invoke destination, without CDK's own grant (the
    stack grants ``sns:Publish`` and the key's actions by name, no wildcards)."""

    def __init__(self, topic: sns.ITopic) -> None:
        self.topic = topic

    def bind(
        self,
        _scope: Construct,
        _fn: lambda_.IFunction,
        *,
        type: lambda_.DestinationType | None = None,
    ) -> lambda_.DestinationConfig:
        return lambda_.DestinationConfig(destination=self.topic.topic_arn)


class FailureDestination(Construct):
    """Async invocations (Scheduler, EventBridge) of ``function`` that still
    fail after Lambda's two retries go to ``topic``: the event and the error
    reach the people subscribed instead of being dropped.

    ``grants`` is the function's role: Lambda checks, when the config is
    created, that the role may publish, so the config waits for its policy."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        topic: sns.ITopic,
        grants: IConstruct,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = lambda_.EventInvokeConfig(
            self,
            "Config",
            function=function,
            on_failure=_TopicDestination(topic),
            retry_attempts=2,
            max_event_age=Duration.hours(6),
        )
        self.config.node.add_dependency(grants)
