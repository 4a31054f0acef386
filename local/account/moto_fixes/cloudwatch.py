"""moto 5.2.5's cloudwatch service, corrected where AWS answers differently.

- **Datapoints aligned to the period.** CloudWatch's ``GetMetricStatistics``
  and ``GetMetricData`` answer one datapoint per period, each stamped with
  the start of its period (a multiple of the period since the epoch: minute,
  hour or day boundaries). moto 5.2.5 starts its first period at the first
  datapoint's timestamp (``GetMetricStatistics``) or at ``StartTime``
  (``GetMetricData``), so its periods straddle CloudWatch's and its
  timestamps are not CloudWatch's.
- **A new alarm is ``INSUFFICIENT_DATA``.** CloudWatch creates an alarm in
  ``INSUFFICIENT_DATA`` and keeps the state of an alarm that
  ``PutMetricAlarm`` updates ("its state is left unchanged"); moto 5.2.5
  creates every alarm ``OK`` and resets an updated one to ``OK``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from moto.cloudwatch import models

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INSTALLED = False


def period_start(moment: datetime, period: int) -> datetime:
    """The start of the period of ``period`` seconds that holds ``moment``
    (naive datetimes are UTC, as moto keeps them)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    offset = (aware - _EPOCH).total_seconds() % max(1, period)
    return moment - timedelta(seconds=offset)


def _aligned_statistics(original: Any) -> Any:
    def get_metric_statistics(
        self: Any,
        namespace: str,
        metric_name: str,
        start_time: datetime,
        end_time: datetime,
        period: int,
        stats: list[str],
        dimensions: list[dict[str, str]],
        unit: str | None = None,
    ) -> list[Any]:
        # moto filters (and validates); one period over the whole window keeps
        # every datapoint together, regrouped here by CloudWatch's periods.
        whole = int((end_time - start_time).total_seconds()) + 1
        found = original(
            self,
            namespace,
            metric_name,
            start_time,
            end_time,
            max(whole, 1),
            stats,
            dimensions,
            unit,
        )
        groups: dict[datetime, Any] = {}
        for bucket in found:
            for datum in bucket.metric_data:
                start = period_start(datum.timestamp, int(period))
                group = groups.get(start)
                if group is None:
                    group = groups[start] = models.Statistics(stats, start)
                group.metric_data.append(datum)
                group.unit = datum.unit
        return [groups[k] for k in sorted(groups)]

    return get_metric_statistics


def _aligned_data(original: Any) -> Any:
    def get_metric_data(
        self: Any,
        queries: list[dict[str, Any]],
        start_time: datetime,
        end_time: datetime,
        scan_by: str = "TimestampAscending",
    ) -> list[dict[str, Any]]:
        periods = {int(q["MetricStat"]["Period"]) for q in queries if "MetricStat" in q}
        if len(periods) == 1:
            start = period_start(start_time, periods.pop())
            return list(original(self, queries, start, end_time, scan_by))
        if periods and all("MetricStat" in q for q in queries):
            out: list[dict[str, Any]] = []
            for query in queries:  # each query on its own period's boundaries
                start = period_start(start_time, int(query["MetricStat"]["Period"]))
                out += original(self, [query], start, end_time, scan_by)
            return out
        return list(original(self, queries, start_time, end_time, scan_by))

    return get_metric_data


def _alarm_states(original: Any) -> Any:
    def put_metric_alarm(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        before = self.alarms.get(name)
        alarm = original(self, name, *args, **kwargs)
        if before is None:
            alarm.state_value = "INSUFFICIENT_DATA"
        else:
            alarm.state_value = before.state_value
            alarm.state_reason = before.state_reason
            alarm.state_reason_data = before.state_reason_data
            alarm.state_updated_timestamp = before.state_updated_timestamp
            alarm.history = before.history
        return alarm

    return put_metric_alarm


def install() -> None:
    """Apply this module's fixes (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    backend = models.CloudWatchBackend
    backend.get_metric_statistics = _aligned_statistics(backend.get_metric_statistics)  # type: ignore[method-assign]
    backend.get_metric_data = _aligned_data(backend.get_metric_data)  # type: ignore[method-assign]
    backend.put_metric_alarm = _alarm_states(backend.put_metric_alarm)  # type: ignore[method-assign]
    _INSTALLED = True
