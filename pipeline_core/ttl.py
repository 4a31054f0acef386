"""Endpoint time-to-live: one EventBridge Scheduler one-time schedule per endpoint.

The run that deploys an endpoint creates the schedule ``at(now + ttl_hours)``,
or moves it when a schedule for that endpoint already exists (a later run on
the same endpoint). ``ttl_hours: 0`` keeps the endpoint and removes any
schedule. The schedule invokes the EndpointTtl Lambda, which deletes the
endpoint, its config and its model (:func:`pipeline_core.cleanup.delete_endpoint_resources`)
and tells the topic; ``ActionAfterCompletion: DELETE`` removes the schedule.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from pipeline_core.awserrors import code_of, is_not_found, named_error
from pipeline_core.cleanup import delete_endpoint_resources
from pipeline_core.errors import EndpointBusyError, InvalidInputError
from pipeline_core.names import SCHEDULE_NAME_MAX, execution_hash

#: The Scheduler group the schedules live in (IAM scopes ``schedule/default/<prefix>-*``).
SCHEDULE_GROUP = "default"
_NOT_FOUND = frozenset({"ResourceNotFoundException", "ResourceNotFound"})


def schedule_name(endpoint_name: str) -> str:
    """``<endpoint name (cut)>-<hash8>-ttl``: stable per endpoint, at most 64 chars."""
    name = f"{endpoint_name[:46]}-{execution_hash(endpoint_name)}-ttl"
    assert len(name) <= SCHEDULE_NAME_MAX
    return name


def rearm_schedule_name(endpoint_name: str, deletes_at: str, rearm: int) -> str:
    """``<endpoint (cut)>-<hash8>-r<n>``: the n-th re-arm of the TTL due at
    ``deletes_at``; never the name of the schedule that just fired, and the
    same on a retried invocation (so a retry finds its schedule, not a second one)."""
    name = f"{endpoint_name[:42]}-{execution_hash(f'{endpoint_name}@{deletes_at}')}-r{rearm}"
    assert len(name) <= SCHEDULE_NAME_MAX
    return name


@dataclass(frozen=True)
class TtlTarget:
    """What a TTL schedule needs: the EndpointTtl function, the role Scheduler
    assumes to invoke it, and the stack whose endpoints it may delete."""

    function_arn: str
    role_arn: str
    stack_tag: str


@dataclass(frozen=True)
class TtlInput:
    """The schedule's target input: ``{endpoint_name, schedule_name, deletes_at}``;
    a re-armed one adds ``rearms`` (how many times so far) and ``endpoint_config``
    (the config the endpoint had when the TTL first found it busy)."""

    endpoint_name: str
    schedule_name: str
    deletes_at: str
    rearms: int = 0
    endpoint_config: str | None = None

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> TtlInput:
        name = event.get("endpoint_name") if isinstance(event, Mapping) else None
        if not isinstance(name, str) or not name:
            raise InvalidInputError("endpoint_name: missing from the schedule's input")
        rearms = event.get("rearms", 0)
        if not isinstance(rearms, int) or isinstance(rearms, bool) or rearms < 0:
            raise InvalidInputError(f"rearms: must be a whole number >= 0, got {rearms!r}")
        config = event.get("endpoint_config")
        return cls(
            endpoint_name=name,
            schedule_name=str(event.get("schedule_name") or schedule_name(name)),
            deletes_at=str(event.get("deletes_at") or ""),
            rearms=rearms,
            endpoint_config=config if isinstance(config, str) else None,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "endpoint_name": self.endpoint_name,
            "schedule_name": self.schedule_name,
            "deletes_at": self.deletes_at,
        }
        if self.rearms:
            out.update({"rearms": self.rearms, "endpoint_config": self.endpoint_config})
        return out


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with a ``Z``: ``2026-11-30T15:00:00Z``."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_schedule_request(
    *,
    endpoint_name: str,
    deletes_at: datetime,
    target_arn: str,
    role_arn: str,
    stack_tag: str,
    rearm: TtlInput | None = None,
    fires_at: datetime | None = None,
) -> dict[str, Any]:
    """Keyword arguments of ``scheduler.create_schedule`` (and ``update_schedule``).

    ``rearm``: the input of a re-armed TTL (its own name), firing at ``fires_at``."""
    name = rearm.schedule_name if rearm else schedule_name(endpoint_name)
    moment = fires_at or deletes_at
    at = moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat()
    payload = (
        rearm.to_dict()
        if rearm
        else {"endpoint_name": endpoint_name, "schedule_name": name, "deletes_at": iso(deletes_at)}
    )
    return {
        "Name": name,
        "GroupName": SCHEDULE_GROUP,
        "ScheduleExpression": f"at({at})",
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "ActionAfterCompletion": "DELETE",
        "State": "ENABLED",
        "Description": f"Delete SageMaker endpoint {endpoint_name} ({stack_tag}) at its TTL",
        "Target": {
            "Arn": target_arn,
            "RoleArn": role_arn,
            "Input": json.dumps(payload),
            "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
        },
    }


def schedule_endpoint_ttl(
    *,
    endpoint_name: str,
    ttl_hours: int,
    scheduler: Any,
    target_arn: str,
    role_arn: str,
    stack_tag: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Create, move or remove the endpoint's schedule. Returns ``$.ttl``:
    ``{schedule_name, deletes_at (ISO-8601 UTC or None), action}`` with action
    created / moved / removed / none."""
    name = schedule_name(endpoint_name)
    if ttl_hours <= 0:
        try:
            scheduler.delete_schedule(Name=name, GroupName=SCHEDULE_GROUP)
            action = "removed"
        except ClientError as e:
            if code_of(e) not in _NOT_FOUND:
                raise named_error(e, "DeleteSchedule") from e
            action = "none"
        return {"schedule_name": None, "deletes_at": None, "action": action}
    deletes_at = (now or datetime.now(UTC)) + timedelta(hours=ttl_hours)
    request = build_schedule_request(
        endpoint_name=endpoint_name,
        deletes_at=deletes_at,
        target_arn=target_arn,
        role_arn=role_arn,
        stack_tag=stack_tag,
    )
    try:
        scheduler.create_schedule(**request)
        action = "created"
    except ClientError as e:
        if code_of(e) != "ConflictException":
            raise named_error(e, "CreateSchedule") from e
        try:
            scheduler.update_schedule(**request)
        except ClientError as e2:
            raise named_error(e2, "UpdateSchedule") from e2
        action = "moved"
    return {"schedule_name": name, "deletes_at": iso(deletes_at), "action": action}


