"""The EventBridge events SageMaker sends when a resource changes state, in
AWS's shape: ``source`` ``aws.sagemaker``, the resource's ARN in
``resources``, and a ``detail`` shaped like the resource's Describe answer
with its tags as a map and its timestamps in epoch milliseconds (as in the
examples of SageMaker's "Events that Amazon SageMaker AI sends to Amazon
EventBridge" page). A leaf: it imports nothing of this package.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

TRAINING_JOB = "SageMaker Training Job State Change"
TUNING_JOB = "SageMaker HyperParameter Tuning Job State Change"
ENDPOINT = "SageMaker Endpoint State Change"

#: detail-type -> the Describe answer's ARN key.
ARN_KEYS = {
    TRAINING_JOB: "TrainingJobArn",
    TUNING_JOB: "HyperParameterTuningJobArn",
    ENDPOINT: "EndpointArn",
}


def _millis(value: Any) -> Any:
    """Describe timestamps (epoch seconds or datetimes) as epoch milliseconds."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value * 1000)
    return value


def _detail(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {
            key: _millis(value) if key.endswith("Time") else _detail(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_detail(item) for item in node]
    return node


def state_change_event(
    detail_type: str,
    described: Mapping[str, Any],
    *,
    tags: list[dict[str, str]] | None,
    region: str,
    account: str,
) -> dict[str, Any]:
    """The event for one Describe answer (``detail_type`` one of this module's
    constants)."""
    detail = _detail(dict(described))
    detail["Tags"] = {t["Key"]: t["Value"] for t in tags or []}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.sagemaker",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [described[ARN_KEYS[detail_type]]],
        "detail": detail,
    }
