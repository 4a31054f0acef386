"""What every handler does around its work: one Logger and Tracer, the
settings loaded when the invocation starts, and the failure log.

A state's handler is its work under :func:`task`::

    @task("Deploy")
    def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
        sm, ddb = _clients(s)
        ...

Lambda still calls ``handler(event, context)``. ``task`` loads the settings
(:func:`lambdas._env.load_settings`, outside the failure log, as before), runs
the work and, should it raise, logs ``"<name> failed"`` with the traceback and
re-raises the same exception: Step Functions matches Retry and Catch on its
class name. Each module keeps its own ``_clients(s)``, naming its services
with literal ``client("…", s.region)`` calls: the IAM check
(tests/stack/test_iam_calls.py) reads them there and tests patch it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, load_settings

#: Every handler's (one service name, POWERTOOLS_SERVICE_NAME, so one logger).
logger = Logger()
tracer = Tracer()

Handler = Callable[[dict[str, Any], object], dict[str, Any]]
Work = Callable[[dict[str, Any], object, Settings], dict[str, Any]]


def entry(fn: Handler) -> Handler:
    """A Lambda entry point with the invocation's context in every log line
    (not the event) and an X-Ray subsegment."""
    traced: Handler = tracer.capture_lambda_handler(fn)
    logged: Handler = logger.inject_lambda_context(log_event=False)(traced)
    return logged


def task(name: str) -> Callable[[Work], Handler]:
    """The handler of the state ``name``: the work runs with the settings; a
    failure is logged as ``"<name> failed"`` and re-raised unchanged."""

    def wrap(work: Work) -> Handler:
        @functools.wraps(work)
        def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
            s = load_settings()
            try:
                return work(event, context, s)
            except Exception:
                logger.exception(f"{name} failed")
                raise

        return entry(handler)

    return wrap