def delete_schedule_quietly(scheduler: Any, name: str) -> bool:
    """Delete a schedule; False if it was not there."""
    try:
        scheduler.delete_schedule(Name=name, GroupName=SCHEDULE_GROUP)
    except ClientError as e:
        if code_of(e) in _NOT_FOUND:
            return False
        raise
    return True


def parse_iso(text: str) -> datetime | None:
    """:func:`iso` back to a datetime (None if it is not one)."""
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def _superseded(sm: Any, scheduler: Any, ttl: TtlInput) -> str | None:
    """Why a re-armed TTL must leave the endpoint alone, or None.

    A later deployment owns the endpoint's lifetime: it changed the endpoint's
    config, or it scheduled a newer TTL (ScheduleEndpointTtl's schedule)."""
    try:
        described = sm.describe_endpoint(EndpointName=ttl.endpoint_name)
    except ClientError as e:
        if is_not_found(e):
            return None  # delete_endpoint_resources says it is gone
        raise named_error(e, "DescribeEndpoint") from e
    config = described.get("EndpointConfigName")
    if ttl.endpoint_config and config and config != ttl.endpoint_config:
        return f"a later deployment moved the endpoint to {config}; its own TTL applies"
    try:
        current = scheduler.get_schedule(
            Name=schedule_name(ttl.endpoint_name), GroupName=SCHEDULE_GROUP
        )
    except ClientError as e:
        if code_of(e) in _NOT_FOUND:
            return None
        raise named_error(e, "GetSchedule") from e
    try:
        newer = json.loads(current.get("Target", {}).get("Input") or "{}").get("deletes_at")
    except (AttributeError, ValueError):
        newer = None
    first, later = parse_iso(ttl.deletes_at), parse_iso(str(newer or ""))
    if later is not None and (first is None or later > first):
        return f"a later run scheduled the endpoint's deletion at {newer}"
    return None


