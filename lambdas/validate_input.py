"""ValidateInput: execution input -> resolved run spec (``$.run``).

Its one AWS call: a look at the run's endpoint, so a run of the other kind
(instance-based vs serverless) fails here, before any conversion or training.
"""

from __future__ import annotations

from typing import Any

from lambdas._env import Settings, client
from lambdas._handler import logger, task
from pipeline_core.deploy import preflight_endpoint_kind


def _clients(s: Settings) -> Any:
    """sagemaker."""
    return client("sagemaker", s.region)


@task("ValidateInput")
def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
    s.require(STACK_TAG=s.stack_tag, DEPLOYMENT_SALT=s.salt)
    run = s.resolve_run(event.get("input"), event.get("execution_name", ""))
    # An endpoint of the other kind cannot take this run: say so before any cost.
    preflight_endpoint_kind(run, _clients(s))
    logger.info("run resolved", extra={"names": run.names.to_dict(), "source": run.source})
    return run.to_dict()
