"""CleanupComplete: the cleanup custom resource's ``isComplete`` handler.

Called by the Provider framework every ``query_interval`` after ``onEvent``
(lambdas.cleanup) handled a Delete. Deletes this stack's endpoints that can
be deleted now, waits for those still Creating/Updating, then removes the
endpoint configs and models. Past ``Data.Deadline`` whatever is left is
named by ARN in the raised error, which becomes the custom resource's reason.
An error that waiting cannot cure (AccessDenied, a bug) is never raised (the
framework would retry it until its total timeout, then DELETE_FAILED): the
delete finishes and the log names what was left behind.
"""

from __future__ import annotations

import time
from typing import Any

from lambdas._env import Settings, client, load_settings
from lambdas._handler import entry, logger
from pipeline_core.teardown import TeardownIncompleteError, teardown_poll


def _clients(s: Settings) -> Any:
    return client("sagemaker", s.region)


def _now() -> float:
    return time.time()


@entry
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    if event.get("RequestType") != "Delete":
        return {"IsComplete": True}
    s = load_settings()
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
    except TeardownIncompleteError:
        # Endpoints that stayed Creating/Updating past the deadline: fail, naming them.
        logger.exception("cleanup did not finish")
        raise
    except Exception as e:
        # A bug or an unexpected error would fail every round the same way, and the
        # Provider retries until its total timeout (55 min), then DELETE_FAILED.
        logger.exception("cleanup cannot go on; letting the stack delete finish")
        return {"IsComplete": True, "Data": {"Unfinished": f"{type(e).__name__}: {e}"[:500]}}
    logger.info("cleanup progress", extra={"result": result})
    if result["left"]:
        logger.error("cleanup left resources behind", extra={"left": result["left"]})
        return {"IsComplete": True, "Data": {"Unfinished": f"{len(result['left'])} left"}}
    return {"IsComplete": bool(result["complete"])}
