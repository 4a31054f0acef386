"""End of an execution that did not succeed: release what the run holds.

EventBridge sends this state machine's "Step Functions Execution Status
Change" events with status FAILED, TIMED_OUT or ABORTED to the
ExecutionEnded Lambda (the local run calls the same handler with the same
event shape on ``--timeout`` or Ctrl-C). It runs every step of
:data:`RELEASE_STEPS` in order, each on its own (one failing step never
skips the others), then the topic is told how the execution ended.

Extension point: a module that holds something per run (a lease, a lock)
adds a step with :func:`register_release_step`; the step gets the
:class:`EndedExecution` and a :class:`ReleaseContext` (clients by service
name, settings) and returns a small JSON-able dict for the message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from pipeline_core.awserrors import code_of, is_not_found, named_error
from pipeline_core.lease import release_held_by
from pipeline_core.names import resource_names

ENDED_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
DETAIL_TYPE = "Step Functions Execution Status Change"


@dataclass(frozen=True)
class EndedExecution:
    execution_arn: str
    execution_name: str
    state_machine_arn: str
    status: str
    error: str | None = None
    cause: str | None = None

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> EndedExecution:
        """From the EventBridge event (``detail`` holds the execution)."""
        detail = event.get("detail") if isinstance(event, Mapping) else None
        if not isinstance(detail, Mapping) or "executionArn" not in detail:
            raise ValueError("not a Step Functions execution status change event")
        return cls(
            execution_arn=str(detail["executionArn"]),
            execution_name=str(detail.get("name") or detail["executionArn"].rsplit(":", 1)[-1]),
            state_machine_arn=str(detail.get("stateMachineArn", "")),
            status=str(detail.get("status", "")),
            error=detail.get("error"),
            cause=detail.get("cause"),
        )


@dataclass(frozen=True)
class ReleaseContext:
    """What the steps may use: boto3 clients by service name, and settings."""

    clients: Mapping[str, Any]
    name_prefix: str
    stack_tag: str
    #: The deployment's salt: part of every name the run derived.
    salt: str = ""
    #: DynamoDB table of the endpoint leases ("" when the stack has none).
    lock_table: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


ReleaseStep = Callable[[EndedExecution, ReleaseContext], dict[str, Any]]


def _stop(call: Callable[..., Any], describe: Callable[..., Any], status_key: str,
          kwargs: dict[str, str], action: str) -> dict[str, Any]:  # fmt: skip
    try:
        status = str(describe(**kwargs)[status_key])
    except ClientError as e:
        if is_not_found(e):
            return {"stopped": False, "reason": "never started"}
        raise named_error(e, action) from e
    if status != "InProgress":
        return {"stopped": False, "reason": f"already {status}"}
    try:
        call(**kwargs)
    except ClientError as e:
        if code_of(e) == "ValidationException":  # ended in between
            return {"stopped": False, "reason": str(e)}
        raise named_error(e, action) from e
    return {"stopped": True}


def stop_tuning_job(ended: EndedExecution, ctx: ReleaseContext) -> dict[str, Any]:
    """The run's tuning job (its name derives from the execution name)."""
    sm = ctx.clients["sagemaker"]
    name = resource_names(ctx.name_prefix, ended.execution_name, ctx.salt).tuning_job
    result = _stop(
        sm.stop_hyper_parameter_tuning_job,
        sm.describe_hyper_parameter_tuning_job,
        "HyperParameterTuningJobStatus",
        {"HyperParameterTuningJobName": name},
        "StopHyperParameterTuningJob",
    )
    return {"name": name, **result}


def stop_transform_job(ended: EndedExecution, ctx: ReleaseContext) -> dict[str, Any]:
    """The run's Batch Transform job (endpoint mode none)."""
    sm = ctx.clients["sagemaker"]
    names = resource_names(ctx.name_prefix, ended.execution_name, ctx.salt)
    name = f"{names.tuning_job}-transform"
    result = _stop(
        sm.stop_transform_job,
        sm.describe_transform_job,
        "TransformJobStatus",
        {"TransformJobName": name},
        "StopTransformJob",
    )
    return {"name": name, **result}


def release_endpoint_leases(ended: EndedExecution, ctx: ReleaseContext) -> dict[str, Any]:
    """Every endpoint lease the run still holds (one deploy at a time per endpoint)."""
    if not ctx.lock_table:
        return {"released": [], "reason": "no lease table"}
    released = release_held_by(ctx.clients["dynamodb"], ctx.lock_table, holder=ended.execution_name)
    return {"released": released}


#: The steps, in order. Add to it with :func:`register_release_step`.
RELEASE_STEPS: list[tuple[str, ReleaseStep]] = [
    ("tuning_job", stop_tuning_job),
    ("transform_job", stop_transform_job),
    ("endpoint_leases", release_endpoint_leases),
]


def register_release_step(name: str, step: ReleaseStep) -> None:
    """Add (or replace) a named step: e.g. releasing a per-endpoint lease."""
    for i, (existing, _) in enumerate(RELEASE_STEPS):
        if existing == name:
            RELEASE_STEPS[i] = (name, step)
            return
    RELEASE_STEPS.append((name, step))


def release_run(
    ended: EndedExecution,
    ctx: ReleaseContext,
    *,
    steps: list[tuple[str, ReleaseStep]] | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Run every step; a failing step is recorded (``{"error": ...}``), never fatal."""
    released: dict[str, Any] = {}
    for name, step in RELEASE_STEPS if steps is None else steps:
        try:
            released[name] = step(ended, ctx)
        except Exception as e:  # the other steps must still run
            log(f"release step {name} failed: {e!r}")
            released[name] = {"error": f"{type(e).__name__}: {e}"}
    return released


def ended_message(ended: EndedExecution, released: dict[str, Any]) -> dict[str, Any]:
    """The SNS message: how the execution ended and what was released."""
    how = {
        "FAILED": "failed",
        "TIMED_OUT": "timed out (the state machine's overall timeout)",
        "ABORTED": "was stopped (aborted)",
    }.get(ended.status, ended.status.lower())
    return {
        "status": ended.status,
        "execution": ended.execution_name,
        "execution_arn": ended.execution_arn,
        "summary": f"execution {ended.execution_name} {how}",
        "error": ended.error,
        "cause": ended.cause,
        "released": released,
    }
