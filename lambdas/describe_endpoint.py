"""DescribeEndpoint: one poll (``$.endpoint``). On InService the config and model
this run superseded are retired; on a rolled-back update this run's own config
and model, which never served, are deleted."""

from __future__ import annotations

from typing import Any

from lambdas._env import Settings, client, field
from lambdas._handler import logger, task
from pipeline_core.errors import PollLimitExceededError
from pipeline_core.inputs import RunSpec
from pipeline_core.lease import release
from pipeline_core.retire import discard_unserved, retire_superseded
from pipeline_core.status import describe_endpoint_status

#: Statuses that end the execution: the run no longer needs the endpoint's lease.
FINAL_FAILURES = frozenset({"Failed", "UpdateFailed"})


def _clients(s: Settings) -> tuple[Any, Any]:
    """(sagemaker, dynamodb)."""
    return client("sagemaker", s.region), client("dynamodb", s.region)


def _release(ddb: Any, s: Settings, run: RunSpec) -> None:
    """The deployment failed for good: free the endpoint for the next execution."""
    if not s.lock_table:
        return
    try:
        release(ddb, s.lock_table, endpoint_name=run.endpoint_name, holder=run.execution_name)
    except Exception as e:  # the lease expires anyway; report the endpoint's failure
        logger.warning(f"could not release the lease of {run.endpoint_name}: {e}")


@task("DescribeEndpoint")
def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
    run = RunSpec.from_dict(field(event, "run"))
    deployed = field(event, "deploy")
    sm, ddb = _clients(s)
    try:
        endpoint = describe_endpoint_status(run, deployed, event.get("endpoint"), sm)
    except PollLimitExceededError:
        _release(ddb, s, run)
        raise
    if endpoint["status"] in FINAL_FAILURES:
        _release(ddb, s, run)
    endpoint["retired"] = []
    if endpoint["status"] == "InService" and s.stack_tag:
        endpoint["retired"] = retire_superseded(
            deployed, sm, stack_tag=s.stack_tag, log=logger.warning
        )
    elif endpoint["status"] == "UpdateFailed":
        endpoint["retired"] = discard_unserved(
            deployed,
            serving_config=endpoint.get("endpoint_config_name"),
            sm=sm,
            log=logger.warning,
        )
    logger.info("endpoint status", extra={"endpoint": endpoint})
    return endpoint
