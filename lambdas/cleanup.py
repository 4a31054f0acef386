"""Cleanup: CloudFormation custom resource (Provider framework ``onEvent``).

Create/Update do nothing. Delete first stops the state machine's running
executions (nothing may deploy after the listing), this stack's transform
jobs and the endpoint TTL schedules, then removes the endpoints, endpoint
configs and models executions created (named ``<name_prefix>-*``, tagged
``mnist-ll:stack=<STACK_TAG>``) and stops their running tuning jobs; best
effort, never raises (not even on bad settings), bounded by the time left.
It hands ``Data.Deadline`` to ``isComplete`` (lambdas.cleanup_complete), which
waits for endpoints still Creating/Updating and deletes what is left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lambdas._env import Settings, client, load_settings, remaining_seconds
from lambdas._handler import entry, logger
from pipeline_core.cleanup import cleanup_stack_resources
from pipeline_core.registry import delete_versions
from pipeline_core.teardown import delete_ttl_schedules, stop_executions, stop_transform_jobs

#: Seconds left unused so the Provider framework gets our answer in time.
MARGIN_SECONDS = 30.0
#: How long isComplete may wait for endpoints (the Provider gives up at 55 min).
WAIT_SECONDS = 50 * 60


def _clients(s: Settings) -> Any:
    return client("sagemaker", s.region)


def _lifecycle_clients(s: Settings) -> tuple[Any, Any]:
    """(stepfunctions, scheduler)."""
    return client("stepfunctions", s.region), client("scheduler", s.region)


def _stop_what_could_still_start_things(s: Settings) -> dict[str, Any]:
    """Executions, transform jobs and TTL schedules; each step on its own."""
    sfn, scheduler = _lifecycle_clients(s)
    done: dict[str, Any] = {}
    steps: dict[str, Callable[[], list[str]]] = {
        "executions": lambda: stop_executions(sfn, s.state_machine_arn, logger.warning),
        "transform_jobs": lambda: stop_transform_jobs(
            _clients(s), stack_tag=s.stack_tag, name_prefix=s.config.name_prefix,
            log=logger.warning,
        ),
        "schedules": lambda: delete_ttl_schedules(
            scheduler, name_prefix=s.config.name_prefix, target_arn=s.ttl_function_arn,
            log=logger.warning,
        ),
    }  # fmt: skip
    if not s.state_machine_arn:
        steps.pop("executions")
    if not s.ttl_function_arn:
        steps.pop("schedules")
    for name, step in steps.items():
        try:
            done[name] = step()
        except Exception:  # never block the deletion; isComplete still waits
            logger.exception(f"cleanup: cannot stop {name}")
    return done


def _delete_registry_versions(s: Settings) -> list[str]:
    """The Model Package Group's versions, unless the stack retains its registry."""
    if s.registry_retained:
        return []
    try:
        return delete_versions(_clients(s), group=s.model_package_group, log=logger.warning)
    except Exception:  # never block the deletion
        logger.exception("cleanup: cannot delete the registry's versions")
        return []


@entry
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    # Nothing here may raise: a failed Delete would leave the stack DELETE_FAILED.
    try:
        s: Settings | None = load_settings()
    except Exception:
        logger.exception("cannot load settings; cleaning up nothing")
        s = None
    stack_tag = s.stack_tag if s is not None else ""
    # Keep the id stable: a new id on Update would make CloudFormation Delete the old one.
    physical_id = str(event.get("PhysicalResourceId") or f"mnist-ll-cleanup-{stack_tag}")
    if event.get("RequestType") != "Delete" or s is None:
        return {"PhysicalResourceId": physical_id}
    if not s.stack_tag:
        logger.error("STACK_TAG is not set; refusing to clean up anything")
        return {"PhysicalResourceId": physical_id}
    stopped = _stop_what_could_still_start_things(s)
    data = {"Deadline": str(int(time.time()) + WAIT_SECONDS)}
    try:
        summary = cleanup_stack_resources(
            _clients(s),
            stack_tag=s.stack_tag,
            name_prefix=s.config.name_prefix,
            remaining_seconds=lambda: remaining_seconds(context),
            log=logger.warning,
            margin_seconds=MARGIN_SECONDS,
        )
    except Exception:  # a failed cleanup must never block the stack deletion
        logger.exception("cleanup failed")
        return {"PhysicalResourceId": physical_id, "Data": data}
    registry = _delete_registry_versions(s)
    logger.info(
        "cleanup done", extra={"summary": summary, "stopped": stopped, "registry": registry}
    )
    return {
        "PhysicalResourceId": physical_id,
        "Data": {**data, "Failed": str(len(summary["failed"]))},
    }
