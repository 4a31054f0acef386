"""CloudWatch alarms evaluated in the local account (moto stores them, never
evaluates them).

:class:`AlarmEvaluator` reads every metric alarm from the account's
CloudWatch, evaluates it on the metric data there as CloudWatch does, sets
its state with CloudWatch's wording and runs its actions on a change:

- the last ``EvaluationPeriods`` periods of ``Period`` seconds, each one
  datapoint of ``Statistic`` (``GetMetricStatistics``; ``ExtendedStatistic``
  alarms and metric-math alarms are left as they are);
- ``DatapointsToAlarm`` of them (default: all) breaching by
  ``ComparisonOperator`` against ``Threshold`` -> ``ALARM``, else ``OK``;
- a missing period by ``TreatMissingData``: ``missing`` (nothing to judge:
  ``INSUFFICIENT_DATA`` when every period is missing), ``notBreaching``,
  ``breaching``, ``ignore`` (keep the current state when every period is
  missing);
- on a state change, an SNS topic in ``AlarmActions``/``OKActions``/
  ``InsufficientDataActions`` receives CloudWatch's alarm message (when
  ``ActionsEnabled``).

Differences from CloudWatch: the period still running counts (CloudWatch
waits for a period's data to arrive), so locally an alarm can fire within
one evaluation; a state set with ``SetAlarmState`` holds for one evaluation
interval, then the data decide again (CloudWatch: until the next evaluation).
The clock is a seam (``clock``), and :meth:`AlarmEvaluator.evaluate` runs one
evaluation at once, so tests need not wait for the timer.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger("local.account.alarms")

Clock = Callable[[], float]

#: ComparisonOperator -> (test, CloudWatch's words for it).
COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
#: CloudWatch's region names in the SNS message's subject.
REGION_NAMES = {"us-east-1": "US East (N. Virginia)"}


def _stamp(moment: datetime) -> str:
    return moment.strftime("%d/%m/%y %H:%M:%S")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _number(value: float) -> str:
    return repr(float(value))


def evaluate_alarm(
    alarm: Mapping[str, Any], datapoints: Mapping[datetime, float], now: datetime
) -> tuple[str, str, dict[str, Any]] | None:
    """The state ``alarm`` should be in given its ``datapoints`` (period start
    -> value): ``(state, reason, reason data)``, or ``None`` to keep its state."""
    period = int(alarm["Period"])
    n = int(alarm["EvaluationPeriods"])
    m = int(alarm.get("DatapointsToAlarm") or n)
    compare, words = COMPARISONS[alarm["ComparisonOperator"]]
    threshold = float(alarm["Threshold"])
    treat = alarm.get("TreatMissingData") or "missing"
    epoch = now.timestamp()
    current = datetime.fromtimestamp(epoch - epoch % period, UTC)
    starts = [current - timedelta(seconds=period * i) for i in range(n)]  # newest first
    present = [(s, datapoints[s]) for s in starts if s in datapoints]
    missing = n - len(present)
    breaching = [(s, v) for s, v in present if compare(v, threshold)]
    data = {
        "version": "1.0",
        "queryDate": _iso(now),
        "startDate": _iso(starts[-1]),
        "statistic": alarm.get("Statistic"),
        "period": period,
        "recentDatapoints": [v for _s, v in reversed(present)],
        "threshold": threshold,
        "evaluatedDatapoints": [{"timestamp": _iso(s), "value": v} for s, v in present],
    }
    if not present:
        if treat == "ignore":
            return None
        if treat == "missing":
            return (
                "INSUFFICIENT_DATA",
                f"Insufficient Data: {n} datapoint{'s were' if n > 1 else ' was'} unknown.",
                data,
            )
    bad = len(breaching) + (missing if treat == "breaching" else 0)
    state = "ALARM" if bad >= m else "OK"
    listed = ", ".join(f"{_number(v)} ({_stamp(s)})" for s, v in present)
    if not present:
        kind = "Breaching" if treat == "breaching" else "NonBreaching"
        reason = (
            f"Threshold Crossed: no datapoints were received for {n} period"
            f"{'s' if n > 1 else ''} and {n} missing datapoint"
            f"{'s were' if n > 1 else ' was'} treated as [{kind}]."
        )
        return state, reason, data
    relation = words if state == "ALARM" else f"not {words}"
    shown = breaching if state == "ALARM" else present
    shown_list = ", ".join(f"{_number(v)} ({_stamp(s)})" for s, v in shown) or listed
    if n == 1:
        reason = (
            f"Threshold Crossed: 1 datapoint [{shown_list}] was {relation} "
            f"the threshold ({_number(threshold)})."
        )
    else:
        count = len(shown)
        reason = (
            f"Threshold Crossed: {count} out of the last {n} datapoints [{shown_list}] "
            f"{'were' if count != 1 else 'was'} {relation} the threshold "
            f"({_number(threshold)}) (minimum {m} datapoint{'s' if m > 1 else ''} "
            f"for {'OK -> ALARM' if state == 'ALARM' else 'ALARM -> OK'} transition)."
        )
    return state, reason, data


class AlarmEvaluator:
    """Evaluates the account's metric alarms every ``interval`` seconds."""

    def __init__(
        self,
        *,
        cloudwatch: Any,
        sns: Any,
        region: str,
        account: str,
        interval: float = 10.0,
        clock: Clock = time.time,
    ) -> None:
        self.cloudwatch = cloudwatch
        self.sns = sns
        self.region = region
        self.account = account
        self.interval = interval
        self.clock = clock
        #: (alarm, old state, new state) of every change this evaluator made.
        self.changes: list[tuple[str, str, str]] = []
        #: Whether this evaluator's account is the live one (local/account/liveness.py).
        self.live: Callable[[], bool] = lambda: True
        self._set_by_us: dict[str, datetime] = {}
        self._held: dict[str, datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="alarm-evaluator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(min(1.0, self.interval)):
            if not self.live():
                continue  # a newer account in this process evaluates these (liveness.py)
            if time.monotonic() - last < self.interval:
                continue  # the interval may be changed while the thread runs
            last = time.monotonic()
            try:
                self.evaluate()
            except Exception as e:  # the account stays up; the next round tries again
                log.warning("alarm evaluation failed: %s", e)

    def evaluate(self) -> list[tuple[str, str, str]]:
        """One evaluation of every alarm; the changes it made."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        changes = []
        paginator = self.cloudwatch.get_paginator("describe_alarms")
        for page in paginator.paginate(AlarmTypes=["MetricAlarm"]):
            for alarm in page.get("MetricAlarms", []):
                change = self._evaluate_one(alarm, now)
                if change is not None:
                    changes.append(change)
        self.changes += changes
        return changes

    def _external(self, alarm: Mapping[str, Any], now: datetime) -> bool:
        """Whether SetAlarmState set this state within the last interval."""
        name = alarm["AlarmName"]
        updated = alarm.get("StateUpdatedTimestamp")
        if updated is None or updated == self._set_by_us.get(name):
            return False
        first_seen = self._held.setdefault(f"{name}@{updated}", now)
        return (now - first_seen).total_seconds() < self.interval

    def _evaluate_one(self, alarm: Mapping[str, Any], now: datetime) -> tuple[str, str, str] | None:
        if (
            alarm.get("Metrics")
            or alarm.get("ExtendedStatistic")
            or alarm.get("ComparisonOperator") not in COMPARISONS
            or alarm.get("Statistic") not in STATISTICS
        ):
            return None
        if self._external(alarm, now):
            return None
        period = int(alarm["Period"])
        span = period * int(alarm["EvaluationPeriods"])
        epoch = now.timestamp()
        end = datetime.fromtimestamp(epoch - epoch % period + period, UTC)
        kwargs: dict[str, Any] = {
            "Namespace": alarm["Namespace"],
            "MetricName": alarm["MetricName"],
            "Dimensions": alarm.get("Dimensions", []),
            "StartTime": end - timedelta(seconds=span),
            "EndTime": end,
            "Period": period,
            "Statistics": [alarm["Statistic"]],
        }
        if alarm.get("Unit"):
            kwargs["Unit"] = alarm["Unit"]
        points = self.cloudwatch.get_metric_statistics(**kwargs)["Datapoints"]
        values = {p["Timestamp"].astimezone(UTC): float(p[alarm["Statistic"]]) for p in points}
        verdict = evaluate_alarm(alarm, values, now)
        if verdict is None:
            return None
        state, reason, data = verdict
        old = alarm.get("StateValue", "INSUFFICIENT_DATA")
        if state == old:
            return None
        self.cloudwatch.set_alarm_state(
            AlarmName=alarm["AlarmName"],
            StateValue=state,
            StateReason=reason,
            StateReasonData=json.dumps(data),
        )
        described = self.cloudwatch.describe_alarms(AlarmNames=[alarm["AlarmName"]])
        for found in described.get("MetricAlarms", []):
            self._set_by_us[alarm["AlarmName"]] = found.get("StateUpdatedTimestamp")
        self._act(alarm, old, state, reason, now)
        return alarm["AlarmName"], old, state

    def _act(
        self, alarm: Mapping[str, Any], old: str, state: str, reason: str, now: datetime
    ) -> None:
        """Publish CloudWatch's alarm message to the SNS actions of ``state``."""
        if not alarm.get("ActionsEnabled", True):
            return
        key = {"ALARM": "AlarmActions", "OK": "OKActions"}.get(state, "InsufficientDataActions")
        topics = [a for a in alarm.get(key, []) if a.startswith("arn:aws:sns:")]
        if not topics:
            return
        region = REGION_NAMES.get(self.region, self.region)
        message = {
            "AlarmName": alarm["AlarmName"],
            "AlarmDescription": alarm.get("AlarmDescription"),
            "AWSAccountId": self.account,
            "AlarmConfigurationUpdatedTimestamp": _iso(
                alarm.get("AlarmConfigurationUpdatedTimestamp", now)
            ),
            "NewStateValue": state,
            "NewStateReason": reason,
            "StateChangeTime": _iso(now),
            "Region": region,
            "AlarmArn": alarm.get("AlarmArn"),
            "OldStateValue": old,
            "OKActions": alarm.get("OKActions", []),
            "AlarmActions": alarm.get("AlarmActions", []),
            "InsufficientDataActions": alarm.get("InsufficientDataActions", []),
            "Trigger": {
                "MetricName": alarm["MetricName"],
                "Namespace": alarm["Namespace"],
                "StatisticType": "Statistic",
                "Statistic": str(alarm["Statistic"]).upper(),
                "Unit": alarm.get("Unit"),
                "Dimensions": [
                    {"value": d["Value"], "name": d["Name"]} for d in alarm.get("Dimensions", [])
                ],
                "Period": alarm["Period"],
                "EvaluationPeriods": alarm["EvaluationPeriods"],
                "DatapointsToAlarm": alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"]),
                "ComparisonOperator": alarm["ComparisonOperator"],
                "Threshold": alarm["Threshold"],
                "TreatMissingData": alarm.get("TreatMissingData", "missing"),
                "EvaluateLowSampleCountPercentile": "",
            },
        }
        subject = f'{state}: "{alarm["AlarmName"]}" in {region}'[:100]
        for topic in topics:
            try:
                self.sns.publish(TopicArn=topic, Subject=subject, Message=json.dumps(message))
            except Exception as e:
                log.warning("alarm %s could not notify %s: %s", alarm["AlarmName"], topic, e)
