"""Model registry end to end: the synthesized state machine registers the
tuned model, approval auto/manual, and a later run deploys a registered
version by ARN (a rollback) with the same confusion matrix.

Manual approval is released the way AWS does it: UpdateModelPackage on the
local SageMaker emits "SageMaker Model Package State Change", which the
template's rule delivers to the ApprovalDecided Lambda.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.account.runner import LocalPipeline, RunResult
from local.cli import main as cli
from pipeline_core.failures import failure_message
from pipeline_core.names import model_package_group_name

FAST = {"max_jobs": 2, "max_parallel_jobs": 2}

#: The default stack's own registry.
GROUP = model_package_group_name("mnist-ll", "MnistLinearLearnerPipeline")


def _run(pipeline: LocalPipeline, name: str, payload: dict[str, Any]) -> RunResult:
    return pipeline.execute(payload, name, timeout=300)


def _fail_state(result: RunResult) -> str | None:
    for event in result.events:
        if event["type"] == "FailStateEntered":
            name: str = event["stateEnteredEventDetails"]["name"]
            return name
    return None


def _visited(result: RunResult) -> set[str]:
    return {
        e["stateEnteredEventDetails"]["name"]
        for e in result.events
        if e["type"].endswith("StateEntered")
    }


def _report(pipeline: LocalPipeline, execution: str) -> dict[str, Any]:
    body = (
        boto3.client("s3")
        .get_object(Bucket=pipeline.bucket, Key=f"runs/{execution}/report.json")["Body"]
        .read()
    )
    report: dict[str, Any] = json.loads(body)
    return report


@pytest.fixture(scope="module")
def tuned(pipeline: LocalPipeline, small_dataset: Path) -> RunResult:
    return _run(pipeline, "reg-tuned", {"source": str(small_dataset), **FAST})


def test_tuned_run_registers_an_approved_version(pipeline: LocalPipeline, tuned: RunResult) -> None:
    assert tuned.status == "SUCCEEDED", (tuned.error, tuned.cause)
    output = tuned.output or {}
    arn = output["model_package_arn"]
    assert output["approval_status"] == "Approved"
    described = boto3.client("sagemaker").describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ModelPackageGroupName"] == GROUP
    container = described["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"].endswith("/output/model.tar.gz")
    report_uri = described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    assert report_uri == f"s3://{pipeline.bucket}/runs/reg-tuned/report.json"
    report = _report(pipeline, "reg-tuned")
    assert report["registry"]["model_package_arn"] == arn
    assert report["registry"]["approval_status"] == "Approved"
    # Evaluate's UpdateModelPackage: the test AUC and F1 on the version; its lineage.
    meta = described["CustomerMetadataProperties"]
    assert float(meta["test_auc"]) == pytest.approx(report["metrics"]["auc"], abs=1e-6)
    assert float(meta["test_f1"]) == pytest.approx(report["metrics"]["f1"], abs=1e-6)
    assert meta["dataset_sha256"] == report["lineage"]["dataset"]["sha256"]
    assert report["lineage"]["model_package"] == arn
    assert report["lineage"]["execution_arn"] == tuned.execution_arn
    assert len(report["tuning_trials"]["trials"]) == FAST["max_jobs"]
    assert {"RegisterModel", "ApprovalMode"} <= _visited(tuned)
    assert "WaitForApproval" not in _visited(tuned)


def test_run_by_arn_deploys_that_version_with_the_same_confusion_matrix(
    pipeline: LocalPipeline, tuned: RunResult
) -> None:
    arn = (tuned.output or {})["model_package_arn"]
    again = _run(pipeline, "reg-by-arn", {"model_package_arn": arn})
    assert again.status == "SUCCEEDED", (again.error, again.cause)
    output = again.output or {}
    assert output["model_package_arn"] == arn
    assert output["confusion_matrix"] == (tuned.output or {})["confusion_matrix"]
    visited = _visited(again)
    assert "LoadModelPackage" in visited
    # Not tuned here: no trials, and the version keeps its registering run's metadata.
    report = _report(pipeline, "reg-by-arn")
    assert report["tuning_trials"]["trials"] == [] and arn in report["tuning_trials"]["note"]
    assert report["lineage"]["model_package_source"] == "model_package_arn"
    assert (
        report["lineage"]["dataset"]["sha256"]
        == _report(pipeline, "reg-tuned")["lineage"]["dataset"]["sha256"]
    )
    assert not visited & {"ConvertDataset", "StartTuning", "RegisterModel"}
    # Deployed from the version's InferenceSpecification.
    sm = boto3.client("sagemaker")
    model = sm.describe_model(ModelName=_report(pipeline, "reg-by-arn")["model_name"])
    spec = sm.describe_model_package(ModelPackageName=arn)["InferenceSpecification"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == spec["Containers"][0]["ModelDataUrl"]
    assert model["PrimaryContainer"]["Image"] == spec["Containers"][0]["Image"]


def _start_manual(
    pipeline: LocalPipeline, name: str, small_dataset: Path
) -> tuple[threading.Thread, dict[str, RunResult]]:
    box: dict[str, RunResult] = {}
    payload = {"source": str(small_dataset), "approval": "manual", **FAST}
    thread = threading.Thread(target=lambda: box.update(result=_run(pipeline, name, payload)))
    thread.start()
    return thread, box


def _pending_version(execution: str, timeout: float = 240.0) -> str:
    """The version ``execution`` registered, once its execution waits for approval."""
    sm = boto3.client("sagemaker")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for summary in sm.list_model_packages(
            ModelPackageGroupName=GROUP, ModelApprovalStatus="PendingManualApproval"
        )["ModelPackageSummaryList"]:
            arn = summary["ModelPackageArn"]
            meta = sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
            if meta.get("execution") == execution:
                return str(arn)
        time.sleep(0.2)
    raise AssertionError(f"{execution} registered no pending version")


def test_manual_approval_waits_and_deploys_once_approved(
    pipeline: LocalPipeline, small_dataset: Path, tuned: RunResult
) -> None:
    thread, box = _start_manual(pipeline, "reg-manual-ok", small_dataset)
    arn = _pending_version("reg-manual-ok")
    time.sleep(0.5)  # the execution is (or soon is) in WaitForApproval
    assert thread.is_alive()
    # `python -m local approve` (this process's environment points at the account).
    assert cli.main(["approve", arn, "--description", "looks good"]) == 0
    thread.join(300)
    result = box["result"]
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert (result.output or {})["model_package_arn"] == arn
    assert (result.output or {})["approval_status"] == "Approved"
    assert "WaitForApproval" in _visited(result)
    described = boto3.client("sagemaker").describe_model_package(ModelPackageName=arn)
    assert described["ApprovalDescription"] == "looks good"


def test_manual_rejection_ends_in_model_rejected(
    pipeline: LocalPipeline, small_dataset: Path, tuned: RunResult
) -> None:
    thread, box = _start_manual(pipeline, "reg-manual-no", small_dataset)
    arn = _pending_version("reg-manual-no")
    # By execution name: approve finds the version the execution registered.
    reject = ["approve", "--execution", "reg-manual-no", "--reject", "--description", "too few 7s"]
    assert cli.main(reject) == 0
    thread.join(300)
    result = box["result"]
    assert result.status == "FAILED"
    assert _fail_state(result) == "ModelRejected"
    # The reviewer's description reaches the execution's cause and its sentence.
    assert "too few 7s" in (result.cause or "")
    message = failure_message(result.error, result.cause)
    assert message.startswith(f'model version {arn} was rejected ("too few 7s"); run again')
    assert "Deploy" not in _visited(result)
    # A rejected version is never deployed by ARN either.
    by_arn = _run(pipeline, "reg-rejected-arn", {"model_package_arn": arn})
    assert by_arn.status == "FAILED"
    assert _fail_state(by_arn) == "ModelNotApproved"


def test_update_rolls_back_when_an_alarm_fires_and_the_old_config_keeps_serving(
    pipeline: LocalPipeline, tuned: RunResult
) -> None:
    from pipeline_core.rollout import alarm_names

    arn = (tuned.output or {})["model_package_arn"]
    endpoint = (tuned.output or {})["endpoint_name"]
    sm, cloudwatch = boto3.client("sagemaker"), boto3.client("cloudwatch")
    serving = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    errors_alarm, _latency = alarm_names(endpoint)
    cloudwatch.set_alarm_state(
        AlarmName=errors_alarm, StateValue="ALARM", StateReason="test: 5xx on the canary"
    )
    try:
        # Two instances: a canary of one (a one-instance endpoint shifts all at once).
        result = _run(
            pipeline,
            "reg-rollback",
            {"model_package_arn": arn, "endpoint": {"instance_count": 2}},
        )
    finally:
        cloudwatch.set_alarm_state(AlarmName=errors_alarm, StateValue="OK", StateReason="test")
    assert result.status == "FAILED"
    assert _fail_state(result) == "EndpointRolledBack"
    assert result.error == "EndpointUpdateRolledBackError"
    cause = json.loads(result.cause or "{}")
    assert cause["endpoint_config_name"] == serving
    assert "rolled back" in cause["message"] and serving in cause["message"]
    assert errors_alarm in cause["failure_reason"]
    described = sm.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == serving
    routing = described["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert routing["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    assert routing["TrafficRoutingConfiguration"]["CanarySize"] == {
        "Type": "INSTANCE_COUNT",
        "Value": 1,
    }
    # The rolled-back config and model never served: the run deleted them.
    configs = [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]]
    models = [m["ModelName"] for m in sm.list_models()["Models"]]
    assert serving in configs
    assert not [n for n in configs + models if "reg-rollback" in n]
    # With the alarm quiet again the same update goes through.
    again = _run(pipeline, "reg-rollforward", {"model_package_arn": arn})
    assert again.status == "SUCCEEDED", (again.error, again.cause)
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] != serving
