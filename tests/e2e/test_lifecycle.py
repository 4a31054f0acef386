"""Cost and lifecycle, end to end on the embedded services: the three endpoint
modes, the TTL schedule (created, moved, fired), and every way an execution
ends without success leaving no InProgress tuning job and an SNS message."""

from __future__ import annotations

import _thread
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.account.runner import LocalPipeline, RunResult
from tests.e2e.test_pipeline_faults import in_progress_tuning_jobs

FAST = {"max_jobs": 1, "max_parallel_jobs": 1, "min_objective": 0}
TTL_ENDPOINT = "mnist-ll-ttl-e2e"


def _run(pipeline: LocalPipeline, name: str, payload: dict[str, Any]) -> RunResult:
    return pipeline.execute(payload, name, timeout=300)


def _report(pipeline: LocalPipeline, name: str) -> dict[str, Any]:
    body = (
        boto3.client("s3")
        .get_object(Bucket=pipeline.bucket, Key=f"runs/{name}/report.json")["Body"]
        .read()
    )
    report: dict[str, Any] = json.loads(body)
    return report


def _deletes_at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


# -- the three modes -----------------------------------------------------------------------


def test_mode_none_scores_with_batch_transform_and_keeps_no_endpoint(
    pipeline: LocalPipeline, small_dataset: Path
) -> None:
    sm = boto3.client("sagemaker")
    before = {e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]}
    payload = {"source": str(small_dataset), "endpoint": {"mode": "none"}, **FAST}
    result = _run(pipeline, "e2e-mode-none", payload)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    out = result.output or {}
    assert out["endpoint"] == {"mode": "none", "name": None, "deletes_at": None}
    assert out["endpoint_name"] is None
    cost = out["cost"]
    assert cost["endpoint_usd_per_hour"] == 0.0
    assert cost["training_billable_seconds"] >= 1 and cost["training_jobs"] == 1
    assert cost["transform_seconds"] > 0
    assert cost["prices"]["source"] and cost["prices"]["date"]
    # Scored by the transform job; nothing serves and nothing is scheduled.
    (job,) = sm.list_transform_jobs(NameContains="e2e-mode-none")["TransformJobSummaries"]
    assert job["TransformJobStatus"] == "Completed"
    assert {e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]} == before
    assert not [s for s in pipeline.schedules() if "e2e-mode-none" in json.dumps(s)]
    report = _report(pipeline, "e2e-mode-none")
    cm = report["confusion_matrix"]
    assert sum(cm.values()) == report["rows"] == 400
    assert report["metrics"]["accuracy"] > 0.8
    assert report["endpoint"] == out["endpoint"] and report["cost"] == cost
    assert report["predictions_uri"].endswith("/transform/test.rec.out")
    # The job has ended: the model it ran is deleted (nothing is left behind).
    assert report["model_name"] not in {m["ModelName"] for m in sm.list_models()["Models"]}
    assert report["model_name"]


