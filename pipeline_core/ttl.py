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
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from pipeline_core.awserrors import code_of, named_error
from pipeline_core.names import execution_hash

#: The Scheduler group the schedules live in (IAM scopes ``schedule/default/<prefix>-*``).
SCHEDULE_GROUP = "default"
SCHEDULE_NAME_MAX = 64
_NOT_FOUND = frozenset({"ResourceNotFoundException", "ResourceNotFound"})


def schedule_name(endpoint_name: str) -> str:
    """``<endpoint name (cut)>-<hash8>-ttl``: stable per endpoint, at most 64 chars."""
    name = f"{endpoint_name[:46]}-{execution_hash(endpoint_name)}-ttl"
    assert len(name) <= SCHEDULE_NAME_MAX
    return name


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with a ``Z``: ``2026-11-30T15:00:00Z``."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_schedule_request(
    *, endpoint_name: str, deletes_at: datetime, target_arn: str, role_arn: str, stack_tag: str
) -> dict[str, Any]:
    """Keyword arguments of ``scheduler.create_schedule`` (and ``update_schedule``)."""
    name = schedule_name(endpoint_name)
    at = deletes_at.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat()
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
            "Input": json.dumps(
                {
                    "endpoint_name": endpoint_name,
                    "schedule_name": name,
                    "deletes_at": iso(deletes_at),
                }
            ),
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
