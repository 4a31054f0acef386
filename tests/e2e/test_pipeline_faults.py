"""Injected faults, asserted through the synthesized state machine.

moto's ASL interpreter really sleeps for each Retry interval; the
``fast_retries`` fixture records the intervals instead (proving the backoff)
without waiting. The definition itself is not changed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.account.runner import LocalPipeline, RunResult

FAST = {"max_jobs": 2, "max_parallel_jobs": 2}


class _Clock:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Clock]:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    clock = _Clock()
    monkeypatch.setattr(retrier_decl, "time", clock)
    yield clock


def _fail_state(result: RunResult) -> str | None:
    for event in result.events:
        if event["type"] == "FailStateEntered":
            name: str = event["stateEnteredEventDetails"]["name"]
            return name
    return None


def _entered(result: RunResult, state: str) -> int:
    return sum(
        1
        for e in result.events
        if e["type"].endswith("StateEntered") and e["stateEnteredEventDetails"]["name"] == state
    )


def _retrier(pipeline: LocalPipeline, state: str, error: str) -> dict[str, Any]:
    from local.account.services import ACCOUNT, REGION

    definition = pipeline.synth.definition(region=REGION, account=ACCOUNT)
    for retrier in definition["States"][state]["Retry"]:
        if error in retrier["ErrorEquals"]:
            found: dict[str, Any] = retrier
            return found
    raise AssertionError(f"{state} has no Retry for {error}")


def _task_failures(result: RunResult) -> list[str]:
    return [
        e.get("lambdaFunctionFailedEventDetails", e.get("taskFailedEventDetails", {})).get(
            "error", ""
        )
        for e in result.events
        if e["type"] in ("LambdaFunctionFailed", "TaskFailed")
    ]


def test_throttled_create_is_retried_by_the_client_and_starts_one_tuning_job(
    pipeline: LocalPipeline, small_dataset: Path
) -> None:
    assert pipeline.sagemaker is not None
    before = pipeline.sagemaker.calls.count("CreateHyperParameterTuningJob")
    pipeline.sagemaker.inject_fault("throttle:CreateHyperParameterTuningJob")
    result = pipeline.execute({"source": str(small_dataset), **FAST}, "fault-throttle", 300)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    calls = pipeline.sagemaker.calls.count("CreateHyperParameterTuningJob") - before
    assert calls == 2  # one throttled, one accepted
    jobs = boto3.client("sagemaker").list_hyper_parameter_tuning_jobs()
    names = [j["HyperParameterTuningJobName"] for j in jobs["HyperParameterTuningJobSummaries"]]
    assert sum(1 for n in names if "fault-throttle" in n) == 1


def test_resource_limit_is_retried_with_backoff_then_fails_naming_the_quota(
    pipeline: LocalPipeline, small_dataset: Path, fast_retries: _Clock
) -> None:
    assert pipeline.sagemaker is not None and pipeline.dispatcher is not None
    quota = "The account-level service limit 'ml.c4.xlarge for training job usage' is 0"
    pipeline.sagemaker.inject_fault(
        "resource_limit:CreateHyperParameterTuningJob", quota, times=1000
    )
    before = len(pipeline.dispatcher.invocations)
    try:
        result = pipeline.execute({"source": str(small_dataset), **FAST}, "fault-quota", 300)
    finally:
        pipeline.sagemaker.clear_faults()
    assert result.status == "FAILED"
    assert _fail_state(result) == "PipelineFailed"
    assert "ResourceLimitError" in (result.error or "") + (result.cause or "")
    assert "ml.c4.xlarge for training job usage" in (result.cause or "")
    attempts = [
        i
        for i in pipeline.dispatcher.invocations[before:]
        if i.function == "lambdas.start_tuning.handler"
    ]
    retry = _retrier(pipeline, "StartTuning", "ResourceLimitError")
    assert len(attempts) == retry["MaxAttempts"] + 1  # the first try, then the retries
    expected = [
        retry["IntervalSeconds"] * retry["BackoffRate"] ** i for i in range(retry["MaxAttempts"])
    ]
    assert fast_retries.sleeps == expected  # exponential backoff, as synthesized


def test_lambda_service_error_retry_wiring(
    pipeline: LocalPipeline, small_dataset: Path, fast_retries: _Clock
) -> None:
    failures = {"left": 2}

    class ServiceException(Exception):
        pass

    # Real Step Functions raises Lambda.ServiceException when the Invoke call
    # itself fails; moto names such failures "Exception", so the only way to
    # drive this Retry here is an error of that name from the function.
    ServiceException.__name__ = "Lambda.ServiceException"

    def flaky(event: dict[str, Any]) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise ServiceException("Lambda was unable to run the function (injected)")

    assert pipeline.dispatcher is not None
    pipeline.dispatcher.fault_hooks["lambdas.convert.handler"] = flaky
    try:
        result = pipeline.execute({"source": str(small_dataset), **FAST}, "fault-lambda", 300)
    finally:
        pipeline.dispatcher.fault_hooks.clear()
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert _task_failures(result).count("Lambda.ServiceException") == 2
    assert len(fast_retries.sleeps) == 2


def test_stopped_tuning_job_ends_in_tuning_failed(
    pipeline: LocalPipeline, small_dataset: Path
) -> None:
    assert pipeline.sagemaker is not None
    pipeline.sagemaker.inject_fault("tuning_stopped")
    result = pipeline.execute({"source": str(small_dataset), **FAST}, "fault-stopped", 300)
    assert _fail_state(result) == "TuningFailed"
    assert "Stopped" in (result.cause or "")


def test_completed_tuning_without_best_job_ends_in_tuning_failed(
    pipeline: LocalPipeline, small_dataset: Path
) -> None:
    assert pipeline.sagemaker is not None
    pipeline.sagemaker.inject_fault("tuning_no_best")
    result = pipeline.execute({"source": str(small_dataset), **FAST}, "fault-no-best", 300)
    assert _fail_state(result) == "TuningFailed"
    assert "TuningJobFailedError" in (result.error or "") + (result.cause or "")


def test_two_concurrent_executions_keep_their_own_data(
    pipeline: LocalPipeline, small_dataset: Path, fast_retries: _Clock
) -> None:
    results: dict[str, RunResult] = {}

    def go(name: str, digit: int) -> None:
        # Separate endpoints: two executions updating one endpoint at once is a
        # race the later deployment wins (the other fails with EndpointFailed).
        payload = {
            "source": str(small_dataset),
            "target_digit": digit,
            "endpoint_name": f"mnist-ll-{name}",
            **FAST,
        }
        results[name] = pipeline.execute(payload, name, 300)

    threads = [
        threading.Thread(target=go, args=("concurrent-a", 0)),
        threading.Thread(target=go, args=("concurrent-b", 3)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(400)
    for name in ("concurrent-a", "concurrent-b"):
        assert results[name].status == "SUCCEEDED", (results[name].error, results[name].cause)
    s3 = boto3.client("s3")
    import json

    reports = {
        name: json.loads(
            s3.get_object(Bucket=pipeline.bucket, Key=f"runs/{name}/report.json")["Body"].read()
        )
        for name in results
    }
    assert reports["concurrent-a"]["target_digit"] == 0
    assert reports["concurrent-b"]["target_digit"] == 3
    for name in results:
        keys = [
            o["Key"]
            for o in s3.list_objects_v2(Bucket=pipeline.bucket, Prefix=f"runs/{name}/")["Contents"]
        ]
        assert any(k.endswith("data/manifest.json") for k in keys)


def test_stuck_tuning_loop_hits_its_bound_and_fails_with_a_cause(
    small_dataset: Path, tmp_path: Path
) -> None:
    from local.account.backend import LinearLearnerBackend

    with LocalPipeline(
        work_dir=tmp_path,
        backend=LinearLearnerBackend(work_dir=tmp_path / "backend"),
        poll_seconds=1,
        printer=lambda line: None,
        config_overrides={"max_polls": 3},
    ) as bounded:
        assert bounded.sagemaker is not None
        bounded.sagemaker.inject_fault("tuning_hang")
        result = bounded.execute({"source": str(small_dataset), **FAST}, "fault-stuck", 120)
        assert result.status == "FAILED"
        assert _fail_state(result) == "PipelineFailed"
        assert "PollLimitExceededError" in (result.error or "") + (result.cause or "")
        assert _entered(result, "DescribeTuning") <= 4
        # The poll limit ended the execution, not the job: ExecutionEnded stopped it.
        assert result.ended is not None
        assert result.ended["released"]["tuning_job"]["stopped"], result.ended["released"]
        assert not in_progress_tuning_jobs(bounded)
        # One notification per failure: NotifyFailure's (PipelineFailed), not
        # ExecutionEnded's as well.
        assert result.ended["published"] is False
        notes = bounded.notifications()
        assert [(n["status"], n["error"]) for n in notes] == [
            ("FAILED", "PollLimitExceededError")
        ], notes


def in_progress_tuning_jobs(pipeline: LocalPipeline, wait: float = 30.0) -> list[str]:
    """Tuning jobs still InProgress/Stopping once a stop has had ``wait`` s to land."""
    import time

    assert pipeline.sagemaker is not None
    deadline = time.monotonic() + wait
    while True:
        running = [
            j["HyperParameterTuningJobName"]
            for j in pipeline.sagemaker.op_ListHyperParameterTuningJobs({})[
                "HyperParameterTuningJobSummaries"
            ]
            if j["HyperParameterTuningJobStatus"] in ("InProgress", "Stopping")
        ]
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.05)


ROOT_DIR = Path(__file__).resolve().parents[2]


def _worker_pids() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            cwd = os.readlink(entry / "cwd")
            # The field after the parenthesised command name is the state, then the ppid.
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        # Workers of this test process only: other checkouts' and other test
        # workers' runs are not ours.
        if b"training._worker" in cmdline and cwd == str(ROOT_DIR) and ppid == os.getpid():
            pids.add(int(entry.name))
    return pids


def test_stopping_the_local_run_mid_tuning_leaves_no_worker_processes(
    small_dataset: Path, tmp_path: Path
) -> None:
    import json
    import time

    from local.account.backend import LinearLearnerBackend

    before = _worker_pids()
    with LocalPipeline(
        work_dir=tmp_path,
        backend=LinearLearnerBackend(work_dir=tmp_path / "backend"),
        poll_seconds=1,
        printer=lambda line: None,
    ) as running:
        sfn = boto3.client("stepfunctions")
        # max_jobs at the stack's cap (20): far more than finish before the stop.
        payload = {"source": str(small_dataset), "max_jobs": 20, "max_parallel_jobs": 2}
        sfn.start_execution(
            stateMachineArn=running.state_machine_arn, name="stop-mid", input=json.dumps(payload)
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (_worker_pids() - before):
            time.sleep(0.05)
        assert _worker_pids() - before, "no training worker started"
        service = running.sagemaker
    assert service is not None
    # Leaving the context stopped the tuning job: its thread has ended and no
    # worker process outlives the run (20 jobs would otherwise take ~8 s more).
    assert not [t.name for t in service._threads if t.is_alive()]
    time.sleep(0.5)
    assert not (_worker_pids() - before)


def test_failed_state_ignores_task_failures_a_retry_fixed() -> None:
    from local.account.runner import _first_failed_task

    def entered(kind: str, name: str) -> dict[str, Any]:
        return {"type": f"{kind}StateEntered", "stateEnteredEventDetails": {"name": name}}

    events = [
        entered("Task", "StartTuning"),
        {"type": "LambdaFunctionFailed"},
        {"type": "LambdaFunctionSucceeded"},  # retried
        entered("Choice", "QualityGate"),
        entered("Pass", "QualityGateNotMet"),
        entered("Task", "NotifyFailure"),
        {"type": "TaskSucceeded"},
        entered("Fail", "QualityGateFailed"),
    ]
    assert _first_failed_task(events) == "QualityGateFailed"
    events = [
        entered("Task", "Deploy"),
        {"type": "LambdaFunctionFailed"},
        entered("Task", "NotifyFailure"),
        {"type": "TaskSucceeded"},
        entered("Fail", "EndpointFailed"),
    ]
    assert _first_failed_task(events) == "Deploy"


def test_persistent_throttling_is_retried_by_the_state_machine_then_fails_named(
    pipeline: LocalPipeline,
    small_dataset: Path,
    fast_retries: _Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import botocore.endpoint

    client_sleeps: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", _ClientClock(client_sleeps))
    assert pipeline.sagemaker is not None and pipeline.dispatcher is not None
    pipeline.sagemaker.inject_fault("throttle:CreateHyperParameterTuningJob", times=10_000)
    before = pipeline.sagemaker.calls.count("CreateHyperParameterTuningJob")
    try:
        result = pipeline.execute({"source": str(small_dataset), **FAST}, "fault-throttled", 300)
    finally:
        pipeline.sagemaker.clear_faults()
    assert result.status == "FAILED"
    assert _fail_state(result) == "PipelineFailed"
    assert "ThrottlingError" in (result.error or "")
    retry = _retrier(pipeline, "StartTuning", "ThrottlingError")
    invocations = retry["MaxAttempts"] + 1
    assert _task_failures(result).count("ThrottlingError") == invocations
    # Each invocation's client tried 5 times (botocore standard mode) first.
    calls = pipeline.sagemaker.calls.count("CreateHyperParameterTuningJob") - before
    assert calls == invocations * 5
    assert len(client_sleeps) == invocations * 4
    assert len(fast_retries.sleeps) == retry["MaxAttempts"]


class _ClientClock:
    """Stands in for the ``time`` module inside botocore.endpoint."""

    def __init__(self, sleeps: list[float]) -> None:
        self.sleeps = sleeps

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def __getattr__(self, name: str) -> Any:
        import time

        return getattr(time, name)