def test_serverless_ttl_is_scheduled_moved_by_a_later_run_and_firing_it_deletes_everything(
    pipeline: LocalPipeline, small_dataset: Path
) -> None:
    pipeline.notifications()  # drain
    sm = boto3.client("sagemaker")
    started = datetime.now(UTC)
    serverless = {"mode": "serverless", "memory_mb": 2048}
    first = _run(
        pipeline,
        "e2e-ttl-1",
        {
            "source": str(small_dataset),
            "endpoint_name": TTL_ENDPOINT,
            "endpoint": {**serverless, "ttl_hours": 2},
            **FAST,
        },
    )
    assert first.status == "SUCCEEDED", (first.error, first.cause)
    block = (first.output or {})["endpoint"]
    assert (block["mode"], block["name"]) == ("serverless", TTL_ENDPOINT)
    deletes_at = _deletes_at(block["deletes_at"])
    assert timedelta(hours=2) - timedelta(minutes=1) <= deletes_at - started
    assert deletes_at - started <= timedelta(hours=2, minutes=5)
    first_config = sm.describe_endpoint(EndpointName=TTL_ENDPOINT)["EndpointConfigName"]
    (first_variant,) = sm.describe_endpoint_config(EndpointConfigName=first_config)[
        "ProductionVariants"
    ]
    # Serverless Inference excludes network isolation: its model is created without.
    assert not sm.describe_model(ModelName=first_variant["ModelName"]).get("EnableNetworkIsolation")
    (schedule,) = [
        s for s in pipeline.schedules() if s["target_input"]["endpoint_name"] == TTL_ENDPOINT
    ]
    assert schedule["action_after_completion"] == "DELETE"
    assert schedule["expression"] == f"at({deletes_at.strftime('%Y-%m-%dT%H:%M:%S')})"

    # A realtime run cannot turn the serverless endpoint instance-based in place:
    # InvalidInput, and the serverless endpoint keeps serving its config.
    other_kind = _run(
        pipeline,
        "e2e-ttl-realtime",
        {"source": str(small_dataset), "endpoint_name": TTL_ENDPOINT, **FAST},
    )
    assert other_kind.status == "FAILED"
    assert other_kind.error == "InvalidInputError", (other_kind.error, other_kind.cause)
    assert "another endpoint_name" in str(other_kind.cause)
    described = sm.describe_endpoint(EndpointName=TTL_ENDPOINT)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == (
        "InService",
        first_config,
    )

    # A later serverless run on the same endpoint moves the one schedule and
    # retires the config and model it superseded.
    second = _run(
        pipeline,
        "e2e-ttl-2",
        {
            "source": str(small_dataset),
            "endpoint_name": TTL_ENDPOINT,
            "endpoint": {**serverless, "ttl_hours": 3},
            **FAST,
        },
    )
    assert second.status == "SUCCEEDED", (second.error, second.cause)
    moved = _deletes_at((second.output or {})["endpoint"]["deletes_at"])
    assert moved - deletes_at >= timedelta(minutes=59)
    (schedule,) = [
        s for s in pipeline.schedules() if s["target_input"]["endpoint_name"] == TTL_ENDPOINT
    ]
    assert schedule["expression"] == f"at({moved.strftime('%Y-%m-%dT%H:%M:%S')})"
    config_name = sm.describe_endpoint(EndpointName=TTL_ENDPOINT)["EndpointConfigName"]
    (variant,) = sm.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
    assert variant["ServerlessConfig"]["MemorySizeInMB"] == 2048
    model = variant["ModelName"]
    assert first_config not in {
        c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]
    }
    assert first_variant["ModelName"] not in {m["ModelName"] for m in sm.list_models()["Models"]}

    # What Scheduler does at the TTL: invoke the target with its input.
    result = pipeline.fire_schedule(schedule["name"])
    assert {d["kind"] for d in result["deleted"]} == {"endpoint", "endpoint_config", "model"}
    pipeline.sagemaker.wait_idle(5)  # type: ignore[union-attr]
    time.sleep(0.6)  # Deleting -> gone
    assert TTL_ENDPOINT not in {e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]}
    assert config_name not in {
        c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]
    }
    assert model not in {m["ModelName"] for m in sm.list_models()["Models"]}
    assert not [s for s in pipeline.schedules() if s["name"] == schedule["name"]]
    told = [n for n in pipeline.notifications() if n.get("status") == "ENDPOINT_TTL"]
    assert told and told[0]["endpoint_name"] == TTL_ENDPOINT


