"""ValidateInput: execution input -> resolved run spec (``$.run``).

Its one AWS call: a look at the run's endpoint, so a run of the other kind
(instance-based vs serverless) fails here, before any conversion or training.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, load_settings
from pipeline_core.deploy import preflight_endpoint_kind

logger = Logger()
tracer = Tracer()


def _settings() -> Settings:
    return load_settings()


def _clients(s: Settings) -> Any:
    """sagemaker."""
    return client("sagemaker", s.region)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    s = _settings()
    try:
        s.require(STACK_TAG=s.stack_tag, DEPLOYMENT_SALT=s.salt)
        run = s.resolve_run(event.get("input"), event.get("execution_name", ""))
        # An endpoint of the other kind cannot take this run: say so before any cost.
        preflight_endpoint_kind(run, _clients(s))
    except Exception:
        logger.exception("ValidateInput failed")
        raise
    logger.info("run resolved", extra={"names": run.names.to_dict(), "source": run.source})
    return run.to_dict()
