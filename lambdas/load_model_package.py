"""LoadModelPackage: input ``model_package_arn`` (deploy or roll back to a
registered version): ``{"registry", "tuning", "data"}`` from its description,
once its test data is known to exist (ModelTestDataMissingError otherwise)."""

from __future__ import annotations

from typing import Any

from lambdas._env import Settings, client, field
from lambdas._handler import logger, task
from pipeline_core.inputs import RunSpec
from pipeline_core.registry import load_model_package, require_test_data


def _clients(s: Settings) -> tuple[Any, Any]:
    """(sagemaker, s3)."""
    return client("sagemaker", s.region), client("s3", s.region)


@task("LoadModelPackage")
def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
    sm, s3 = _clients(s)
    result = load_model_package(
        RunSpec.from_dict(field(event, "run")), sm, group=s.model_package_group
    )
    # Before Deploy touches the endpoint: Evaluate will need the test data.
    arn = result["registry"]["model_package_arn"]
    result["data"] = require_test_data(s3, result["data"], arn=arn)
    logger.info("model package loaded", extra={"registry": result["registry"]})
    return result
