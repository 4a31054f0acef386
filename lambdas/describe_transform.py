"""DescribeTransform: one poll of the Batch Transform job (``$.transform``); once the
job has ended, its model is deleted (the predictions are in S3 already)."""

from __future__ import annotations

from typing import Any

from lambdas._env import Settings, client, field
from lambdas._handler import logger, task
from pipeline_core.inputs import RunSpec
from pipeline_core.retire import retire_transform_model
from pipeline_core.transform import describe_transform

#: The job's statuses once it has ended (no longer needs its model).
ENDED = frozenset({"Completed", "Failed", "Stopped"})


def _clients(s: Settings) -> Any:
    return client("sagemaker", s.region)


@task("DescribeTransform")
def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
    sm = _clients(s)
    deployed = field(event, "deploy")
    result = describe_transform(
        RunSpec.from_dict(field(event, "run")), deployed, event.get("transform"), sm
    )
    result["retired"] = []
    if result["status"] in ENDED:
        result["retired"] = retire_transform_model(deployed, sm, log=logger.warning)
    logger.info("transform status", extra={"transform": result})
    return result
