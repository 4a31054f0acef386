"""End of an execution that did not succeed: release what the run holds.

EventBridge sends this state machine's "Step Functions Execution Status
Change" events with status FAILED, TIMED_OUT or ABORTED to the
ExecutionEnded Lambda (the local run calls the same handler with the same
event shape on ``--timeout`` or Ctrl-C). It runs every step of
:data:`RELEASE_STEPS` in order, each on its own (one failing step never
skips the others), then the topic is told how the execution ended.

Only what the execution could not say itself is published: a timeout, a
Stop, or a failure that never reached NotifyFailure (:func:`notified_by_execution`).
A run that deployed an endpoint but ended before its TTL was scheduled gets
one (:func:`ensure_endpoint_ttl`).

Extension point: a module that holds something per run (a lease, a lock)
adds a step with :func:`register_release_step`; the step gets the
:class:`EndedExecution` and a :class:`ReleaseContext` (clients by service
name, settings) and returns a small JSON-able dict for the message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from pipeline_core.awserrors import code_of, is_not_found, named_error
from pipeline_core.inputs import RunSpec
from pipeline_core.lease import release_held_by
from pipeline_core.names import (
    EXECUTION_TAG_KEY,
    STACK_TAG_KEY,
    resource_names,
    tag_value,
    tags_to_dict,
)
from pipeline_core.ttl import TtlTarget, build_schedule_request, iso, schedule_name

ENDED_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
DETAIL_TYPE = "Step Functions Execution Status Change"

#: Errors no Catch takes (``States.ALL`` does not match them) and a Choice that
#: matched nothing: an execution failing with one never reached NotifyFailure.
#: Any other FAILED ended in a named Fail state (``ErrorPath: $.error.Error``)
#: after NotifyFailure published that error and cause: every Task and Map
#: state catches ``States.ALL`` into it and every Choice has a default
#: (tests/stack/test_state_machine.py holds both).
UNCAUGHT_ERRORS = frozenset(
    {"States.Runtime", "States.DataLimitExceeded", "States.NoChoiceMatched",
     "States.QueryEvaluationError"}
)  # fmt: skip

#: Endings after which a deployed endpoint must still get its TTL. Not ABORTED:
#: a person stopped the run, or the stack's Cleanup did (it removes the TTL
#: schedules and the endpoints; a schedule made then would outlive the stack).
TTL_STATUSES = frozenset({"FAILED", "TIMED_OUT"})


@dataclass(frozen=True)
class EndedExecution:
    execution_arn: str
    execution_name: str
    state_machine_arn: str
    status: str
    error: str | None = None
    cause: str | None = None
    #: The execution input (JSON text), as the event carries it.
    input: str | None = None

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
            input=detail.get("input") if isinstance(detail.get("input"), str) else None,
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
    #: The run's resolved input (None: the input was invalid, nothing was deployed).
    run: RunSpec | None = None
    #: Where a TTL schedule points (None: this context makes no schedules).
    ttl: TtlTarget | None = None
    #: How soon the TTL of an endpoint the failed run itself created fires.
    ttl_soon_minutes: int = 15
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


def ensure_endpoint_ttl(
    ended: EndedExecution, ctx: ReleaseContext, *, now: datetime | None = None
) -> dict[str, Any]:
    """A run that ended (FAILED, TIMED_OUT) after Deploy but before
    ScheduleEndpointTtl left an endpoint nothing deletes: give it a TTL.

    The rule (never breaks what serves from an earlier run):

    - only the run's own endpoint (its input's ``endpoint_name`` or the stack's
      default), only with this stack's tag, only if the run deployed to it: the
      endpoint serves this run's config or is moving to it (a rolled-back or
      never-started update leaves the earlier run's TTL alone);
    - nothing if the run asked to keep it (``ttl_hours: 0``) or mode is none;
    - nothing if a TTL schedule of the endpoint exists (CreateSchedule answers
      ConflictException): the earlier run's, or this run's own;
    - else the standard schedule ``<endpoint>-<hash8>-ttl``: ``ttl_soon_minutes``
      from now if this run created the endpoint (its execution tag: a failed
      run's new endpoint serves nobody; EndpointTtl re-arms while it is still
      Creating), else ``ttl_hours`` from now, as ScheduleEndpointTtl would have.
    """
    if ended.status not in TTL_STATUSES:
        return {"scheduled": False, "reason": f"not after {ended.status}"}
    run, target = ctx.run, ctx.ttl
    if target is None:
        return {"scheduled": False, "reason": "no TTL target configured"}
    if run is None:
        return {"scheduled": False, "reason": "the input was invalid: nothing was deployed"}
    if run.endpoint_mode == "none" or run.ttl_hours <= 0:
        return {"scheduled": False, "reason": "the run keeps no endpoint or asked to keep it"}
    sm, name = ctx.clients["sagemaker"], run.endpoint_name
    try:
        described = sm.describe_endpoint(EndpointName=name)
    except ClientError as e:
        if is_not_found(e):
            return {"scheduled": False, "endpoint": name, "reason": "no endpoint"}
        raise named_error(e, "DescribeEndpoint") from e
    ours = run.names.endpoint_config
    pending = (described.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    if ours not in (described.get("EndpointConfigName"), pending) or (
        described.get("EndpointStatus") == "Deleting"
    ):
        return {"scheduled": False, "endpoint": name, "reason": "the run did not deploy to it"}
    try:
        tags = tags_to_dict(sm.list_tags(ResourceArn=described["EndpointArn"]).get("Tags"))
    except ClientError as e:
        raise named_error(e, "ListTags") from e
    if tags.get(STACK_TAG_KEY) != tag_value(ctx.stack_tag):
        return {"scheduled": False, "endpoint": name, "reason": "not this stack's endpoint"}
    created = tags.get(EXECUTION_TAG_KEY) == tag_value(ended.execution_name)
    moment = now or datetime.now(UTC)
    deletes_at = moment + (
        timedelta(minutes=ctx.ttl_soon_minutes) if created else timedelta(hours=run.ttl_hours)
    )
    request = build_schedule_request(
        endpoint_name=name,
        deletes_at=deletes_at,
        target_arn=target.function_arn,
        role_arn=target.role_arn,
        stack_tag=target.stack_tag,
    )
    try:
        ctx.clients["scheduler"].create_schedule(**request)
    except ClientError as e:
        if code_of(e) == "ConflictException":
            return {"scheduled": False, "endpoint": name, "reason": "a TTL schedule exists"}
        raise named_error(e, "CreateSchedule") from e
    return {
        "scheduled": True,
        "endpoint": name,
        "schedule_name": schedule_name(name),
        "deletes_at": iso(deletes_at),
        "created_by_run": created,
    }


#: The steps, in order. Add to it with :func:`register_release_step`.
RELEASE_STEPS: list[tuple[str, ReleaseStep]] = [
    ("tuning_job", stop_tuning_job),
    ("transform_job", stop_transform_job),
    ("endpoint_leases", release_endpoint_leases),
    ("endpoint_ttl", ensure_endpoint_ttl),
]


def notified_by_execution(ended: EndedExecution) -> bool:
    """True if NotifyFailure already told the topic: a FAILED execution that
    ended in one of the named Fail states (any error a Catch can take)."""
    return ended.status == "FAILED" and bool(ended.error) and ended.error not in UNCAUGHT_ERRORS


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
