"""What watches executions from outside: the end-of-execution rule and the
role EventBridge Scheduler assumes to run an endpoint's TTL deletion.

moto emits no EventBridge events, so the local run calls the same handler
with the same event shape (local/runner.py); tests build the event by hand.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

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
