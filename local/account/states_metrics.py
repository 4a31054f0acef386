"""Step Functions' execution metrics in the local account (moto publishes none).

Step Functions publishes, per ``StateMachineArn`` in namespace ``AWS/States``,
``ExecutionsStarted`` when an execution starts and one of
``ExecutionsSucceeded``/``ExecutionsFailed``/``ExecutionsTimedOut``/
``ExecutionsAborted`` (count 1) and ``ExecutionTime`` (Milliseconds) when it
ends. :class:`StatesMetrics` publishes them from the account's status-change
watcher (:mod:`local.account.execution_events`), which hands each change to
:meth:`StatesMetrics.on_status_change` (the "Step Functions Execution Status
Change" event's ``detail``). Each execution's start and end are published once,
the start with the ending when the watcher saw only the ending.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("local.account.states_metrics")

NAMESPACE = "AWS/States"
ENDINGS = {
    "SUCCEEDED": "ExecutionsSucceeded",
    "FAILED": "ExecutionsFailed",
    "TIMED_OUT": "ExecutionsTimedOut",
    "ABORTED": "ExecutionsAborted",
}


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):  # the event's epoch milliseconds
        return datetime.fromtimestamp(value / 1000, UTC)
    return datetime.now(UTC)


class StatesMetrics:
    def __init__(self, cloudwatch: Any) -> None:
        self.cloudwatch = cloudwatch
        self._started: set[str] = set()
        self._ended: set[str] = set()
        # moto's executions outlive an account in this process: only newer ones count.
        self._since = datetime.now(UTC)

    def on_status_change(self, detail: dict[str, Any]) -> None:
        """One execution's status (its ``executionArn``, ``stateMachineArn``,
        ``status``, ``startDate``, ``stopDate``)."""
        arn = str(detail["executionArn"])
        data: list[dict[str, Any]] = []
        dims = [{"Name": "StateMachineArn", "Value": str(detail["stateMachineArn"])}]
        started = _moment(detail.get("startDate"))
        if started < self._since:
            return
        if arn not in self._started:
            data.append(
                {
                    "MetricName": "ExecutionsStarted",
                    "Dimensions": dims,
                    "Timestamp": started,
                    "Value": 1.0,
                    "Unit": "Count",
                }
            )
        ending = ENDINGS.get(str(detail.get("status")))
        if ending and arn not in self._ended:
            stopped = _moment(detail.get("stopDate"))
            millis = max(0.0, (stopped - started).total_seconds() * 1000)
            data += [
                {
                    "MetricName": ending,
                    "Dimensions": dims,
                    "Timestamp": stopped,
                    "Value": 1.0,
                    "Unit": "Count",
                },
                {
                    "MetricName": "ExecutionTime",
                    "Dimensions": dims,
                    "Timestamp": stopped,
                    "Value": millis,
                    "Unit": "Milliseconds",
                },
            ]
        if not data:
            return
        try:
            self.cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)
        except Exception as e:
            log.warning("could not publish the metrics of %s: %s", arn, e)
            return
        self._started.add(arn)
        if ending:
            self._ended.add(arn)
