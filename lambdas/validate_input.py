"""ValidateInput: execution input -> resolved run spec (``$.run``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, load_settings
from pipeline_core.inputs import resolve_run

logger = Logger()
tracer = Tracer()


def _settings() -> Settings:
    return load_settings()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    s = _settings()
    try:
        s.require(STACK_TAG=s.stack_tag, DEPLOYMENT_SALT=s.salt)
        run = resolve_run(
            event.get("input"),
            execution_name=event.get("execution_name", ""),
            config=s.config,
            bucket=s.bucket,
            region=s.region,
            default_endpoint_name=s.default_endpoint_name,
            stack_tag=s.stack_tag,
            allow_local_sources=s.allow_local_sources,
            salt=s.salt,
            model_package_group=s.model_package_group,
        )
    except Exception:
        logger.exception("ValidateInput failed")
        raise
    logger.info("run resolved", extra={"names": run.names.to_dict(), "source": run.source})
    return run.to_dict()
