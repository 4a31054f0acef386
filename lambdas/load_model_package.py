"""LoadModelPackage: input ``model_package_arn`` (deploy or roll back to a
registered version): ``{"registry", "tuning", "data"}`` from its description,
once its test data is known to exist (ModelTestDataMissingError otherwise)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, field, load_settings
from pipeline_core.inputs import RunSpec
from pipeline_core.registry import load_model_package, require_test_data

logger = Logger()
tracer = Tracer()


def _settings() -> Settings:
    return load_settings()


def _clients(s: Settings) -> tuple[Any, Any]:
    """(sagemaker, s3)."""
    return client("sagemaker", s.region), client("s3", s.region)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    s = _settings()
    try:
        sm, s3 = _clients(s)
        result = load_model_package(
            RunSpec.from_dict(field(event, "run")), sm, group=s.model_package_group
        )
        # Before Deploy touches the endpoint: Evaluate will need the test data.
        arn = result["registry"]["model_package_arn"]
        result["data"] = require_test_data(s3, result["data"], arn=arn)
    except Exception:
        logger.exception("LoadModelPackage failed")
        raise
    logger.info("model package loaded", extra={"registry": result["registry"]})
    return result
