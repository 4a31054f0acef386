"""After a default local run (a real-time endpoint, the 100-chunk evaluation)
the local CloudWatch has what AWS would show: the endpoint's invocation
metrics and logs, and data behind every widget of the stack's dashboard."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.account.runner import LocalPipeline, RunResult
from stacks import asl

FAST = {"max_jobs": 2, "max_parallel_jobs": 2, "min_objective": 0}


@pytest.fixture(scope="module")
def run(pipeline: LocalPipeline, small_dataset: Path) -> RunResult:
    result = pipeline.execute({"source": str(small_dataset), **FAST}, "metrics-1", timeout=300)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    return result


def _eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """What ``check`` returns once truthy (metrics are sent about every second)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def _window() -> dict[str, datetime]:
    now = datetime.now(UTC)
    return {"StartTime": now - timedelta(days=1), "EndTime": now + timedelta(days=1)}


def _samples(namespace: str, metric: str, dims: list[dict[str, str]], period: int = 60) -> float:
    points = boto3.client("cloudwatch").get_metric_statistics(
        Namespace=namespace,
        MetricName=metric,
        Dimensions=dims,
        Period=period,
        Statistics=["SampleCount"],
        **_window(),
    )["Datapoints"]
    return float(sum(p["SampleCount"] for p in points))


def test_every_invocation_of_the_run_is_a_datapoint_and_the_logs_exist(
    run: RunResult,
) -> None:
    endpoint = str((run.output or {})["endpoint_name"])
    dims = [
        {"Name": "EndpointName", "Value": endpoint},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    # One single-row request, then 100 chunks: at least 101 invocations.
    for metric in ("Invocations", "ModelLatency", "OverheadLatency", "Invocation5XXErrors"):
        count = _eventually(lambda m=metric: _samples("AWS/SageMaker", m, dims) >= 101)
        assert count, f"{metric}: {_samples('AWS/SageMaker', metric, dims)} samples"
    assert _eventually(lambda: _samples("/aws/sagemaker/Endpoints", "CPUUtilization", dims))
    logs = boto3.client("logs")
    group = f"/aws/sagemaker/Endpoints/{endpoint}"
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix="AllTraffic/")
    assert streams["logStreams"], f"no AllTraffic/ stream in {group}"


def test_the_best_training_jobs_metrics_are_per_job_and_per_host(run: RunResult) -> None:
    job = str((run.output or {})["best_training_job"]["training_job_name"])
    for dims in (
        [{"Name": "TrainingJobName", "Value": job}],
        [{"Name": "Host", "Value": f"{job}/algo-1"}],
    ):
        assert _samples("/aws/sagemaker/TrainingJobs", "validation:binary_f_beta", dims), dims


def _dashboard_metrics(pipeline: LocalPipeline) -> list[tuple[str, list[dict[str, Any]]]]:
    """(title, metric queries) of each metric widget of the template's dashboard."""
    template = pipeline.synth.template
    resolver = asl.Resolver(template, "us-east-1", "123456789012")
    (dashboard,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    body = str(resolver.resolve(dashboard["Properties"]["DashboardBody"]))
    # Locally the state machine is deployed under its own name, not CloudFormation's.
    template_arn = str(resolver.ref(pipeline.synth.state_machine_id()))
    body = body.replace(template_arn, pipeline.state_machine_arn)
    widgets = json.loads(body)["widgets"]
    out = []
    for widget in widgets:
        props = widget["properties"]
        queries = []
        for row in props.get("metrics", []):
            options = row[-1] if isinstance(row[-1], dict) else {}
            names = [x for x in row if not isinstance(x, dict)]
            dims = [{"Name": k, "Value": v} for k, v in zip(names[2::2], names[3::2], strict=True)]
            queries.append(
                {
                    "Namespace": names[0],
                    "MetricName": names[1],
                    "Dimensions": dims,
                    "Period": int(options.get("period", props.get("period", 300))),
                    "Statistic": options.get("stat", props.get("stat", "Average")),
                }
            )
        if "alarms" in props:
            queries.append({"alarms": props["alarms"]})
        out.append((props.get("title", widget["type"]), queries))
    return out


def test_every_dashboard_widget_has_data_in_the_local_cloudwatch(
    pipeline: LocalPipeline, run: RunResult
) -> None:
    cloudwatch = boto3.client("cloudwatch")

    def has_data(query: dict[str, Any]) -> bool:
        if "alarms" in query:
            arns = set(query["alarms"])
            found = {a["AlarmArn"] for a in cloudwatch.describe_alarms()["MetricAlarms"]}
            return arns <= found
        points = cloudwatch.get_metric_statistics(
            Namespace=query["Namespace"],
            MetricName=query["MetricName"],
            Dimensions=query["Dimensions"],
            Period=query["Period"],
            Statistics=[query["Statistic"]],
            **_window(),
        )["Datapoints"]
        return bool(points)

    widgets = _dashboard_metrics(pipeline)
    assert len(widgets) == 5
    for title, queries in widgets:
        assert _eventually(lambda q=queries: any(has_data(x) for x in q)), title
    # The executions widget: this run started and succeeded (AWS/States, from the account).
    (executions,) = [q for t, q in widgets if t == "Executions"]
    by_name = {q["MetricName"]: q for q in executions}
    assert has_data(by_name["ExecutionsStarted"]) and has_data(by_name["ExecutionsSucceeded"])
