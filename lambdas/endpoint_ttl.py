"""EndpointTtl: invoked by the endpoint's one-time Scheduler schedule.

Deletes the endpoint, its config and its model (shared cleanup code), then
tells the topic. The event is the schedule's target input:
``{"endpoint_name", "schedule_name", "deletes_at"}``.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, field, load_settings
from pipeline_core.cleanup import delete_endpoint_resources

logger = Logger()
tracer = Tracer()


def _settings() -> Settings:
    return load_settings()


def _clients(s: Settings) -> tuple[Any, Any]:
    """(sagemaker, sns)."""
    return client("sagemaker", s.region), client("sns", s.region)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    s = _settings()
    try:
        s.require(STACK_TAG=s.stack_tag, TOPIC_ARN=s.topic_arn)
        sm, sns = _clients(s)
        result = delete_endpoint_resources(
            sm,
            endpoint_name=str(field(event, "endpoint_name")),
            stack_tag=s.stack_tag,
            log=logger.warning,
        )
        sns.publish(
            TopicArn=s.topic_arn,
            Subject="MNIST Linear Learner endpoint deleted (time-to-live)",
            Message=json.dumps({"status": "ENDPOINT_TTL", **event, **result}),
        )
    except Exception:
        logger.exception("EndpointTtl failed")
        raise
    logger.info("endpoint ttl done", extra={"result": result})
    return result
