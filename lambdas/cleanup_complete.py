"""CleanupComplete: the cleanup custom resource's ``isComplete`` handler.

Called by the Provider framework every ``query_interval`` after ``onEvent``
(lambdas.cleanup) handled a Delete. Deletes this stack's endpoints that can
be deleted now, waits for those still Creating/Updating, then removes the
endpoint configs and models. Past ``Data.Deadline`` whatever is left is
named by ARN in the raised error, which becomes the custom resource's reason.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, load_settings
from pipeline_core.teardown import teardown_poll

logger = Logger()
tracer = Tracer()


def _settings() -> Settings:
    return load_settings()


def _clients(s: Settings) -> Any:
    return client("sagemaker", s.region)


def _now() -> float:
    return time.time()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    if event.get("RequestType") != "Delete":
        return {"IsComplete": True}
    s = _settings()
    if not s.stack_tag:
        logger.error("STACK_TAG is not set; nothing to wait for")
        return {"IsComplete": True}
    deadline = float((event.get("Data") or {}).get("Deadline") or 0.0)
    try:
        result = teardown_poll(
            _clients(s),
            stack_tag=s.stack_tag,
            name_prefix=s.config.name_prefix,
            now=_now(),
            deadline=deadline or _now(),
            log=logger.warning,
        )
    except Exception:
        logger.exception("cleanup did not finish")
        raise
    logger.info("cleanup progress", extra={"result": result})
    return {"IsComplete": bool(result["complete"])}
