"""StartTuning: create (or adopt on retry) the tuning job (``$.tuning``)."""

from __future__ import annotations

from typing import Any

from lambdas._env import Settings, client, field
from lambdas._handler import logger, task
from pipeline_core.inputs import RunSpec
from pipeline_core.tuning import start_tuning


def _clients(s: Settings) -> Any:
    return client("sagemaker", s.region)


@task("StartTuning")
def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
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
    logger.info("tuning job started", extra={"tuning": tuning})
    return tuning