def test_a_run_that_fails_to_schedule_its_ttl_after_deploy_still_leaves_none_serving(
    pipeline: LocalPipeline, small_dataset: Path
) -> None:
    assert pipeline.dispatcher is not None
    pipeline.notifications()  # drain
    endpoint = "mnist-ll-ttl-lost-e2e"

    def broken(_event: dict[str, Any]) -> None:
        raise RuntimeError("Scheduler unreachable")

    pipeline.dispatcher.fault_hooks["lambdas.schedule_ttl.handler"] = broken
    try:
        payload = {"source": str(small_dataset), "endpoint_name": endpoint, **FAST}
        result = _run(pipeline, "e2e-ttl-lost", payload)
    finally:
        pipeline.dispatcher.fault_hooks.clear()
    assert result.status == "FAILED" and result.failed_state == "ScheduleEndpointTtl"
    # ExecutionEnded gave the endpoint the run created a TTL, soon; one notification.
    assert result.ended is not None and result.ended["published"] is False
    made = result.ended["released"]["endpoint_ttl"]
    assert made["scheduled"] is True and made["created_by_run"] is True
    assert [n["status"] for n in pipeline.notifications()] == ["FAILED"]
    (schedule,) = [
        s for s in pipeline.schedules() if s["target_input"]["endpoint_name"] == endpoint
    ]
    # At the TTL: deleted, or re-armed if the endpoint is still Creating.
    fired = pipeline.fire_schedule(schedule["name"])
    if fired["action"] == "rearmed":
        (again,) = [s for s in pipeline.schedules() if s["name"] == fired["schedule_name"]]
        assert (
            again["target_input"]["rearms"] == 1 and again["target_arn"] == schedule["target_arn"]
        )
        pipeline.sagemaker.wait_idle(30)  # type: ignore[union-attr]
        fired = pipeline.fire_schedule(again["name"])
    assert fired["action"] == "deleted"
    assert {d["kind"] for d in fired["deleted"]} == {"endpoint", "endpoint_config", "model"}


# -- every unsuccessful ending stops the tuning job and tells the topic ---------------------


def _hang(pipeline: LocalPipeline) -> None:
    assert pipeline.sagemaker is not None
    pipeline.notifications()  # drain
    pipeline.sagemaker.inject_fault("tuning_hang")


@contextmanager
def _paced_polls(pipeline: LocalPipeline) -> Iterator[None]:
    """Each DescribeTuning takes 0.2 s more: a hung job reaches ``max_polls``
    (a FAILED execution) no sooner than the timeout or the interrupt these
    tests are about, however short the Wait states."""
    assert pipeline.dispatcher is not None
    pipeline.dispatcher.fault_hooks["lambdas.describe_tuning.handler"] = lambda _e: time.sleep(0.2)
    try:
        yield
    finally:
        pipeline.dispatcher.fault_hooks.clear()


def _ended_message(pipeline: LocalPipeline, status: str) -> dict[str, Any]:
    found = [n for n in pipeline.notifications() if n.get("released")]
    assert [n["status"] for n in found] == [status]
    return found[0]


