"""Deployment guardrails of the local SageMaker: UpdateEndpoint's
``DeploymentConfig`` (blue/green traffic shifting with baking periods, and
``AutoRollbackConfiguration`` on CloudWatch alarms).

The new fleet takes traffic in the steps the config names (CANARY: the canary,
then the rest; LINEAR: one step per ``LinearStepSize``; ALL_AT_ONCE: one);
after each step it bakes, checking the alarms. An alarm in ``ALARM`` rolls
the update back: the old config keeps serving. Baking lasts
``bake_seconds`` locally, whatever ``WaitIntervalInSeconds`` says.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

AlarmCheck = Callable[[list[str]], list[str]]


def _percent(size: Mapping[str, Any] | None, instances: int) -> int:
    """A CapacitySize as a percentage of the new fleet (INSTANCE_COUNT or
    CAPACITY_PERCENT); 10 when not given."""
    if not size:
        return 10
    value = float(size.get("Value", 10))
    if size.get("Type") == "INSTANCE_COUNT":
        value = 100.0 * value / max(instances, 1)
    return max(1, min(100, math.ceil(value)))


def traffic_steps(config: Mapping[str, Any] | None, instances: int = 1) -> list[int]:
    """Cumulative percentages of traffic on the new fleet of ``instances``, step by step."""
    routing = ((config or {}).get("BlueGreenUpdatePolicy") or {}).get(
        "TrafficRoutingConfiguration"
    ) or {"Type": "ALL_AT_ONCE"}
    kind = routing.get("Type", "ALL_AT_ONCE")
    if kind == "CANARY":
        return [_percent(routing.get("CanarySize"), instances), 100]
    if kind == "LINEAR":
        step = _percent(routing.get("LinearStepSize"), instances)
        count = math.ceil(100 / step)
        return [min(100, step * (i + 1)) for i in range(count)]
    return [100]


def rollback_alarms(config: Mapping[str, Any] | None) -> list[str]:
    alarms = ((config or {}).get("AutoRollbackConfiguration") or {}).get("Alarms") or []
    return [str(a["AlarmName"]) for a in alarms]


def shift_traffic(
    config: Mapping[str, Any] | None,
    *,
    alarms_in_alarm: AlarmCheck,
    bake_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    on_step: Callable[[int], None] = lambda _percent: None,
    instances: int = 1,
) -> str | None:
    """Shift traffic step by step; the first alarm found in ALARM, or None."""
    alarms = rollback_alarms(config)
    for percent in traffic_steps(config, instances):
        on_step(percent)
        sleep(bake_seconds)
        if alarms:
            firing = alarms_in_alarm(alarms)
            if firing:
                return firing[0]
    return None


def cloudwatch_alarm_check(cloudwatch: Any) -> AlarmCheck:
    """Alarm names (of ``names``) in state ALARM, from DescribeAlarms."""

    def check(names: list[str]) -> list[str]:
        found = cloudwatch.describe_alarms(AlarmNames=names).get("MetricAlarms", [])
        return [a["AlarmName"] for a in found if a.get("StateValue") == "ALARM"]

    return check
