"""Safe rollout of an endpoint update: blue/green traffic shifting and
auto-rollback on the CloudWatch alarms the stack creates for the endpoint.

The stack and the Deploy handler both derive the alarm names here, so the
``AutoRollbackConfiguration`` always names alarms that exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
    return merged


def alarm_names(endpoint_name: str) -> tuple[str, str]:
    """(Invocation5XXErrors alarm, ModelLatency alarm) of ``endpoint_name``."""
    return f"{endpoint_name}-invocation-5xx", f"{endpoint_name}-model-latency"


def deployment_config(rollout: Mapping[str, Any], alarms: tuple[str, ...]) -> dict[str, Any]:
    """UpdateEndpoint's ``DeploymentConfig``: blue/green by ``rollout.traffic``,
    rolled back automatically when one of ``alarms`` fires (none: no rollback)."""
    r = parse_rollout(rollout)
    routing: dict[str, Any] = {"Type": r["traffic"], "WaitIntervalInSeconds": r["wait_seconds"]}
    size = {"Type": "CAPACITY_PERCENT", "Value": r["step_percent"]}
    if r["traffic"] == "CANARY":
        routing["CanarySize"] = size
    elif r["traffic"] == "LINEAR":
        routing["LinearStepSize"] = size
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
