"""EndpointTtl: invoked by the endpoint's one-time Scheduler schedule.

Deletes the endpoint, its config and its model (shared cleanup code), then
tells the topic. The event is the schedule's target input:
``{"endpoint_name", "schedule_name", "deletes_at"}`` (a re-armed TTL adds
``rearms`` and ``endpoint_config``). A busy endpoint re-arms the TTL
(:func:`pipeline_core.ttl.expire_endpoint`) with this function's own ARN as
the new schedule's target: the function cannot name itself in its environment.
An error it cannot handle goes, after Lambda's two retries, to the stack's
topic (the function's on-failure destination).
"""

from __future__ import annotations

import json
from typing import Any

from lambdas._env import Settings, client
from lambdas._handler import logger, task
from pipeline_core.ttl import TtlTarget, expire_endpoint

#: What the topic is told, by outcome (a re-arm or a superseded re-arm is only logged).
SUBJECTS = {
    "deleted": "MNIST Linear Learner endpoint deleted (time-to-live)",
    "skipped": "MNIST Linear Learner endpoint deleted (time-to-live)",
    "gave_up": "MNIST Linear Learner endpoint NOT deleted: still busy at its time-to-live",
}
STATUSES = {"deleted": "ENDPOINT_TTL", "skipped": "ENDPOINT_TTL", "gave_up": "ENDPOINT_TTL_GAVE_UP"}


def own_arn(context: object) -> str:
    """This function's unqualified ARN, from the invocation (a qualifier such as
    ``:$LATEST`` dropped: Cleanup finds our schedules by that exact target)."""
    arn = str(getattr(context, "invoked_function_arn", "") or "")
    return ":".join(arn.split(":")[:7])


def _clients(s: Settings) -> tuple[Any, Any, Any]:
    """(sagemaker, sns, scheduler)."""
    return client("sagemaker", s.region), client("sns", s.region), client("scheduler", s.region)


@task("EndpointTtl")
def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
    s.require(STACK_TAG=s.stack_tag, TOPIC_ARN=s.topic_arn, SCHEDULER_ROLE_ARN=s.scheduler_role_arn)
    sm, sns, scheduler = _clients(s)
    result = expire_endpoint(
        sm,
        scheduler,
        event,
        target=TtlTarget(
            function_arn=own_arn(context) or s.ttl_function_arn,
            role_arn=s.scheduler_role_arn,
            stack_tag=s.stack_tag,
        ),
        rearm_minutes=s.config.ttl_rearm_minutes,
        rearm_limit=s.config.ttl_rearm_limit,
        log=logger.warning,
    )
    action = str(result["action"])
    if action in SUBJECTS:
        sns.publish(
            TopicArn=s.topic_arn,
            Subject=SUBJECTS[action],
            Message=json.dumps({**event, "status": STATUSES[action], **result}),
        )
    logger.info("endpoint ttl done", extra={"result": result})
    return result
