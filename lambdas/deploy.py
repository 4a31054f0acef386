"""Deploy: model + endpoint config, then create or update the endpoint (``$.deploy``)."""

from __future__ import annotations

from typing import Any

from lambdas._env import Settings, client, field, remaining_seconds
from lambdas._handler import logger, task
from pipeline_core.deploy import deploy
from pipeline_core.inputs import RunSpec
from pipeline_core.lease import held_for_deploy
from pipeline_core.rollout import alarm_names, deployment_config

#: Seconds kept free at the end of the invocation when waiting for a deletion.
MARGIN_SECONDS = 20.0


def _clients(s: Settings) -> tuple[Any, Any]:
    """(sagemaker, dynamodb)."""
    return client("sagemaker", s.region), client("dynamodb", s.region)


def rollout_for(run: RunSpec, s: Settings) -> dict[str, Any] | None:
    """Blue/green DeploymentConfig for a realtime update; auto-rollback on the
    stack's alarms, which watch the stack's own endpoint only. None for
    serverless: deployment guardrails apply to real-time endpoints only."""
    if run.endpoint_mode != "realtime":
        return None
    alarms = alarm_names(run.endpoint_name) if run.endpoint_name == s.default_endpoint_name else ()
    return deployment_config(s.config.rollout, alarms, instance_count=run.endpoint_instance_count)


@task("Deploy")
def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
    s.require(
        SAGEMAKER_ROLE_ARN=s.role_arn,
        LINEAR_LEARNER_IMAGE=s.image_uri,
        STACK_TAG=s.stack_tag,
        LOCK_TABLE=s.lock_table,
    )
    run = RunSpec.from_dict(field(event, "run"))
    sm, ddb = _clients(s)
    # One deploy at a time per endpoint: EndpointBusyError while another holds it.
    with held_for_deploy(
        ddb,
        s.lock_table,
        endpoint_name=run.endpoint_name,
        holder=run.execution_name,
        ttl_seconds=s.config.endpoint_lease_seconds,
        log=logger.warning,
    ):
        result = deploy(
            run,
            s.config,
            field(event, "tuning"),
            sm,
            stack_tag=s.stack_tag,
            image_uri=s.image_uri,
            role_arn=s.role_arn,
            kms_key_arn=s.kms_key_arn,
            deletion_timeout=max(0.0, remaining_seconds(context) - MARGIN_SECONDS),
            deployment_config=rollout_for(run, s),
        )
    logger.info("deployment started", extra={"deploy": result})
    return result
