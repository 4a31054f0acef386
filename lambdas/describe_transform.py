"""DescribeTransform: one poll of the Batch Transform job (``$.transform``); once the
job has ended, its model is deleted (the predictions are in S3 already)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, field, load_settings
from pipeline_core.inputs import RunSpec
from pipeline_core.retire import retire_transform_model
from pipeline_core.transform import describe_transform

logger = Logger()
tracer = Tracer()

#: The job's statuses once it has ended (no longer needs its model).
ENDED = frozenset({"Completed", "Failed", "Stopped"})


def _settings() -> Settings:
    return load_settings()


def _clients(s: Settings) -> Any:
    return client("sagemaker", s.region)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    s = _settings()
    try:
        sm = _clients(s)
        deployed = field(event, "deploy")
        result = describe_transform(
            RunSpec.from_dict(field(event, "run")), deployed, event.get("transform"), sm
        )
        result["retired"] = []
        if result["status"] in ENDED:
            result["retired"] = retire_transform_model(deployed, sm, log=logger.warning)
    except Exception:
        logger.exception("DescribeTransform failed")
        raise
    logger.info("transform status", extra={"transform": result})
    return result
