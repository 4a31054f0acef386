"""Endpoint modes: what an execution keeps serving after it ends, and for how long.

- ``realtime``: the tutorial's instance endpoint (``instance_type``, ``instance_count``);
- ``serverless``: a ``ServerlessConfig`` endpoint (``memory_mb``, ``max_concurrency``);
- ``none``: no endpoint; a Batch Transform job scores the test split.

``ttl_hours`` (realtime and serverless) schedules the endpoint's deletion;
0 keeps it forever. Limits are CreateEndpointConfig's (botocore's model):
``MemorySizeInMB`` 1024-6144 in 1 GB steps, ``MaxConcurrency`` 1-200.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline_core.errors import InvalidConfigError, InvalidInputError

MODES: tuple[str, ...] = ("realtime", "serverless", "none")
#: ``cdk.json`` ``pipeline.endpoint`` defaults.
ENDPOINT_DEFAULTS: dict[str, Any] = {
    "mode": "realtime",
    "ttl_hours": 24,
    "memory_mb": 2048,
    "max_concurrency": 5,
}
SERVERLESS_MEMORY_MB: tuple[int, ...] = (1024, 2048, 3072, 4096, 5120, 6144)
MAX_CONCURRENCY_MAX = 200
#: A year: longer is "forever" (0).
TTL_HOURS_MAX = 8760
INSTANCE_COUNT_MAX = 20

#: Input keys of ``endpoint`` that apply to each mode.
MODE_KEYS: dict[str, frozenset[str]] = {
    "realtime": frozenset({"mode", "instance_type", "instance_count", "ttl_hours"}),
    "serverless": frozenset({"mode", "memory_mb", "max_concurrency", "ttl_hours"}),
    "none": frozenset({"mode"}),
}
INPUT_KEYS = frozenset().union(*MODE_KEYS.values())


@dataclass(frozen=True)
class EndpointSpec:
    mode: str
    instance_type: str
    instance_count: int
    memory_mb: int
    max_concurrency: int
    ttl_hours: int

    @property
    def keeps_endpoint(self) -> bool:
        return self.mode != "none"


def _int(where: str, value: Any, lo: int, hi: int, error: type[Exception]) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise error(f"{where}: must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise error(f"{where}: {value} is outside [{lo}, {hi}]")
    return value


def _check(values: Mapping[str, Any], error: type[Exception], where: str) -> None:
    mode = values.get("mode")
    if mode not in MODES:
        raise error(f"{where}.mode: {mode!r} is not one of {list(MODES)}")
    _int(f"{where}.ttl_hours", values.get("ttl_hours"), 0, TTL_HOURS_MAX, error)
    memory = values.get("memory_mb")
    if memory not in SERVERLESS_MEMORY_MB or isinstance(memory, bool):
        raise error(
            f"{where}.memory_mb: {memory!r} must be one of {list(SERVERLESS_MEMORY_MB)} "
            "(1024-6144 MB in 1 GB steps)"
        )
    _int(f"{where}.max_concurrency", values.get("max_concurrency"), 1, MAX_CONCURRENCY_MAX, error)


def parse_endpoint_defaults(values: Mapping[str, Any]) -> None:
    """Validate ``cdk.json`` ``pipeline.endpoint`` (InvalidConfigError naming the key)."""
    if not isinstance(values, Mapping):
        raise InvalidConfigError("endpoint: must be an object")
    unknown = sorted(set(values) - set(ENDPOINT_DEFAULTS))
    if unknown:
        raise InvalidConfigError(f"endpoint: unknown keys {unknown}")
    _check(values, InvalidConfigError, "endpoint")


def resolve_endpoint(
    raw: Any,
    *,
    alias_instance_type: Any,
    defaults: Mapping[str, Any],
    default_instance_type: str,
    default_instance_count: int,
    check_instance: Any,
) -> EndpointSpec:
    """The execution input's ``endpoint`` object over the config defaults.

    ``endpoint_instance_type`` (the old key) stays an alias of
    ``endpoint.instance_type``; a key that does not apply to the chosen mode
    is rejected rather than silently ignored. ``check_instance(key, value)``
    validates an instance type (form and allowlist)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise InvalidInputError(f"endpoint: must be an object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - INPUT_KEYS)
    if unknown:
        raise InvalidInputError(f"endpoint.{unknown[0]}: unknown key (one of {sorted(INPUT_KEYS)})")
    values = {**ENDPOINT_DEFAULTS, **defaults, **raw}
    _check(values, InvalidInputError, "endpoint")
    mode = str(values["mode"])
    stray = sorted(set(raw) - MODE_KEYS[mode])
    if stray:
        raise InvalidInputError(f"endpoint.{stray[0]}: does not apply to mode {mode!r}")
    instance_type, source_key = default_instance_type, "endpoint.instance_type"
    if alias_instance_type is not None:
        if mode != "realtime":
            raise InvalidInputError(
                f"endpoint_instance_type: applies to mode 'realtime' only, not {mode!r}"
            )
        if "instance_type" in raw and raw["instance_type"] != alias_instance_type:
            raise InvalidInputError(
                "endpoint_instance_type: conflicts with endpoint.instance_type "
                "(endpoint_instance_type is the old name of endpoint.instance_type)"
            )
        instance_type, source_key = alias_instance_type, "endpoint_instance_type"
    if "instance_type" in raw:
        instance_type, source_key = raw["instance_type"], "endpoint.instance_type"
    check_instance(source_key, instance_type)
    count = _int(
        "endpoint.instance_count",
        raw.get("instance_count", default_instance_count),
        1,
        INSTANCE_COUNT_MAX,
        InvalidInputError,
    )
    return EndpointSpec(
        mode=mode,
        instance_type=str(instance_type),
        instance_count=count,
        memory_mb=int(values["memory_mb"]),
        max_concurrency=int(values["max_concurrency"]),
        ttl_hours=0 if mode == "none" else int(values["ttl_hours"]),
    )
