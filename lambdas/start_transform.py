"""StartTransform (endpoint mode ``none``): model + Batch Transform job (``$.deploy``)."""

from __future__ import annotations

from typing import Any

from lambdas._env import Settings, client, field
from lambdas._handler import logger, task
from pipeline_core.inputs import RunSpec
from pipeline_core.transform import start_transform


def _clients(s: Settings) -> Any:
    return client("sagemaker", s.region)


@task("StartTransform")
def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
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
    logger.info("transform job started", extra={"deploy": result})
    return result
