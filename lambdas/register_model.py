"""RegisterModel: the tuned model becomes a version of the stack's Model
Package Group, Approved (approval ``auto``) or PendingManualApproval (``$.registry``)."""

from __future__ import annotations

from typing import Any

from lambdas._env import Settings, client, field
from lambdas._handler import logger, task
from pipeline_core.inputs import RunSpec
from pipeline_core.registry import register_model


def _clients(s: Settings) -> Any:
    return client("sagemaker", s.region)


@task("RegisterModel")
def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
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
    logger.info("model registered", extra={"registry": result})
    return result
