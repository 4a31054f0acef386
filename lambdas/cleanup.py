"""Cleanup: CloudFormation custom resource (Provider framework ``onEvent``).

Create/Update do nothing. Delete removes the endpoints, endpoint configs and
models executions created (named ``<name_prefix>-*``, tagged
``mnist-ll:stack=<STACK_TAG>``) and stops their running tuning jobs; best
effort, never raises (not even on bad settings), bounded by the time left.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, load_settings, remaining_seconds
from pipeline_core.cleanup import cleanup_stack_resources

logger = Logger()
tracer = Tracer()

#: Seconds left unused so the Provider framework gets our answer in time.
MARGIN_SECONDS = 30.0


def _settings() -> Settings:
    return load_settings()


def _clients(s: Settings) -> Any:
    return client("sagemaker", s.region)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    # Nothing here may raise: a failed Delete would leave the stack DELETE_FAILED.
    try:
        s: Settings | None = _settings()
    except Exception:
        logger.exception("cannot load settings; cleaning up nothing")
        s = None
    stack_tag = s.stack_tag if s is not None else ""
    # Keep the id stable: a new id on Update would make CloudFormation Delete the old one.
    physical_id = str(event.get("PhysicalResourceId") or f"mnist-ll-cleanup-{stack_tag}")
    if event.get("RequestType") != "Delete" or s is None:
        return {"PhysicalResourceId": physical_id}
    if not s.stack_tag:
        logger.error("STACK_TAG is not set; refusing to clean up anything")
        return {"PhysicalResourceId": physical_id}
    try:
        summary = cleanup_stack_resources(
            _clients(s),
            stack_tag=s.stack_tag,
            name_prefix=s.config.name_prefix,
            remaining_seconds=lambda: remaining_seconds(context),
            log=logger.warning,
            margin_seconds=MARGIN_SECONDS,
        )
    except Exception:  # a failed cleanup must never block the stack deletion
        logger.exception("cleanup failed")
        return {"PhysicalResourceId": physical_id}
    logger.info("cleanup done", extra={"summary": summary})
    return {"PhysicalResourceId": physical_id, "Data": {"Failed": str(len(summary["failed"]))}}
