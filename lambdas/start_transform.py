"""StartTransform (endpoint mode ``none``): model + Batch Transform job (``$.deploy``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, field, load_settings
from pipeline_core.inputs import RunSpec
from pipeline_core.transform import start_transform

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
        s.require(SAGEMAKER_ROLE_ARN=s.role_arn, LINEAR_LEARNER_IMAGE=s.image_uri)
        result = start_transform(
            RunSpec.from_dict(field(event, "run")),
            s.config,
            field(event, "tuning"),
            field(event, "data"),
            _clients(s),
            image_uri=s.image_uri,
            role_arn=s.role_arn,
            kms_key_arn=s.kms_key_arn,
        )
    except Exception:
        logger.exception("StartTransform failed")
        raise
    logger.info("transform job started", extra={"deploy": result})
    return result
