"""Safe rollout of an endpoint update: blue/green traffic shifting and
auto-rollback on the CloudWatch alarms the stack creates for the endpoint.

The stack and the Deploy handler both derive the alarm names here, so the
``AutoRollbackConfiguration`` always names alarms that exist.

UpdateEndpoint's limits (botocore's ``TrafficRoutingConfig``): a ``CanarySize``
must be at most 50% of the variant's instances, a ``LinearStepSize`` 10-50% of
them. ``step_percent`` is turned into an instance count within those bounds;
a one-instance variant (the default) can have neither, so it shifts
``ALL_AT_ONCE`` and still bakes ``wait_seconds`` under the rollback alarms.
Deployment guardrails apply to real-time endpoints only (not serverless).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pipeline_core.endpoint_modes import INSTANCE_COUNT_MAX
from pipeline_core.errors import InvalidConfigError

TRAFFIC_TYPES = ("CANARY", "LINEAR", "ALL_AT_ONCE")

#: ``cdk.json`` ``pipeline.rollout``; a partial object overlays these.
ROLLOUT_DEFAULTS: dict[str, Any] = {
    "traffic": "CANARY",
    #: Canary size, or each linear step, as a percentage of the fleet.
    "step_percent": 10,
    #: Baking time between traffic shifts (and after the last one).
    "wait_seconds": 300,
    "termination_wait_seconds": 0,
    "max_execution_timeout_seconds": 3600,
    "auto_rollback": True,
    #: Alarm thresholds: any 5xx in a minute; ModelLatency (average) above this.
    "max_5xx_per_minute": 0,
    "max_model_latency_ms": 1000,
}


def _int(values: Mapping[str, Any], key: str, lo: int, hi: int) -> int:
    value = values.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise InvalidConfigError(f"rollout.{key}: an integer in [{lo}, {hi}], got {value!r}")
    return value


def parse_rollout(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a (partial) rollout object; returns the full one."""
    if not isinstance(values, Mapping):
        raise InvalidConfigError("rollout: must be an object")
    unknown = sorted(set(values) - set(ROLLOUT_DEFAULTS))
    if unknown:
        raise InvalidConfigError(f"rollout: unknown keys {unknown}")
    merged = {**ROLLOUT_DEFAULTS, **values}
    if merged["traffic"] not in TRAFFIC_TYPES:
        raise InvalidConfigError(f"rollout.traffic: one of {list(TRAFFIC_TYPES)}")
    _int(merged, "step_percent", 1, 100)
    _int(merged, "wait_seconds", 0, 3600)
    _int(merged, "termination_wait_seconds", 0, 3600)
    _int(merged, "max_execution_timeout_seconds", 600, 28800)
    _int(merged, "max_5xx_per_minute", 0, 1_000_000)
    _int(merged, "max_model_latency_ms", 1, 3_600_000)
    if not isinstance(merged["auto_rollback"], bool):
        raise InvalidConfigError("rollout.auto_rollback: true or false")
    _check_api_limits(merged)
    return merged


def _check_api_limits(r: Mapping[str, Any]) -> None:
    """Step sizes within UpdateEndpoint's limits, and every waiting time of the
    longest rollout (at ``INSTANCE_COUNT_MAX`` instances) inside the timeout."""
    percent = r["step_percent"]
    if r["traffic"] == "CANARY" and percent > 50:
        raise InvalidConfigError(
            f"rollout.step_percent: a CANARY is at most 50% of the variant's instances "
            f"(UpdateEndpoint's CanarySize limit), got {percent}; lower it"
        )
    if r["traffic"] == "LINEAR" and not 10 <= percent <= 50:
        raise InvalidConfigError(
            f"rollout.step_percent: a LINEAR step is between 10 and 50% of the variant's "
            f"instances (UpdateEndpoint's LinearStepSize limit), got {percent}"
        )
    longest = (
        max(_shifts(r["traffic"], percent, n) for n in range(1, INSTANCE_COUNT_MAX + 1))
        * r["wait_seconds"]
        + r["termination_wait_seconds"]
    )
    if longest >= r["max_execution_timeout_seconds"]:
        raise InvalidConfigError(
            f"rollout.max_execution_timeout_seconds: {r['max_execution_timeout_seconds']} "
            f"must exceed the rollout's waiting time ({longest} s: wait_seconds after each "
            f"of up to {longest // max(1, r['wait_seconds'])} traffic shifts, plus "
            "termination_wait_seconds); raise it or wait less"
        )


def step_instances(traffic: str, percent: int, instance_count: int) -> int:
    """The canary, or each linear step, in instances (``instance_count`` >= 2):
    ``percent`` of the variant, kept within the API's bounds (canary 1..50%,
    linear 10..50% of the variant's instances)."""
    half = instance_count // 2
    wanted = instance_count * percent / 100
    if traffic == "CANARY":
        return max(1, min(half, math.floor(wanted)))
    return max(math.ceil(instance_count / 10), min(half, math.ceil(wanted)))


def _shifts(traffic: str, percent: int, instance_count: int) -> int:
    """How many traffic shifts (each followed by a baking wait) a rollout makes."""
    if instance_count < 2 or traffic == "ALL_AT_ONCE":
        return 1
    if traffic == "CANARY":
        return 2
    return math.ceil(instance_count / step_instances(traffic, percent, instance_count))


def alarm_names(endpoint_name: str) -> tuple[str, str]:
    """(Invocation5XXErrors alarm, ModelLatency alarm) of ``endpoint_name``."""
    return f"{endpoint_name}-invocation-5xx", f"{endpoint_name}-model-latency"


def deployment_config(
    rollout: Mapping[str, Any], alarms: tuple[str, ...], *, instance_count: int
) -> dict[str, Any]:
    """UpdateEndpoint's ``DeploymentConfig`` for a variant of ``instance_count``
    instances: blue/green by ``rollout.traffic`` (``ALL_AT_ONCE`` on one instance),
    rolled back automatically when one of ``alarms`` fires (none: no rollback)."""
    r = parse_rollout(rollout)
    traffic = r["traffic"] if instance_count >= 2 else "ALL_AT_ONCE"
    routing: dict[str, Any] = {"Type": traffic, "WaitIntervalInSeconds": r["wait_seconds"]}
    if traffic != "ALL_AT_ONCE":
        size = {
            "Type": "INSTANCE_COUNT",
            "Value": step_instances(traffic, r["step_percent"], instance_count),
        }
        routing["CanarySize" if traffic == "CANARY" else "LinearStepSize"] = size
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": r["termination_wait_seconds"],
            "MaximumExecutionTimeoutInSeconds": r["max_execution_timeout_seconds"],
        }
    }
    if r["auto_rollback"] and alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms]}
    return config
