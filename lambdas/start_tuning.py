"""StartTuning: create (or adopt on retry) the tuning job (``$.tuning``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, field, load_settings
from pipeline_core.inputs import RunSpec
from pipeline_core.tuning import start_tuning

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
        tuning = start_tuning(
            RunSpec.from_dict(field(event, "run")),
            s.config,
            field(event, "data"),
            _clients(s),
            image_uri=s.image_uri,
            role_arn=s.role_arn,
            kms_key_arn=s.kms_key_arn,
        )
    except Exception:
        logger.exception("StartTuning failed")
        raise
    logger.info("tuning job started", extra={"tuning": tuning})
    return tuning
