"""Stack deletion that leaves nothing billing (the cleanup custom resource).

The Provider framework calls ``onEvent`` once (lambdas.cleanup): it stops the
state machine's running executions, stops this stack's tuning and transform
jobs, deletes the endpoint TTL schedules and removes what can go at once.
It then calls ``isComplete`` (lambdas.cleanup_complete) every
``query_interval`` until it answers complete: each call deletes the endpoints
that can be deleted now and waits for those still ``Creating``/``Updating``
(SageMaker refuses to delete them); only when no endpoint is left are the
endpoint configs and models removed. Past the deadline that ``onEvent`` set,
whatever is left is named by ARN in :class:`TeardownIncompleteError`, which
the framework reports as the custom resource's failure reason.

The framework retries every isComplete error until its total timeout, so an
error that cannot pass (AccessDenied, a bug) is never raised: the round
answers complete and logs what it left behind, as ``onEvent`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from pipeline_core.awserrors import is_not_found, is_transient
from pipeline_core.cleanup import cleanup_stack_resources
from pipeline_core.errors import PipelineError
from pipeline_core.names import STACK_TAG_KEY, tag_value, tags_to_dict
from pipeline_core.ttl import SCHEDULE_GROUP

Log = Callable[[str], None]

#: Endpoint states SageMaker refuses DeleteEndpoint in (wait), and the one that means "going".
NOT_YET_DELETABLE = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})
GOING = "Deleting"


class TeardownIncompleteError(PipelineError):
    """Stack deletion reached its deadline with resources still there (named by ARN)."""


def _ours(sm: Any, arn: str, wanted: str, log: Log) -> bool:
    try:
        tags = tags_to_dict(sm.list_tags(ResourceArn=arn).get("Tags"))
    except ClientError as e:
        log(f"teardown: cannot read the tags of {arn}: {e!r}")
        return False
    return tags.get(STACK_TAG_KEY) == wanted


def stop_executions(sfn: Any, state_machine_arn: str, log: Log) -> list[str]:
    """Stop every RUNNING execution of the state machine (nothing may deploy after us)."""
    stopped: list[str] = []
    pages = sfn.get_paginator("list_executions").paginate(
        stateMachineArn=state_machine_arn, statusFilter="RUNNING"
    )
    for page in pages:
        for execution in page.get("executions", []):
            arn = execution["executionArn"]
            try:
                sfn.stop_execution(
                    executionArn=arn, error="StackDeleted", cause="the stack is being deleted"
                )
                stopped.append(arn)
            except ClientError as e:
                log(f"teardown: cannot stop execution {arn}: {e!r}")
    return stopped


def stop_transform_jobs(sm: Any, *, stack_tag: str, name_prefix: str, log: Log) -> list[str]:
    """Stop this stack's InProgress transform jobs (tuning jobs: cleanup_stack_resources)."""
    wanted = tag_value(stack_tag)
    stopped: list[str] = []
    pages = sm.get_paginator("list_transform_jobs").paginate(
        NameContains=name_prefix, StatusEquals="InProgress"
    )
    for page in pages:
        for job in page.get("TransformJobSummaries", []):
            name, arn = str(job["TransformJobName"]), str(job["TransformJobArn"])
            if not name.startswith(f"{name_prefix}-") or not _ours(sm, arn, wanted, log):
                continue
            try:
                sm.stop_transform_job(TransformJobName=name)
                stopped.append(name)
            except ClientError as e:
                log(f"teardown: cannot stop transform job {name}: {e!r}")
    return stopped


def delete_ttl_schedules(
    scheduler: Any, *, name_prefix: str, target_arn: str, log: Log
) -> list[str]:
    """Delete the TTL schedules that target this stack's EndpointTtl function
    (schedules carry no tags: the target names the owner)."""
    deleted: list[str] = []
    pages = scheduler.get_paginator("list_schedules").paginate(
        GroupName=SCHEDULE_GROUP, NamePrefix=f"{name_prefix}-"
    )
    for page in pages:
        for item in page.get("Schedules", []):
            name = str(item["Name"])
            target = (item.get("Target") or {}).get("Arn")
            if target != target_arn:
                continue
            try:
                scheduler.delete_schedule(Name=name, GroupName=SCHEDULE_GROUP)
                deleted.append(name)
            except ClientError as e:
                if not is_not_found(e) and "NotFound" not in str(e):
                    log(f"teardown: cannot delete schedule {name}: {e!r}")
    return deleted


