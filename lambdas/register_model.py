"""RegisterModel: the tuned model becomes a version of the stack's Model
Package Group, Approved (approval ``auto``) or PendingManualApproval (``$.registry``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, field, load_settings
from pipeline_core.inputs import RunSpec
from pipeline_core.registry import register_model

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
        s.require(LINEAR_LEARNER_IMAGE=s.image_uri)
        result = register_model(
            RunSpec.from_dict(field(event, "run")),
            s.config,
            field(event, "tuning"),
            field(event, "data"),
            _clients(s),
            group=s.model_package_group,
            image_uri=s.image_uri,
        )
    except Exception:
        logger.exception("RegisterModel failed")
        raise
    logger.info("model registered", extra={"registry": result})
    return result
