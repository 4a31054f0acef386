"""The synthesized state machine, executed by moto's ASL interpreter, with the
real handlers in-process and the local Linear Learner behind a local SageMaker.

Each case ends in the named state the definition promises. Runs share one
module-scoped pipeline (and so one endpoint), in order: the happy path first,
then the faults, which must leave that endpoint serving.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest

from local.account.runner import LocalPipeline, RunResult

FAST = {"max_jobs": 2, "max_parallel_jobs": 2}


def _fail_state(result: RunResult) -> str | None:
    for event in result.events:
        if event["type"] == "FailStateEntered":
            name: str = event["stateEnteredEventDetails"]["name"]
            return name
    return None


def _run(pipeline: LocalPipeline, name: str, payload: dict[str, Any]) -> RunResult:
    return pipeline.execute(payload, name, timeout=300)


def _endpoint(name: str) -> dict[str, Any]:
    described: dict[str, Any] = boto3.client("sagemaker").describe_endpoint(EndpointName=name)
    return described


def _predict(endpoint: str, rows: int = 3) -> list[dict[str, Any]]:
    body = "\n".join(",".join(["0.5"] * 784) for _ in range(rows))
    response = boto3.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint, ContentType="text/csv", Body=body.encode()
    )
    predictions: list[dict[str, Any]] = json.loads(response["Body"].read())["predictions"]
    return predictions


@pytest.fixture(scope="module")
def first_run(pipeline: LocalPipeline, small_dataset: Path) -> RunResult:
    payload = {"Comment": "Insert your JSON here", "source": str(small_dataset), **FAST}
    return _run(pipeline, "e2e-happy-1", payload)


def test_happy_path_succeeds_with_console_input_and_writes_report(
    pipeline: LocalPipeline, first_run: RunResult
) -> None:
    assert first_run.status == "SUCCEEDED", (first_run.error, first_run.cause)
    body = (
        boto3.client("s3")
        .get_object(Bucket=pipeline.bucket, Key="runs/e2e-happy-1/report.json")["Body"]
        .read()
    )
    report = json.loads(body)
    cm = report["confusion_matrix"]
    assert cm["tp"] + cm["fp"] + cm["tn"] + cm["fn"] == 400
    assert report["metrics"]["accuracy"] > 0.8
    visited = {
        e["stateEnteredEventDetails"]["name"]
        for e in first_run.events
        if e["type"].endswith("StateEntered")
    }
    for state in ("ValidateInput", "ConvertDataset", "StartTuning", "Deploy", "Evaluate"):
        assert state in visited


def test_happy_path_leaves_a_tagged_endpoint_in_service(
    pipeline: LocalPipeline, first_run: RunResult
) -> None:
    output = first_run.output or {}
    endpoint = _find_endpoint_name(output)
    described = _endpoint(endpoint)
    assert described["EndpointStatus"] == "InService"
    tags = boto3.client("sagemaker").list_tags(ResourceArn=described["EndpointArn"])["Tags"]
    assert any(t["Key"] == "mnist-ll:stack" for t in tags)
    assert len(_predict(endpoint)) == 3


def _find_endpoint_name(output: dict[str, Any]) -> str:
    for key in ("endpoint_name",):
        if key in output:
            return str(output[key])
    for section in output.values():
        if isinstance(section, dict) and "endpoint_name" in section:
            return str(section["endpoint_name"])
    raise AssertionError(f"no endpoint_name in execution output {output}")


def test_bad_input_ends_in_invalid_input_fail_state(
    pipeline: LocalPipeline, small_dataset: Path
) -> None:
    result = _run(pipeline, "e2e-bad-input", {"source": str(small_dataset), "target_digit": 12})
    assert result.status == "FAILED"
    assert _fail_state(result) == "InvalidInput"
    assert "target_digit" in (result.cause or "")


def test_unknown_key_ends_in_invalid_input(pipeline: LocalPipeline) -> None:
    result = _run(pipeline, "e2e-unknown-key", {"tagret_digit": 1})
    assert _fail_state(result) == "InvalidInput"
    assert "tagret_digit" in (result.cause or "")


def test_bad_dataset_ends_in_invalid_dataset(pipeline: LocalPipeline, tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-pickle.pkl.gz"
    bogus.write_bytes(b"definitely not gzip")
    result = _run(pipeline, "e2e-bad-data", {"source": str(bogus), **FAST})
    assert result.status == "FAILED"
    assert _fail_state(result) == "InvalidDataset"


class _ObjectFlagPickler(pickle.Pickler):
    """float32 dtypes whose pickled state claims they hold Python objects."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, np.dtype) and obj.kind == "f":
            fn, args, state = obj.__reduce__()
            return fn, args, (*state[:-1], 1)
        return NotImplemented


