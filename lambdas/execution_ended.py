"""ExecutionEnded: EventBridge target for FAILED / TIMED_OUT / ABORTED executions.

Stops the run's tuning or transform job, releases whatever else the run
holds and gives an endpoint the run deployed its TTL if the run ended before
scheduling it (``pipeline_core.release.RELEASE_STEPS``). Then it tells the
topic how the execution ended, unless NotifyFailure already did (a named Fail
state): one notification per failure. The local run calls this handler with
the same event shape.
"""

from __future__ import annotations

import json
from typing import Any

from lambdas._env import Settings, client
from lambdas._handler import logger, task
from pipeline_core.errors import InvalidInputError
from pipeline_core.inputs import RunSpec
from pipeline_core.release import (
    ENDED_STATUSES,
    EndedExecution,
    ReleaseContext,
    ended_message,
    notified_by_execution,
    release_run,
)
from pipeline_core.ttl import TtlTarget


def _clients(s: Settings) -> tuple[Any, Any, Any, Any]:
    """(sagemaker, sns, dynamodb, scheduler)."""
    return (
        client("sagemaker", s.region),
        client("sns", s.region),
        client("dynamodb", s.region),
        client("scheduler", s.region),
    )


def _run_of(ended: EndedExecution, s: Settings) -> RunSpec | None:
    """The run's resolved input, as ValidateInput resolved it (None if invalid)."""
    try:
        raw = json.loads(ended.input) if ended.input else {}
        return s.resolve_run(raw, ended.execution_name)
    except (InvalidInputError, ValueError):
        return None


def _ttl_target(s: Settings) -> TtlTarget | None:
    if not (s.ttl_function_arn and s.scheduler_role_arn):
        return None
    return TtlTarget(
        function_arn=s.ttl_function_arn, role_arn=s.scheduler_role_arn, stack_tag=s.stack_tag
    )


@task("ExecutionEnded")
def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
    s.require(TOPIC_ARN=s.topic_arn)
    ended = EndedExecution.from_event(event)
    if ended.status not in ENDED_STATUSES:
        logger.info("nothing to do", extra={"status": ended.status})
        return {"status": ended.status, "released": {}}
    sm, sns, ddb, scheduler = _clients(s)
    released = release_run(
        ended,
        ReleaseContext(
            clients={"sagemaker": sm, "dynamodb": ddb, "scheduler": scheduler},
            name_prefix=s.config.name_prefix,
            stack_tag=s.stack_tag,
            salt=s.salt,
            lock_table=s.lock_table,
            run=_run_of(ended, s),
            ttl=_ttl_target(s),
            ttl_soon_minutes=s.config.ttl_rearm_minutes,
        ),
        log=logger.warning,
    )
    message = ended_message(ended, released)
    # NotifyFailure already published a failure that reached a named Fail state.
    published = not notified_by_execution(ended)
    if published:
        sns.publish(
            TopicArn=s.topic_arn,
            Subject=f"MNIST Linear Learner pipeline {ended.status}"[:100],
            Message=json.dumps(message, default=str),
        )
    logger.info("execution ended", extra={"message": message, "published": published})
    return {**message, "published": published}
