"""``python -m local services`` tells what its executions do, and a SIGTERM
stops them as a console Stop would (ExecutionEnded then stops their jobs)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from local.cli.services_cmd import execution_line
from tests.sdk.conftest import running_services

ROOT = Path(__file__).resolve().parents[2]
ARN = "arn:aws:states:us-east-1:123456789012:execution:sm:run-1"


def _event(status: str, **detail: object) -> dict[str, object]:
    return {
        "detail-type": "Step Functions Execution Status Change",
        "detail": {"name": "run-1", "executionArn": ARN, "status": status, **detail},
    }


def test_the_lines_services_prints_for_an_execution() -> None:
    assert execution_line(_event("RUNNING")) == "execution run-1 started"
    output = json.dumps({"metrics": {"accuracy": 0.99123, "f1": 0.95678}})
    done = _event("SUCCEEDED", startDate=1_000, stopDate=31_000, output=output)
    assert execution_line(done) == "execution run-1 SUCCEEDED in 30s: accuracy 0.9912, F1 0.9568"
    gate = {"errorType": "QualityGateFailedError", "errorMessage": "best 0.8 < min_objective 0.9"}
    failed = execution_line(
        _event("FAILED", error="QualityGateFailedError", cause=json.dumps(gate))
    )
    assert failed is not None and failed.startswith("execution run-1 FAILED: ")
    assert "min_objective" in failed
    assert execution_line({"detail-type": "SageMaker Endpoint State Change"}) is None


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_sigterm_stops_the_running_execution_and_its_tuning_job(tmp_path: Path) -> None:
    log_path = tmp_path / "services.log"
    with running_services(tmp_path) as (proc, env), pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        sfn = boto3.client("stepfunctions")
        sagemaker = boto3.client("sagemaker")
        sfn.start_execution(
            stateMachineArn=env["MNIST_LL_STATE_MACHINE_ARN"],
            name="held-up",
            input=json.dumps({"max_jobs": 20, "max_parallel_jobs": 1}),
        )

        def tuning_in_progress() -> bool:
            jobs = sagemaker.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
            return any(j["HyperParameterTuningJobStatus"] == "InProgress" for j in jobs)

        _wait_for(tuning_in_progress, 60, "no tuning job started")
        assert "execution held-up started" in log_path.read_text()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    text = log_path.read_text()
    assert "stopping execution held-up" in text, text[-3000:]
    assert "execution held-up ABORTED" in text, text[-3000:]
    assert "python -m local services was stopped" in text
