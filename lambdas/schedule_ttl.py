"""ScheduleEndpointTtl: create or move the endpoint's deletion schedule (``$.ttl``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, field, load_settings
from pipeline_core.inputs import RunSpec
from pipeline_core.ttl import schedule_endpoint_ttl

logger = Logger()
tracer = Tracer()


def _settings() -> Settings:
    return load_settings()


def _clients(s: Settings) -> Any:
    return client("scheduler", s.region)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    s = _settings()
    try:
        s.require(TTL_FUNCTION_ARN=s.ttl_function_arn, SCHEDULER_ROLE_ARN=s.scheduler_role_arn)
        run = RunSpec.from_dict(field(event, "run"))
        result = schedule_endpoint_ttl(
            endpoint_name=str(field(event, "deploy")["endpoint_name"]),
            ttl_hours=run.ttl_hours,
            scheduler=_clients(s),
            target_arn=s.ttl_function_arn,
            role_arn=s.scheduler_role_arn,
            stack_tag=s.stack_tag,
        )
    except Exception:
        logger.exception("ScheduleEndpointTtl failed")
        raise
    logger.info("endpoint ttl", extra={"ttl": result})
    return result
