"""DescribeEndpoint: one poll; on InService retire superseded configs/models (``$.endpoint``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, field, load_settings
from pipeline_core.deploy import retire_superseded
from pipeline_core.inputs import RunSpec
from pipeline_core.status import describe_endpoint_status

logger = Logger()
tracer = Tracer()


def _settings() -> Settings:
    return load_settings()


def _clients(s: Settings) -> Any:
    return client("sagemaker", s.region)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    s = _settings()
    try:
        run = RunSpec.from_dict(field(event, "run"))
        deployed = field(event, "deploy")
        sm = _clients(s)
        endpoint = describe_endpoint_status(run, deployed, event.get("endpoint"), sm)
        endpoint["retired"] = []
        if endpoint["status"] == "InService" and s.stack_tag:
            endpoint["retired"] = retire_superseded(
                run,
                deployed,
                sm,
                stack_tag=s.stack_tag,
                name_prefix=s.config.name_prefix,
                log=logger.warning,
            )
    except Exception:
        logger.exception("DescribeEndpoint failed")
        raise
    logger.info("endpoint status", extra={"endpoint": endpoint})
    return endpoint