def expire_endpoint(
    sm: Any,
    scheduler: Any,
    event: Mapping[str, Any],
    *,
    target: TtlTarget,
    rearm_minutes: int,
    rearm_limit: int,
    log: Callable[[str], None] = lambda _m: None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """What EndpointTtl does when a TTL schedule fires.

    Returns ``{"endpoint", "deleted", "skipped", "action", ...}`` with action
    ``deleted`` (or ``skipped``: gone already, not ours), ``rearmed`` (busy:
    ``schedule_name``/``fires_at`` of the new schedule), ``superseded`` (a
    re-armed TTL a later deployment overrides) or ``gave_up`` (busy after
    ``rearm_limit`` re-arms). Never raises for a busy endpoint."""
    ttl = TtlInput.from_event(event)
    base: dict[str, Any] = {"endpoint": ttl.endpoint_name, "deleted": [], "skipped": None}
    if ttl.rearms:
        why = _superseded(sm, scheduler, ttl)
        if why:
            return {**base, "skipped": why, "action": "superseded", "rearms": ttl.rearms}
    try:
        out = delete_endpoint_resources(
            sm, endpoint_name=ttl.endpoint_name, stack_tag=target.stack_tag, log=log
        )
    except EndpointBusyError as busy:
        if ttl.rearms >= rearm_limit:
            return {**base, "skipped": str(busy), "action": "gave_up", "rearms": ttl.rearms}
        return {
            **base,
            "skipped": str(busy),
            **rearm_ttl(sm, scheduler, ttl, target=target, minutes=rearm_minutes, now=now),
        }
    return {**out, "action": "deleted" if out["deleted"] else "skipped"}


def rearm_ttl(
    sm: Any,
    scheduler: Any,
    ttl: TtlInput,
    *,
    target: TtlTarget,
    minutes: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A new one-time schedule ``minutes`` from now for the same endpoint."""
    config = ttl.endpoint_config
    if config is None:
        try:
            config = sm.describe_endpoint(EndpointName=ttl.endpoint_name).get("EndpointConfigName")
        except ClientError as e:
            raise named_error(e, "DescribeEndpoint") from e
    count = ttl.rearms + 1
    first = ttl.deletes_at or iso(now or datetime.now(UTC))
    again = TtlInput(
        endpoint_name=ttl.endpoint_name,
        schedule_name=rearm_schedule_name(ttl.endpoint_name, first, count),
        deletes_at=first,
        rearms=count,
        endpoint_config=config,
    )
    fires_at = (now or datetime.now(UTC)) + timedelta(minutes=minutes)
    request = build_schedule_request(
        endpoint_name=ttl.endpoint_name,
        deletes_at=parse_iso(first) or fires_at,
        target_arn=target.function_arn,
        role_arn=target.role_arn,
        stack_tag=target.stack_tag,
        rearm=again,
        fires_at=fires_at,
    )
    try:
        scheduler.create_schedule(**request)
    except ClientError as e:
        # A retried invocation finds the schedule it already made.
        if code_of(e) != "ConflictException":
            raise named_error(e, "CreateSchedule") from e
    return {
        "action": "rearmed",
        "rearms": count,
        "schedule_name": again.schedule_name,
        "fires_at": iso(fires_at),
    }
