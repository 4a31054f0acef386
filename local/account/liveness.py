"""One live account per process.

moto keeps one state per process, so two local accounts started in one
process (tests do: a module's shared account and a test's own) share their
Step Functions executions, schedules and alarms, and this process's boto3
points at the newest. Only the newest account's background loops act on that
shared state (the status-change watcher, the scheduler, the alarm evaluator):
otherwise an execution's ending would reach ExecutionEnded once per account,
and a schedule would fire twice. An older account's loops resume when the
newer one stops. Calls a test makes itself (``tick()``, ``evaluate()``) are
not gated.
"""

from __future__ import annotations

import threading

_LIVE: list[object] = []
_LOCK = threading.Lock()


def claim(owner: object) -> None:
    """``owner`` becomes the live account."""
    with _LOCK:
        _LIVE.append(owner)


def release(owner: object) -> None:
    with _LOCK:
        if owner in _LIVE:
            _LIVE.remove(owner)


def is_live(owner: object) -> bool:
    """Whether ``owner`` is the newest account still up (or none is)."""
    with _LOCK:
        return not _LIVE or _LIVE[-1] is owner
