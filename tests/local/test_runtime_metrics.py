"""The endpoint metrics the local runtime sends: AWS's names, units and
dimensions, aggregated per second, none of the real-time-only ones for an
asynchronous invocation; and Step Functions' execution metrics, once each."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from local.account.states_metrics import StatesMetrics
from local.emulator.job_metrics import TRAINING_NAMESPACE, HostSampler
from local.emulator.runtime_metrics import RuntimeMetrics, _Route
from local.emulator.state import Endpoint


class _CloudWatch:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def put_metric_data(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


class _Service:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._faults: dict[str, Any] = {}
        self._models: dict[str, Any] = {}
        self._configs = {
            "c": {
                "request": {
                    "ProductionVariants": [
                        {"VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 2}
                    ]
                }
            }
        }
        self._endpoints = {
            "ep": Endpoint(
                name="ep", arn="a", config_name="c", status="InService", created=0, modified=0
            )
        }
        self.cloudwatch = _CloudWatch()
        self.logs = None


def test_invocations_are_sent_as_per_second_statistic_sets_with_aws_units() -> None:
    service = _Service()
    metrics = RuntimeMetrics(service)
    route = _Route("AllTraffic", "m", 2, False, "c")
    metrics.record("ep", route, 200, 0.002, 0.0001)
    metrics.record("ep", route, 200, 0.004, 0.0001)
    metrics.record("ep", route, 503, 0.001, 0.0001)
    metrics.record("ep", route, 200, 0.003, 0.0, asynchronous=True)
    metrics.flush()
    sent = {
        (call["Namespace"], d["MetricName"]): d
        for call in service.cloudwatch.calls
        for d in call["MetricData"]
    }
    invocations = sent[("AWS/SageMaker", "Invocations")]
    assert invocations["Dimensions"] == [
        {"Name": "EndpointName", "Value": "ep"},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    assert invocations["StatisticValues"]["SampleCount"] == 3  # not the asynchronous one
    assert invocations["Unit"] == "None"
    assert sent[("AWS/SageMaker", "InvocationsPerInstance")]["StatisticValues"]["Sum"] == 1.5
    errors = sent[("AWS/SageMaker", "Invocation5XXErrors")]["StatisticValues"]
    assert (errors["SampleCount"], errors["Sum"]) == (4, 1)
    latency = sent[("AWS/SageMaker", "ModelLatency")]
    assert latency["Unit"] == "Microseconds"
    assert latency["StatisticValues"]["SampleCount"] == 4
    assert latency["StatisticValues"]["Maximum"] == 4000.0
    assert sent[("AWS/SageMaker", "OverheadLatency")]["StatisticValues"]["SampleCount"] == 3
    cpu = sent[("/aws/sagemaker/Endpoints", "CPUUtilization")]
    assert cpu["Unit"] == "Percent"
    service.cloudwatch.calls.clear()
    metrics.flush()  # nothing new, and CPU/memory wait a minute
    assert service.cloudwatch.calls == []


def test_each_execution_is_started_and_ended_once() -> None:
    cloudwatch = _CloudWatch()
    states = StatesMetrics(cloudwatch=cloudwatch)
    start = datetime.now(UTC) + timedelta(seconds=1)
    detail = {
        "executionArn": "arn:x",
        "stateMachineArn": "arn:sm",
        "status": "RUNNING",
        "startDate": start,
    }
    states.on_status_change(detail)
    states.on_status_change(detail)
    states.on_status_change(
        {**detail, "status": "SUCCEEDED", "stopDate": start + timedelta(seconds=2)}
    )
    names = [d["MetricName"] for call in cloudwatch.calls for d in call["MetricData"]]
    assert names == ["ExecutionsStarted", "ExecutionsSucceeded", "ExecutionTime"]
    assert cloudwatch.calls[-1]["MetricData"][1]["Value"] == 2000.0


def test_a_jobs_host_reports_its_cpu_and_memory_when_it_ends() -> None:
    cloudwatch = _CloudWatch()
    sampler = HostSampler(cloudwatch, TRAINING_NAMESPACE, "job/algo-1", os.getpid(), 0.02)
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:  # keep the "instance" busy
        sum(range(1000))
    sampler.finish()
    (call,) = cloudwatch.calls
    assert call["Namespace"] == "/aws/sagemaker/TrainingJobs"
    sent = {d["MetricName"]: d for d in call["MetricData"]}
    assert set(sent) == {"CPUUtilization", "MemoryUtilization"}
    assert sent["CPUUtilization"]["Dimensions"] == [{"Name": "Host", "Value": "job/algo-1"}]
    assert sent["CPUUtilization"]["Value"] > 10 and 0 < sent["MemoryUtilization"]["Value"] < 100
