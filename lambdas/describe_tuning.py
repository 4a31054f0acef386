"""DescribeTuning: one poll of the tuning job plus the quality gate (``$.tuning``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, field, load_settings
from pipeline_core.inputs import RunSpec
from pipeline_core.status import describe_tuning

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
        tuning = describe_tuning(
            RunSpec.from_dict(field(event, "run")), field(event, "tuning"), _clients(s)
        )
    except Exception:
        logger.exception("DescribeTuning failed")
        raise
    logger.info("tuning status", extra={"status": tuning["status"], "gate": tuning["gate"]})
    return tuning
