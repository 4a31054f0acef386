"""WaitForApproval (``.waitForTaskToken``): keep the task token until a person
approves or rejects the registered version (pipeline_core.approval)."""

from __future__ import annotations

from typing import Any

from lambdas._env import Settings, client, field
from lambdas._handler import logger, task
from pipeline_core.approval import hold


def _clients(s: Settings) -> tuple[Any, Any, Any]:
    """(s3, sagemaker, stepfunctions)."""
    return client("s3", s.region), client("sagemaker", s.region), client("stepfunctions", s.region)


@task("WaitForApproval")
def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
    s.require(DATA_BUCKET=s.bucket)
    s3, sm, sfn = _clients(s)
    result = hold(
        event,
        s3=s3,
        sm=sm,
        sfn=sfn,
        bucket=s.bucket,
        execution_name=str(field(event, "execution_name")),
    )
    logger.info("approval", extra={"approval": result})
    return result
