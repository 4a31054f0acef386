"""Optional scheduled retraining: an EventBridge Scheduler schedule that
starts executions of the pipeline (``cdk.json`` context ``schedule``, off by
default).

``{"expression": "rate(7 days)" | "cron(0 3 ? * MON *)", "input": {...},
"timezone": "UTC", "enabled": true}``. The input is checked at synth time by
the same validator ValidateInput uses, so a bad key fails ``cdk synth``,
not the first scheduled run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IDependable

from pipeline_core.config import PipelineConfig
from pipeline_core.errors import InvalidConfigError, InvalidInputError
from pipeline_core.inputs import resolve_run
from pipeline_core.schedule_expressions import ScheduleExpressionError, is_time_zone
from pipeline_core.schedule_expressions import parse as parse_expression
from stacks.trust import scheduler_principal


@dataclass(frozen=True)
class RetrainingSchedule:
    expression: str
    input: Mapping[str, Any] = field(default_factory=dict)
    timezone: str = "UTC"
    enabled: bool = True


def parse_schedule(raw: Any, pipeline: PipelineConfig) -> RetrainingSchedule | None:
    """``None`` (off) or a validated schedule; InvalidConfigError names the key."""
    if raw is None or raw == {} or raw is False:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidConfigError("schedule: an object with expression and input")
    unknown = sorted(set(raw) - {"expression", "input", "timezone", "enabled"})
    if unknown:
        raise InvalidConfigError(f"schedule: unknown keys {unknown}")
    expression = raw.get("expression")
    if (
        not isinstance(expression, str)
        or not expression.startswith(("rate(", "cron("))
        or expression != expression.strip()
    ):
        raise InvalidConfigError(
            f"schedule.expression: {expression!r} is not rate(value unit) or cron(...)"
        )
    try:
        # Scheduler's own rules (six cron fields, one day field '?', a positive
        # rate): CloudFormation would refuse the schedule at deploy.
        parse_expression(expression)
    except ScheduleExpressionError as e:
        raise InvalidConfigError(f"schedule.expression: {e}") from e
    timezone = raw.get("timezone", "UTC")
    if not isinstance(timezone, str) or not is_time_zone(timezone):
        raise InvalidConfigError(
            f"schedule.timezone: {timezone!r} is not an IANA time zone name (e.g. Europe/Berlin)"
        )
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidConfigError("schedule.enabled: true or false")
    execution_input = raw.get("input", {})
    try:
        # The very check ValidateInput makes at run time (names are placeholders).
        resolve_run(
            execution_input,
            execution_name="scheduled",
            config=pipeline,
            bucket="synth-time-check",
            region="us-east-1",
            default_endpoint_name=f"{pipeline.name_prefix}-endpoint",
            stack_tag="synth",
        )
    except InvalidInputError as e:
        raise InvalidConfigError(f"schedule.input: {e}") from e
    return RetrainingSchedule(expression, dict(execution_input), timezone, enabled)


class RetrainingScheduleConstruct(Construct):
    """The schedule, and the role Scheduler assumes to start executions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        schedule: RetrainingSchedule,
        state_machine: sfn.IStateMachine,
        name: str,
        delete_before: IDependable | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        # The schedule lives in the default group: only it may assume the role.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=scheduler_principal(self),
            description="Assumed by EventBridge Scheduler to start scheduled retraining runs",
        )
        self.schedule = scheduler.CfnSchedule(
            self,
            "Schedule",
            name=name,
            description="Scheduled retraining of the MNIST Linear Learner pipeline",
            schedule_expression=schedule.expression,
            schedule_expression_timezone=schedule.timezone,
            state="ENABLED" if schedule.enabled else "DISABLED",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=state_machine.state_machine_arn,
                role_arn=self.role.role_arn,
                input=json.dumps(dict(schedule.input), sort_keys=True),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=3, maximum_event_age_in_seconds=3600
                ),
            ),
        )
        if delete_before is not None:
            # CloudFormation deletes dependents first: the schedule is gone
            # before ``delete_before`` (the stack's cleanup) runs, so it can
            # start no execution after the cleanup stopped them all.
            self.schedule.node.add_dependency(delete_before)
