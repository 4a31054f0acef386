"""ExecutionEnded: EventBridge target for FAILED / TIMED_OUT / ABORTED executions.

Stops the run's tuning or transform job and releases whatever else the run
holds (``pipeline_core.release.RELEASE_STEPS``), then tells the topic how the
execution ended. The local run calls this handler with the same event shape.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, load_settings
from pipeline_core.release import (
    ENDED_STATUSES,
    EndedExecution,
    ReleaseContext,
    ended_message,
    release_run,
)

logger = Logger()
tracer = Tracer()


def _settings() -> Settings:
    return load_settings()


def _clients(s: Settings) -> tuple[Any, Any, Any]:
    """(sagemaker, sns, dynamodb)."""
    return client("sagemaker", s.region), client("sns", s.region), client("dynamodb", s.region)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    s = _settings()
    try:
        s.require(TOPIC_ARN=s.topic_arn)
        ended = EndedExecution.from_event(event)
        if ended.status not in ENDED_STATUSES:
            logger.info("nothing to do", extra={"status": ended.status})
            return {"status": ended.status, "released": {}}
        sm, sns, ddb = _clients(s)
        released = release_run(
            ended,
            ReleaseContext(
                clients={"sagemaker": sm, "dynamodb": ddb},
                name_prefix=s.config.name_prefix,
                stack_tag=s.stack_tag,
                salt=s.salt,
                lock_table=s.lock_table,
            ),
            log=logger.warning,
        )
        message = ended_message(ended, released)
        sns.publish(
            TopicArn=s.topic_arn,
            Subject=f"MNIST Linear Learner pipeline {ended.status}"[:100],
            Message=json.dumps(message, default=str),
        )
    except Exception:
        logger.exception("ExecutionEnded failed")
        raise
    logger.info("execution ended", extra={"message": message})
    return message
