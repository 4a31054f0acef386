"""ScheduleEndpointTtl: create or move the endpoint's deletion schedule (``$.ttl``)."""

from __future__ import annotations

from typing import Any

from lambdas._env import Settings, client, field
from lambdas._handler import logger, task
from pipeline_core.inputs import RunSpec
from pipeline_core.ttl import schedule_endpoint_ttl


def _clients(s: Settings) -> Any:
    return client("scheduler", s.region)


@task("ScheduleEndpointTtl")
def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
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
    logger.info("endpoint ttl", extra={"ttl": result})
    return result
