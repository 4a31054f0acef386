"""DescribeTransform: one poll of the Batch Transform job (``$.transform``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, field, load_settings
from pipeline_core.inputs import RunSpec
from pipeline_core.transform import describe_transform

logger = Logger()
tracer = Tracer()


def _settings() -> Settings:
    return load_settings()


def _clients(s: Settings) -> Any:
    return client("sagemaker", s.region)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    s = _settings()
    try:
        result = describe_transform(
            RunSpec.from_dict(field(event, "run")),
            field(event, "deploy"),
            event.get("transform"),
            _clients(s),
        )
    except Exception:
        logger.exception("DescribeTransform failed")
        raise
    logger.info("transform status", extra={"transform": result})
    return result
