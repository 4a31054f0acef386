"""``python -m local services`` tells what its executions do, and a SIGTERM
stops them as a console Stop would (ExecutionEnded then stops their jobs)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from local.account.mnist_cache import FILE_NAME, write_dataset
from local.cli.services_cmd import execution_line
from tests.sdk.conftest import read_env_file
from tests.sdk.digits import make_digits

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


def _wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_sigterm_stops_the_running_execution_and_its_tuning_job(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    write_dataset(
        cache / FILE_NAME, [make_digits(1500, 1), make_digits(400, 2), make_digits(400, 3)]
    )
    env_file = tmp_path / "local-aws.env"
    log_path = tmp_path / "services.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local",
                "services",
                "--env-file",
                str(env_file),
                "--port",
                "0",
                "--sagemaker-port",
                "0",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "MNIST_LL_CACHE": str(cache), "MNIST_LL_OFFLINE": "1"},
        )
        try:
            _wait_for(lambda: "is up" in log_path.read_text() or proc.poll() is not None, 120,
                      "services did not start")  # fmt: skip
            assert proc.poll() is None, log_path.read_text()
            env = read_env_file(env_file)
            with pytest.MonkeyPatch.context() as mp:
                for key, value in env.items():
                    mp.setenv(key, value)
                sfn = boto3.client("stepfunctions")
                sagemaker = boto3.client("sagemaker")
                sfn.start_execution(
                    stateMachineArn=env["MNIST_LL_STATE_MACHINE_ARN"],
                    name="held-up",
                    input=json.dumps({"max_jobs": 20, "max_parallel_jobs": 1}),
                )

                def tuning() -> list[dict[str, object]]:
                    jobs: list[dict[str, object]] = sagemaker.list_hyper_parameter_tuning_jobs()[
                        "HyperParameterTuningJobSummaries"
                    ]
                    return jobs

                _wait_for(lambda: any(j["HyperParameterTuningJobStatus"] == "InProgress"
                                      for j in tuning()), 60, "no tuning job started")  # fmt: skip
                assert "execution held-up started" in log_path.read_text()
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log_path.read_text()
    assert "stopping execution held-up" in text, text[-3000:]
    assert "execution held-up ABORTED" in text, text[-3000:]
    assert "python -m local services was stopped" in text
