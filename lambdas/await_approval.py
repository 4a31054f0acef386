"""WaitForApproval (``.waitForTaskToken``): keep the task token until a person
approves or rejects the registered version (pipeline_core.approval)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, field, load_settings
from pipeline_core.approval import hold

logger = Logger()
tracer = Tracer()


def _settings() -> Settings:
    return load_settings()


def _clients(s: Settings) -> tuple[Any, Any, Any]:
    """(s3, sagemaker, stepfunctions)."""
    return client("s3", s.region), client("sagemaker", s.region), client("stepfunctions", s.region)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    s = _settings()
    try:
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
    except Exception:
        logger.exception("WaitForApproval failed")
        raise
    logger.info("approval", extra={"approval": result})
    return result
