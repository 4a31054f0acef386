"""LoadModelPackage: input ``model_package_arn`` (deploy or roll back to a
registered version): ``{"registry", "tuning", "data"}`` from its description."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, field, load_settings
from pipeline_core.inputs import RunSpec
from pipeline_core.registry import load_model_package

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
        result = load_model_package(
            RunSpec.from_dict(field(event, "run")),
            _clients(s),
            group=s.model_package_group,
        )
    except Exception:
        logger.exception("LoadModelPackage failed")
        raise
    logger.info("model package loaded", extra={"registry": result["registry"]})
    return result