def test_pickle_with_rewritten_dtype_flags_ends_in_invalid_dataset(
    pipeline: LocalPipeline, small_dataset: Path, tmp_path: Path
) -> None:
    with gzip.open(small_dataset, "rb") as f:
        splits = pickle.load(f)  # our own generated file
    buf = io.BytesIO()
    _ObjectFlagPickler(buf, protocol=2).dump(splits)
    hostile = tmp_path / "rewritten-dtype.pkl.gz"
    hostile.write_bytes(gzip.compress(buf.getvalue()))
    result = _run(pipeline, "e2e-dtype-flags", {"source": str(hostile), **FAST})
    assert result.status == "FAILED"
    assert _fail_state(result) == "InvalidDataset"
    assert result.error == "InvalidDatasetError"
    assert "rewrites the flags of dtype 'f4'" in (result.cause or "")


def test_tuning_failure_ends_in_tuning_failed_and_keeps_endpoint(
    pipeline: LocalPipeline, first_run: RunResult, small_dataset: Path
) -> None:
    endpoint = _find_endpoint_name(first_run.output or {})
    before = _endpoint(endpoint)["EndpointConfigName"]
    assert pipeline.sagemaker is not None
    pipeline.sagemaker.inject_fault("tuning_failed", "injected: algorithm error")
    result = _run(pipeline, "e2e-tuning-failed", {"source": str(small_dataset), **FAST})
    assert result.status == "FAILED"
    assert _fail_state(result) == "TuningFailed"
    assert "injected" in (result.cause or "")
    assert _endpoint(endpoint)["EndpointConfigName"] == before
    assert _endpoint(endpoint)["EndpointStatus"] == "InService"


def test_quality_gate_failure_does_not_touch_endpoint(
    pipeline: LocalPipeline, first_run: RunResult, small_dataset: Path
) -> None:
    endpoint = _find_endpoint_name(first_run.output or {})
    before = _endpoint(endpoint)["EndpointConfigName"]
    result = _run(
        pipeline,
        "e2e-gate",
        # Above any F-beta: the gate fails whatever the sampled hyperparameters reach
        # (a perfect 1.0 on the small validation split is possible).
        {"source": str(small_dataset), "min_objective": 1.01, **FAST},
    )
    assert result.status == "FAILED"
    assert _fail_state(result) == "QualityGateFailed"
    assert _endpoint(endpoint)["EndpointConfigName"] == before
    visited = {
        e["stateEnteredEventDetails"]["name"]
        for e in result.events
        if e["type"].endswith("StateEntered")
    }
    assert "Deploy" not in visited


def test_failed_update_keeps_old_config_serving(
    pipeline: LocalPipeline, first_run: RunResult, small_dataset: Path
) -> None:
    endpoint = _find_endpoint_name(first_run.output or {})
    before = _endpoint(endpoint)["EndpointConfigName"]
    assert pipeline.sagemaker is not None
    pipeline.sagemaker.inject_fault("endpoint_update_failed", "injected: capacity error")
    result = _run(pipeline, "e2e-update-failed", {"source": str(small_dataset), **FAST})
    assert result.status == "FAILED"
    assert _fail_state(result) == "EndpointRolledBack"
    described = _endpoint(endpoint)
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == before
    assert len(_predict(endpoint)) == 3


def test_failed_create_is_cleaned_so_the_next_run_succeeds(
    pipeline: LocalPipeline, small_dataset: Path
) -> None:
    assert pipeline.sagemaker is not None
    pipeline.sagemaker.inject_fault("endpoint_create_failed", "injected: image pull error")
    payload = {"source": str(small_dataset), "endpoint_name": "mnist-ll-e2e-fresh", **FAST}
    failed = _run(pipeline, "e2e-create-failed", payload)
    assert failed.status == "FAILED"
    assert _fail_state(failed) == "EndpointFailed"
    retried = _run(pipeline, "e2e-create-retry", payload)
    assert retried.status == "SUCCEEDED", (retried.error, retried.cause)
    assert _endpoint("mnist-ll-e2e-fresh")["EndpointStatus"] == "InService"


def test_rerun_updates_in_place_and_retires_superseded_config(
    pipeline: LocalPipeline, first_run: RunResult, small_dataset: Path
) -> None:
    endpoint = _find_endpoint_name(first_run.output or {})
    before = _endpoint(endpoint)["EndpointConfigName"]
    result = _run(pipeline, "e2e-happy-2", {"source": str(small_dataset), **FAST})
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    after = _endpoint(endpoint)["EndpointConfigName"]
    assert after != before
    sm = boto3.client("sagemaker")
    configs = {c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]}
    assert after in configs
    assert before not in configs


def test_random_seed_repeats_the_tuning_under_another_execution_name(
    pipeline: LocalPipeline, small_dataset: Path
) -> None:
    payload = {"source": str(small_dataset), "random_seed": 3, "max_jobs": 3}
    runs = [_run(pipeline, name, payload) for name in ("e2e-seed-a", "e2e-seed-b")]
    assert [r.status for r in runs] == ["SUCCEEDED", "SUCCEEDED"]
    best = [(r.output or {})["best_training_job"] for r in runs]
    assert best[0]["hyperparameters"] == best[1]["hyperparameters"]
    assert best[0]["objective_value"] == best[1]["objective_value"]
    # two tuning jobs, not one reused
    assert best[0]["training_job_name"] != best[1]["training_job_name"]
