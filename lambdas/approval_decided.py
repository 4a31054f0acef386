"""Target of the "SageMaker Model Package State Change" rule: release the
execution waiting for this version's approval (pipeline_core.approval)."""

from __future__ import annotations

from typing import Any

from lambdas._env import Settings, client
from lambdas._handler import logger, task
from pipeline_core.approval import release


def _clients(s: Settings) -> tuple[Any, Any, Any]:
    """(s3, sagemaker, stepfunctions)."""
    return client("s3", s.region), client("sagemaker", s.region), client("stepfunctions", s.region)


@task("ApprovalDecided")
def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
    s.require(DATA_BUCKET=s.bucket)
    s3, sm, sfn = _clients(s)
    result = release(
        event,
        s3=s3,
        sm=sm,
        sfn=sfn,
        bucket=s.bucket,
        group=s.model_package_group,
        log=logger.warning,
    )
    logger.info("approval decided", extra={"result": result})
    return result
