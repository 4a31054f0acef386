"""Step Functions' "Execution Status Change" events, which moto does not send.

:class:`ExecutionWatcher` polls moto's Step Functions backend in this process
for executions whose status changed and puts, for each change, the event
Step Functions would send to EventBridge (:func:`status_change_event`) to the
account's rules (:class:`local.account.event_rules.LocalEventRules`): RUNNING
when an execution starts, then its ending (SUCCEEDED, FAILED, TIMED_OUT or
ABORTED), each once. The template's end-of-execution rule then invokes the
ExecutionEnded Lambda, as in the cloud.

moto ends a stopped execution (``ABORTED``) once the task in flight returns;
the event follows then. A local ``--timeout`` stands for the state machine's
own timeout: :meth:`ExecutionWatcher.report_as` makes that ending a
TIMED_OUT event.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3

DETAIL_TYPE = "Step Functions Execution Status Change"
ENDINGS = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")

Put = Callable[[dict[str, Any]], Any]


def status_change_event(
    desc: dict[str, Any],
    *,
    status: str,
    error: str | None,
    cause: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The EventBridge event Step Functions sends when an execution's status
    changes (``desc`` is DescribeExecution's answer)."""

    def millis(value: Any) -> int | None:
        return int(value.timestamp() * 1000) if isinstance(value, datetime) else None

    ended = status in ENDINGS
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": "aws.states",
        "account": desc["executionArn"].split(":")[4],
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": desc["executionArn"].split(":")[3],
        "resources": [desc["executionArn"]],
        "detail": {
            "executionArn": desc["executionArn"],
            "stateMachineArn": desc["stateMachineArn"],
            "name": desc["name"],
            "status": status,
            "startDate": millis(desc.get("startDate")),
            "stopDate": (millis(desc.get("stopDate")) or int(now.timestamp() * 1000))
            if ended
            else None,
            "input": desc.get("input"),
            "output": desc.get("output") if status == "SUCCEEDED" else None,
            "error": error,
            "cause": cause,
        },
    }


@dataclass
class Ending:
    """One execution's ending as delivered to the rules."""

    event: dict[str, Any]
    #: What the matching rules' targets answered (local.account.event_rules.Delivery).
    deliveries: list[Any] = field(default_factory=list)


def _status(execution: Any) -> str:
    status = getattr(execution, "status", "")
    return str(getattr(status, "value", status))


def _executions(account: str, region: str) -> list[tuple[str, str]]:
    """(executionArn, status) of every execution moto holds, in this process."""
    from moto.stepfunctions.responses import get_backend

    backend = get_backend(account, region)
    out: list[tuple[str, str]] = []
    for machine in list(backend.state_machines):
        for execution in list(getattr(machine, "executions", [])):
            out.append((execution.execution_arn, _status(execution)))
    return out


class ExecutionWatcher:
    """Polls moto for execution status changes and puts their events."""

    def __init__(
        self, *, account: str, region: str, put: Put | None = None, interval: float = 0.2
    ) -> None:
        self.account = account
        self.region = region
        #: The rules' ``put`` (set when a template is deployed; None drops events).
        self.put = put
        self.interval = interval
        self._seen: dict[str, str] = {}
        self._overrides: dict[str, tuple[str, str | None, str | None]] = {}
        self.endings: dict[str, Ending] = {}
        self._ended = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tick_lock = threading.Lock()
        #: Called with every event put (``python -m local services`` prints them).
        self.listeners: list[Put] = []
        #: Whether this watcher's account is the live one (local/account/liveness.py).
        self.live: Callable[[], bool] = lambda: True

    def start(self) -> None:
        # Executions already in moto (an earlier account in this process) are old news.
        self._seen = dict(_executions(self.account, self.region))
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="execution-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def report_as(
        self, arn: str, status: str, *, error: str | None = None, cause: str | None = None
    ) -> None:
        """Report this execution's ending as ``status`` (a local ``--timeout``
        is the state machine's TIMED_OUT, though moto can only abort it)."""
        self._overrides[arn] = (status, error, cause)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if self.live():
                    self.tick()
                else:  # a newer account in this process reports these
                    self._seen.update(_executions(self.account, self.region))
            except Exception:  # noqa: S112 - moto restarting; the next tick retries
                continue

    def tick(self) -> None:
        """Put an event for every status change since the last tick."""
        with self._tick_lock:
            for arn, status in _executions(self.account, self.region):
                if self._seen.get(arn) == status:
                    continue
                self._seen[arn] = status
                if status == "RUNNING" or status in ENDINGS:
                    self._emit(arn, status)

    def _emit(self, arn: str, status: str) -> None:
        desc = boto3.client("stepfunctions").describe_execution(executionArn=arn)
        error, cause = desc.get("error"), desc.get("cause")
        if status in ENDINGS and arn in self._overrides:
            status, error, cause = self._overrides.pop(arn)
        event = status_change_event(
            desc, status=status, error=error, cause=cause, now=datetime.now(UTC)
        )
        deliveries = list(self.put(event) or []) if self.put is not None else []
        for listener in list(self.listeners):
            listener(event)
        if status in ENDINGS:
            with self._ended:
                self.endings[arn] = Ending(event, deliveries)
                self._ended.notify_all()

    def wait_ending(self, arn: str, timeout: float = 60.0) -> Ending:
        """The ending's event once put, with its deliveries (TimeoutError if none)."""
        with self._ended:
            if not self._ended.wait_for(lambda: arn in self.endings, timeout):
                raise TimeoutError(f"no status change event for {arn} in {timeout:.0f}s")
            return self.endings[arn]
