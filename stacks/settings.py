"""Typed stack settings, built by ``app.py`` from ``cdk.json`` context.

Only ``app.py`` reads context; it hands the raw mapping to
:meth:`StackSettings.from_context`, which validates everything and raises
:class:`~pipeline_core.errors.InvalidConfigError` naming the bad key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pipeline_core.config import PipelineConfig
from pipeline_core.errors import InvalidConfigError
from stacks.schedule import RetrainingSchedule, parse_schedule

RemovalPolicyName = Literal["destroy", "retain"]

#: Values CloudWatch Logs accepts for a retention period, in days.
LOG_RETENTION_DAYS: frozenset[int] = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731}
    | {1096, 1827, 2192, 2557, 2922, 3288, 3653}
)

_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
# Deliberately loose: SNS confirms the address; this only catches obvious typos.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

#: Minutes of the execution's timeout kept for the rest of the run besides
#: the manual-approval wait (``approval_timeout_minutes``).
APPROVAL_HEADROOM_MINUTES = 30

#: Context keys app.py understands (besides CDK's own feature flags).
KNOWN_KEYS: frozenset[str] = frozenset(
    {
        "pipeline",
        "stack_name",
        "notification_email",
        "removal_policy",
        "auto_delete_objects",
        "log_retention_days",
        "enable_kms",
        "execution_timeout_hours",
        "schedule",
    }
)


@dataclass(frozen=True, kw_only=True)
class StackSettings:
    """Everything the stack needs that is not a pipeline default."""

    pipeline: PipelineConfig
    stack_name: str = "MnistLinearLearnerPipeline"
    notification_email: str | None = None
    removal_policy: RemovalPolicyName = "destroy"
    auto_delete_objects: bool = True
    log_retention_days: int = 30
    enable_kms: bool = False
    execution_timeout_hours: int = 6
    #: Scheduled retraining (stacks/schedule.py); None: off.
    schedule: RetrainingSchedule | None = None

    @property
    def destroy_on_delete(self) -> bool:
        return self.removal_policy == "destroy"

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> StackSettings:
        """Build and validate settings from the app's context values.

        Missing keys take the defaults above; ``None`` counts as missing so
        ``cdk.json`` can list every key.
        """
        values = {k: v for k, v in context.items() if k in KNOWN_KEYS and v is not None}
        pipeline_raw = values.pop("pipeline", {})
        pipeline = PipelineConfig.from_mapping(pipeline_raw)
        email = values.pop("notification_email", "")
        schedule = parse_schedule(values.pop("schedule", None), pipeline)
        settings = cls(
            pipeline=pipeline, notification_email=email or None, schedule=schedule, **values
        )
        return settings.validate()

    def validate(self) -> StackSettings:
        if not isinstance(self.stack_name, str) or not _STACK_NAME.match(self.stack_name):
            raise InvalidConfigError(
                f"stack_name: '{self.stack_name}' is not a CloudFormation stack name "
                "(a letter, then up to 127 letters, digits or hyphens)"
            )
        if self.notification_email is not None and (
            not isinstance(self.notification_email, str)
            or not _EMAIL.match(self.notification_email)
        ):
            raise InvalidConfigError(
                f"notification_email: '{self.notification_email}' is not an email address"
            )
        if self.removal_policy not in ("destroy", "retain"):
            raise InvalidConfigError(
                f"removal_policy: '{self.removal_policy}' must be 'destroy' or 'retain'"
            )
        _check_bool("auto_delete_objects", self.auto_delete_objects)
        _check_bool("enable_kms", self.enable_kms)
        if self.auto_delete_objects and self.removal_policy != "destroy":
            raise InvalidConfigError(
                "auto_delete_objects: only possible with removal_policy 'destroy'"
            )
        if (
            not isinstance(self.log_retention_days, int)
            or isinstance(self.log_retention_days, bool)
            or self.log_retention_days not in LOG_RETENTION_DAYS
        ):
            raise InvalidConfigError(
                f"log_retention_days: {self.log_retention_days!r} is not a CloudWatch Logs "
                f"retention period (one of {sorted(LOG_RETENTION_DAYS)})"
            )
        if (
            not isinstance(self.execution_timeout_hours, int)
            or isinstance(self.execution_timeout_hours, bool)
            or not 1 <= self.execution_timeout_hours <= 24 * 365
        ):
            raise InvalidConfigError(
                f"execution_timeout_hours: {self.execution_timeout_hours!r} must be an "
                "integer from 1 to 8760 (a Standard execution lasts at most a year)"
            )
        self._check_approval_fits()
        return self

    def _check_approval_fits(self) -> None:
        """WaitForApproval must time out (``ApprovalTimedOut``, the version left
        pending) before the execution does, with time left for the rest of the run."""
        execution_minutes = self.execution_timeout_hours * 60
        approval = self.pipeline.approval_timeout_minutes
        if approval + APPROVAL_HEADROOM_MINUTES > execution_minutes:
            raise InvalidConfigError(
                f"pipeline.approval_timeout_minutes ({approval}) leaves less than "
                f"{APPROVAL_HEADROOM_MINUTES} minutes of execution_timeout_hours "
                f"({self.execution_timeout_hours} h = {execution_minutes} min) for converting, "
                "tuning, deploying and evaluating: lower approval_timeout_minutes to at most "
                f"{execution_minutes - APPROVAL_HEADROOM_MINUTES} or raise "
                "execution_timeout_hours"
            )


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise InvalidConfigError(f"{name}: must be true or false, got {value!r}")
