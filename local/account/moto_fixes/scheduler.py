"""moto 5.2.5's EventBridge Scheduler, refusing what AWS refuses at the call.

moto stores any schedule (``EventBridgeSchedulerBackend.create_schedule`` and
``update_schedule``). AWS answers ``ValidationException`` for:

- a ``ScheduleExpression`` that is not ``at(...)``, ``rate(value unit)`` or a
  six-field ``cron(...)`` (botocore: "A cron expression consists of six fields
  separated by white spaces: (minutes hours day_of_month month day_of_week
  year)"; "A rate expression consists of a value as a positive integer, and a
  unit ..."), checked by :mod:`pipeline_core.schedule_expressions`, the same
  parser that evaluates the schedule later;
- a ``ScheduleExpressionTimezone`` that is not a time zone (at most 50
  characters);
- a ``Name`` outside 1-64 characters of ``[0-9a-zA-Z-_.]`` (botocore's
  ``Name`` shape).

Without this, a bad schedule is created locally and never fires, while
CloudFormation fails the stack in the cloud.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline_core.schedule_expressions import ScheduleExpressionError, is_time_zone, parse

_NAME = re.compile(r"^[0-9a-zA-Z\-_.]{1,64}$")
_INSTALLED = False


def problem(name: str, expression: str | None, timezone: str | None) -> str | None:
    """AWS's reason to refuse the schedule, or None."""
    if not _NAME.match(name or ""):
        return (
            f"1 validation error detected: Value '{name}' at 'name' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: [0-9a-zA-Z-_.]+ "
            "and have length between 1 and 64"
        )
    if expression is not None:
        try:
            parse(expression)
        except ScheduleExpressionError as e:
            return f"Invalid Schedule Expression {expression}. {e}"
    if timezone and not is_time_zone(timezone):
        return f"Invalid ScheduleExpressionTimezone {timezone}."
    return None


def install() -> None:
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.scheduler.exceptions import ValidationException
    from moto.scheduler.models import EventBridgeSchedulerBackend

    for method in ("create_schedule", "update_schedule"):
        original = getattr(EventBridgeSchedulerBackend, method)

        def checked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            why = problem(
                str(kwargs.get("name", "")),
                kwargs.get("schedule_expression"),
                kwargs.get("schedule_expression_timezone"),
            )
            if why is not None:
                raise ValidationException(why)
            return _original(self, *args, **kwargs)

        setattr(EventBridgeSchedulerBackend, method, checked)
    _INSTALLED = True