def our_endpoints(
    sm: Any,
    *,
    stack_tag: str,
    name_prefix: str,
    log: Log,
    unreadable: list[dict[str, Any]] | None = None,
) -> list[dict[str, str]]:
    """``[{name, arn, status}]`` of this stack's endpoints. An endpoint whose
    tags cannot be read goes to ``unreadable`` (with ``transient``) when given."""
    wanted = tag_value(stack_tag)
    found: list[dict[str, str]] = []
    for page in sm.get_paginator("list_endpoints").paginate(NameContains=name_prefix):
        for item in page.get("Endpoints", []):
            name, arn = str(item["EndpointName"]), str(item["EndpointArn"])
            if not name.startswith(f"{name_prefix}-"):
                continue
            entry = {"name": name, "arn": arn, "status": str(item["EndpointStatus"])}
            try:
                tags = tags_to_dict(sm.list_tags(ResourceArn=arn).get("Tags"))
            except ClientError as e:
                log(f"teardown: cannot read the tags of {arn}: {e!r}")
                if unreadable is not None:
                    unreadable.append(_problem(entry, "cannot read its tags", e))
                continue
            if tags.get(STACK_TAG_KEY) == wanted:
                found.append(entry)
    return found


def _problem(entry: dict[str, str], what: str, e: BaseException) -> dict[str, Any]:
    return {**entry, "status": f"{what}: {e!r}", "transient": is_transient(e)}


def _give_up(left: list[dict[str, Any]], log: Log) -> dict[str, Any]:
    """Errors that will not go away: let the stack delete finish, naming what is left
    (as Cleanup does), instead of failing until the Provider's total timeout."""
    names = "; ".join(f"{r['arn']} ({r['status']})" for r in left)
    log(f"teardown: left behind (delete them by hand): {names}")
    return {"complete": True, "waiting": [], "left": [_public(r) for r in left]}


def _public(entry: dict[str, Any]) -> dict[str, str]:
    return {k: str(entry[k]) for k in ("name", "arn", "status")}


def teardown_poll(
    sm: Any,
    *,
    stack_tag: str,
    name_prefix: str,
    now: float,
    deadline: float,
    log: Log = lambda _msg: None,
) -> dict[str, Any]:
    """One isComplete round. Returns ``{"complete", "waiting": [{name, arn, status}],
    "left": [...]}``.

    Endpoints still Creating/Updating/Deleting and transient errors
    (throttling, 5xx) are waited for until ``deadline``, past which
    TeardownIncompleteError names each by ARN. A persistent error
    (AccessDenied, a validation error) cannot get better by waiting: once
    nothing is left to wait for, the round answers complete and ``left``
    (also logged) names what could not be removed."""
    problems: list[dict[str, Any]] = []
    try:
        endpoints = our_endpoints(
            sm, stack_tag=stack_tag, name_prefix=name_prefix, log=log, unreadable=problems
        )
    except ClientError as e:
        log(f"teardown: cannot list the endpoints: {e!r}")
        listing = {"name": "*", "arn": f"endpoints {name_prefix}-*"}
        problems.append(_problem(listing, "cannot list", e))
        endpoints = []
    waiting: list[dict[str, Any]] = []
    for endpoint in endpoints:
        if endpoint["status"] in NOT_YET_DELETABLE or endpoint["status"] == GOING:
            waiting.append(endpoint)
            continue
        try:
            sm.delete_endpoint(EndpointName=endpoint["name"])
        except ClientError as e:
            if not is_not_found(e):
                log(f"teardown: cannot delete endpoint {endpoint['arn']}: {e!r}")
                problems.append(_problem(endpoint, "cannot delete", e))
                continue
        waiting.append({**endpoint, "status": GOING})
    if not waiting and not any(p["transient"] for p in problems):
        # No endpoint can still need them: configs and models go now.
        summary = cleanup_stack_resources(
            sm,
            stack_tag=stack_tag,
            name_prefix=name_prefix,
            remaining_seconds=lambda: max(0.0, deadline - now) + 60.0,
            log=log,
            margin_seconds=0.0,
        )
        seen = {p["name"] for p in problems}  # its endpoint pass meets those again
        problems += [
            {
                "name": f["name"],
                "arn": f["name"],
                "status": f"{f['kind']}: {f['error']}",
                "transient": bool(f.get("transient")),
            }
            for f in summary["failed"]
            if f["name"] not in seen
        ]
    # Throttling and server errors may pass: try again next round.
    waiting += [p for p in problems if p["transient"]]
    persistent = [p for p in problems if not p["transient"]]
    if not waiting:
        if persistent:
            return _give_up(persistent, log)
        return {"complete": True, "waiting": [], "left": []}
    if now >= deadline:
        names = "; ".join(f"{r['arn']} ({r['status']})" for r in waiting + persistent)
        log(f"teardown: deadline reached, still there: {names}")
        raise TeardownIncompleteError(f"could not delete before the deadline: {names}")
    return {"complete": False, "waiting": [_public(w) for w in waiting], "left": []}
