"""Target of the "SageMaker Model Package State Change" rule: release the
execution waiting for this version's approval (pipeline_core.approval)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, load_settings
from pipeline_core.approval import release

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
        result = release(
            event,
            s3=s3,
            sm=sm,
            sfn=sfn,
            bucket=s.bucket,
            group=s.model_package_group,
            log=logger.warning,
        )
    except Exception:
        logger.exception("ApprovalDecided failed")
        raise
    logger.info("approval decided", extra={"result": result})
    return result
