"""Custom CloudWatch metrics of each run, for the stack's dashboard: the
tuning objective of the model the run deployed and its test-set quality.

Best effort: a run whose model is deployed and evaluated does not fail
because a metric was lost (the failure is logged).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

#: The dashboard reads the same names (stacks/dashboard.py).
NAMESPACE = "MnistLinearLearner"
STACK_DIMENSION = "Stack"
TUNING_OBJECTIVE = "TuningObjective"
TEST_ACCURACY = "TestAccuracy"
TEST_F1 = "TestF1"


def metric_data(
    stack_tag: str, tuning: Mapping[str, Any] | None, metrics: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """PutMetricData's MetricData for one run."""
    dims = [{"Name": STACK_DIMENSION, "Value": stack_tag}]
    objective = ((tuning or {}).get("best") or {}).get("objective_value")
    values = {
        TUNING_OBJECTIVE: objective,
        TEST_ACCURACY: metrics.get("accuracy"),
        TEST_F1: metrics.get("f1"),
    }
    out: list[dict[str, Any]] = [
        {"MetricName": name, "Dimensions": dims, "Value": float(value), "Unit": "None"}
        for name, value in values.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]
    return out


def publish_run_metrics(
    cloudwatch: Any,
    *,
    stack_tag: str,
    tuning: Mapping[str, Any] | None,
    metrics: Mapping[str, Any],
    log: Callable[[str], None] = lambda _m: None,
) -> int:
    """PutMetricData; returns how many data points were sent (0 on failure)."""
    data = metric_data(stack_tag, tuning, metrics)
    if not data or not stack_tag:
        return 0
    try:
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)
    except (ClientError, BotoCoreError) as e:
        log(f"cannot publish the run's metrics: {e}")
        return 0
    return len(data)