def _wait_for_tuning(pipeline: LocalPipeline, execution: str) -> None:
    """Until this execution's tuning job runs (a Stop while StartTuning is in
    flight is a race the README names)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not [
        j for j in in_progress_tuning_jobs(pipeline, wait=0) if execution in j
    ]:
        time.sleep(0.05)


def test_a_fail_state_stops_the_running_tuning_job(
    pipeline: LocalPipeline, small_dataset: Path
) -> None:
    assert pipeline.dispatcher is not None
    _hang(pipeline)

    def broken(_event: dict[str, Any]) -> None:
        raise RuntimeError("DescribeTuning broke")

    pipeline.dispatcher.fault_hooks["lambdas.describe_tuning.handler"] = broken
    try:
        result = _run(pipeline, "e2e-end-fail", {"source": str(small_dataset), **FAST})
    finally:
        pipeline.dispatcher.fault_hooks.clear()
    assert result.status == "FAILED"
    assert result.ended is not None
    assert result.ended["released"]["tuning_job"]["stopped"] is True
    assert not in_progress_tuning_jobs(pipeline)
    # One notification: NotifyFailure's; ExecutionEnded publishes nothing more.
    assert result.ended["published"] is False
    notes = pipeline.notifications()
    assert [(n["status"], n["execution"]) for n in notes] == [("FAILED", "e2e-end-fail")]
    assert notes[0]["error"] == "RuntimeError" and "released" not in notes[0]


def test_a_timeout_stops_the_running_tuning_job(
    pipeline: LocalPipeline, small_dataset: Path
) -> None:
    _hang(pipeline)
    with _paced_polls(pipeline), pytest.raises(TimeoutError):
        # Long enough for the run to reach its tuning job on a busy machine
        # (3 s missed it once); the hung job polls about 8 times meanwhile.
        pipeline.execute({"source": str(small_dataset), **FAST}, "e2e-end-timeout", timeout=10)
    assert not in_progress_tuning_jobs(pipeline)
    message = _ended_message(pipeline, "TIMED_OUT")
    assert message["released"]["tuning_job"]["stopped"] is True


def test_ctrl_c_aborts_the_execution_and_stops_the_running_tuning_job(
    pipeline: LocalPipeline, small_dataset: Path
) -> None:
    _hang(pipeline)

    def interrupt_once_tuning() -> None:
        _wait_for_tuning(pipeline, "e2e-end-abort")
        _thread.interrupt_main()  # what Ctrl-C does

    threading.Thread(target=interrupt_once_tuning, daemon=True).start()
    with _paced_polls(pipeline), pytest.raises(KeyboardInterrupt):
        pipeline.execute({"source": str(small_dataset), **FAST}, "e2e-end-abort", timeout=60)
    arn = f"{pipeline.state_machine_arn.replace(':stateMachine:', ':execution:')}:e2e-end-abort"
    sfn = boto3.client("stepfunctions")
    # moto ends a stopped execution once its in-flight task returns.
    deadline = time.monotonic() + 20
    desc = sfn.describe_execution(executionArn=arn)
    while desc["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
        desc = sfn.describe_execution(executionArn=arn)
    assert desc["status"] == "ABORTED", (desc.get("error"), desc.get("cause"))
    assert not in_progress_tuning_jobs(pipeline)
    message = _ended_message(pipeline, "ABORTED")
    assert message["released"]["tuning_job"]["stopped"] is True


def test_an_instance_type_the_region_does_not_offer_fails_named_with_the_key_to_set(
    pipeline: LocalPipeline, small_dataset: Path
) -> None:
    assert pipeline.sagemaker is not None
    pipeline.sagemaker.inject_fault(
        "instance_unavailable:CreateHyperParameterTuningJob",
        "The instance type ml.c4.xlarge is not supported in region eu-north-1",
    )
    result = _run(pipeline, "e2e-unavailable", {"source": str(small_dataset), **FAST})
    assert result.status == "FAILED"
    fail = [e for e in result.events if e["type"] == "FailStateEntered"]
    assert fail[0]["stateEnteredEventDetails"]["name"] == "InstanceTypeUnavailable"
    assert result.error == "InstanceTypeUnavailableError"
    assert "training_instance_type" in (result.cause or "")


def test_spot_tuning_runs_and_reports_the_saving(
    pipeline: LocalPipeline, small_dataset: Path
) -> None:
    payload = {"source": str(small_dataset), "spot": True, "endpoint": {"mode": "none"}, **FAST}
    result = _run(pipeline, "e2e-spot", payload)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    cost = (result.output or {})["cost"]
    # Locally every trained second is billed (no interruption market): a 0 % saving.
    assert cost["spot"] is True and cost["spot_savings_percent"] == 0.0
    sm = boto3.client("sagemaker")
    (job,) = [
        j
        for j in sm.list_hyper_parameter_tuning_jobs(NameContains="e2e-spot")[
            "HyperParameterTuningJobSummaries"
        ]
    ]
    definition = sm.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=job["HyperParameterTuningJobName"]
    )["TrainingJobDefinition"]
    assert definition["EnableManagedSpotTraining"] is True
    assert definition["CheckpointConfig"]["S3Uri"].endswith("/runs/e2e-spot/checkpoints/")
