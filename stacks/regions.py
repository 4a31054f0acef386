"""Regions known not to offer the tutorial's C4/M4 instance types.

The tutorial trains on ``ml.c4.xlarge`` and hosts on ``ml.m4.xlarge``:
previous-generation families that several regions do not offer to SageMaker.
When the stack's region is concrete (``cdk synth`` names it) and in
:data:`NO_C4_M4_REGIONS`, a C4/M4 default fails the synth with the cdk.json
values to set instead (their C5/M5 equivalents), rather than the first run
failing in ``InstanceTypeUnavailable``. An environment-agnostic stack (region
a token) is not checked.

Sources: the SageMaker Python SDK's integration tests keep ``NO_M4_REGIONS``
(eu-west-3, eu-north-1, ap-east-1, sa-east-1, me-south-1; its ap-northeast-1
entry is about capacity, not absence); the SageMaker examples moved to C5
because "C4 instance types are not available in a number of regions (e.g.
eu-north-1)"; opt-in regions launched since 2019 offer current-generation
families only. The list is "known not to offer C4/M4", not exhaustive.
"""

from __future__ import annotations

import json

from aws_cdk import Token

from pipeline_core.config import PipelineConfig
from pipeline_core.errors import InvalidConfigError

NO_C4_M4_REGIONS: frozenset[str] = frozenset(
    {
        "eu-north-1",
        "eu-west-3",
        "sa-east-1",
        "ap-east-1",
        "me-south-1",
        "af-south-1",
        "eu-south-1",
        "ap-southeast-3",
        "me-central-1",
        "eu-central-2",
        "eu-south-2",
        "ap-south-2",
        "ap-southeast-4",
        "il-central-1",
        "ca-west-1",
        "ap-southeast-5",
        "ap-southeast-7",
        "mx-central-1",
        "ap-east-2",
        "ap-southeast-6",
    }
)

#: Previous-generation family → its current-generation equivalent (same size).
REPLACEMENT_FAMILY: dict[str, str] = {"c4": "c5", "m4": "m5"}

#: The config keys (``cdk.json`` ``pipeline.<key>``) that name a default type.
INSTANCE_TYPE_KEYS: tuple[str, ...] = (
    "training_instance_type",
    "endpoint_instance_type",
    "transform_instance_type",
)


def replacement(instance_type: str) -> str | None:
    """``ml.c4.xlarge`` → ``ml.c5.xlarge``; ``None`` for any other family."""
    parts = instance_type.split(".")
    if len(parts) != 3 or parts[1] not in REPLACEMENT_FAMILY:
        return None
    return f"{parts[0]}.{REPLACEMENT_FAMILY[parts[1]]}.{parts[2]}"


def check_instance_types(region: str, config: PipelineConfig) -> None:
    """Raise :class:`InvalidConfigError` if ``region`` is concrete, known not
    to offer C4/M4, and a default instance type of ``config`` is one."""
    if Token.is_unresolved(region) or region not in NO_C4_M4_REGIONS:
        return
    unavailable: dict[str, tuple[str, str]] = {}
    for key in INSTANCE_TYPE_KEYS:
        value = str(getattr(config, key))
        new = replacement(value)
        if new is not None:
            unavailable[key] = (value, new)
    if not unavailable:
        return
    named = ", ".join(f"{key} {old}" for key, (old, _) in unavailable.items())
    advice = ", ".join(
        f"{json.dumps(key)}: {json.dumps(new)}" for key, (_, new) in unavailable.items()
    )
    raise InvalidConfigError(
        f"region {region} is known not to offer C4/M4 instance types to SageMaker: {named}. "
        f'Set them in cdk.json under "pipeline" (or -c pipeline=...): {{{advice}}} '
        "(they must be in allowed_instance_types)."
    )
