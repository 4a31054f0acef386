"""Sharded sources through the real local run: the synthesized Distributed Map,
executed by moto, with the real ConvertShard/FinalizeDataset handlers, and a
two-instance training job in the local SageMaker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from conftest import make_digits

from local.account.runner import LocalPipeline, RunResult
from local.cli.run_cmd import first_test_digit

FAST = {"max_jobs": 1, "max_parallel_jobs": 1}


def write_set(
    root: Path, fmt: str, train_shards: int, *, bad: bool = False, test_shards: int = 1
) -> Path:
    plan = [("train", i, 300) for i in range(train_shards)]
    plan += [("validation", 0, 300)] + [("test", i, 250 // test_shards) for i in range(test_shards)]
    for split, i, rows in plan:
        x, y = make_digits(rows, 100 + 10 * i + len(split))
        if bad and split == "validation":
            x[3, 5] = np.nan
        path = root / split / f"part-{i:05d}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "npz":
            np.savez(path, x=x, y=y)
        else:
            lines = [
                ",".join([str(int(d)), *(f"{v:.4f}" for v in row)])
                for d, row in zip(y, x, strict=True)
            ]
            path.write_text("\n".join(lines) + "\n")
    return root


def visited(result: RunResult) -> set[str]:
    return {
        e["stateEnteredEventDetails"]["name"]
        for e in result.events
        if e["type"].endswith("StateEntered")
    }


def fail_state(result: RunResult) -> str | None:
    for event in result.events:
        if event["type"] == "FailStateEntered":
            name: str = event["stateEnteredEventDetails"]["name"]
            return name
    return None


def stored(pipeline: LocalPipeline, key: str) -> dict[str, Any]:
    body = boto3.client("s3").get_object(Bucket=pipeline.bucket, Key=key)["Body"].read()
    loaded: dict[str, Any] = json.loads(body)
    return loaded


def test_npz_shards_convert_in_the_map_and_train_on_two_instances(
    pipeline: LocalPipeline, tmp_path: Path
) -> None:
    source = write_set(tmp_path / "npz", "npz", train_shards=4)
    payload = {"source": str(source), "training_instance_count": 2, **FAST}
    result = pipeline.execute(payload, "e2e-shards-npz", timeout=300)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert {"SourceKind", "ConvertShards", "FinalizeDataset"} <= visited(result)
    assert "ConvertDataset" not in visited(result)
    report = stored(pipeline, "runs/e2e-shards-npz/report.json")
    assert report["data"]["splits"] == {
        "train": {"rows": 1200, "objects": 4},
        "validation": {"rows": 300, "objects": 1},
        "test": {"rows": 250, "objects": 1},
    }
    assert report["training_instance_count"] == 2
    best = (result.output or {})["best_training_job"]
    assert best["instance_count"] == 2
    job = boto3.client("sagemaker").describe_training_job(TrainingJobName=best["training_job_name"])
    assert job["ResourceConfig"]["InstanceCount"] == 2
    cm = report["confusion_matrix"]
    assert sum(cm.values()) == 250 and report["metrics"]["accuracy"] > 0.8
    # sample_digit.png shows the first test row the evaluation scored: the
    # first row of the first test shard, whatever the source's kind.
    digit = first_test_digit(boto3.client("s3"), pipeline.bucket, "runs/e2e-shards-npz/")
    assert digit is not None
    x, y = make_digits(250, 100 + len("test"))
    np.testing.assert_allclose(digit[0], x[0], atol=1e-6)
    assert digit[1] == int(y[0] == 0)


def test_csv_shards_relabel_for_the_target_digit_and_batch_transform_scores_every_test_shard(
    pipeline: LocalPipeline, tmp_path: Path
) -> None:
    source = write_set(tmp_path / "csv", "csv", train_shards=2, test_shards=2)
    # One job on 600 rows: the gate is not what this checks.
    payload = {
        "source": str(source),
        "target_digit": 7,
        "min_objective": 0.0,
        "endpoint": {"mode": "none"},
        **FAST,
    }
    result = pipeline.execute(payload, "e2e-shards-csv", timeout=300)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    manifest = stored(pipeline, "runs/e2e-shards-csv/data/manifest.json")
    assert manifest["label"] == "1.0 if digit == 7 else 0.0"
    _, y = make_digits(300, 100 + len("train"))
    _, y2 = make_digits(300, 110 + len("train"))
    assert manifest["positives"]["train"] == int((y == 7).sum() + (y2 == 7).sum())
    assert (result.output or {})["best_training_job"]["instance_count"] == 1
    report = stored(pipeline, "runs/e2e-shards-csv/report.json")
    assert report["data"]["splits"]["test"] == {"rows": 250, "objects": 2}
    assert sum(report["confusion_matrix"].values()) == 250  # both test shards scored
    digit = first_test_digit(boto3.client("s3"), pipeline.bucket, "runs/e2e-shards-csv/")
    assert digit is not None and digit[1] == int(make_digits(125, 100 + len("test"))[1][0] == 7)
    # The version it registered deploys again by ARN, scored on the same test shards.
    arn = (result.output or {})["model_package_arn"]
    again = pipeline.execute(
        {"model_package_arn": arn, "target_digit": 7, "endpoint": {"mode": "none"}},
        "e2e-shards-csv-again",
        timeout=300,
    )
    assert again.status == "SUCCEEDED", (again.error, again.cause)
    assert (again.output or {})["confusion_matrix"] == report["confusion_matrix"]


def test_a_bad_shard_fails_the_run_naming_it(pipeline: LocalPipeline, tmp_path: Path) -> None:
    source = write_set(tmp_path / "bad", "csv", train_shards=2, bad=True)
    result = pipeline.execute({"source": str(source), **FAST}, "e2e-shards-bad", timeout=300)
    assert result.status == "FAILED"
    assert fail_state(result) == "InvalidDataset"
    assert "validation/part-00000.csv" in (result.cause or "")
    assert "NaN" in (result.cause or "")
    assert "StartTuning" not in visited(result)
    with pytest.raises(boto3.client("s3").exceptions.NoSuchKey):
        stored(pipeline, "runs/e2e-shards-bad/data/manifest.json")


def test_fewer_train_objects_than_instances_fails_before_tuning(
    pipeline: LocalPipeline, tmp_path: Path
) -> None:
    source = write_set(tmp_path / "few", "npz", train_shards=2)
    payload = {"source": str(source), "training_instance_count": 3, **FAST}
    result = pipeline.execute(payload, "e2e-shards-few", timeout=300)
    assert fail_state(result) == "InvalidInput"
    assert result.error == "TooFewTrainObjectsError"
    assert "3 instances but only 2 train objects" in (result.cause or "")
    assert "StartTuning" not in visited(result)


def _csv(x: np.ndarray, y: np.ndarray) -> bytes:
    rows = [",".join([str(int(d)), *(f"{v:.3f}" for v in r)]) for d, r in zip(y, x, strict=True)]
    return ("\n".join(rows) + "\n").encode()


def test_a_map_of_150_shards_keeps_its_aggregated_result_small(
    pipeline: LocalPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On AWS the Map's aggregated child outputs must stay under 256 KB
    (``States.DataLimitExceeded``) even though ``ResultPath`` is null; each
    child ends with ``OutputPath: null``, so each contributes ``{}``. The S3
    console's zero-byte folder keys are listed too and skipped by the children."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        distributed_iteration_component as dic,
    )

    sizes: list[int] = []
    original = dic.DistributedIterationComponent._map_run

    def recording(self: Any, env: Any, *args: Any, **kwargs: Any) -> Any:
        out = original(self, env, *args, **kwargs)
        sizes.append(len(json.dumps(env.stack[-1], default=str)))
        return out

    monkeypatch.setattr(dic.DistributedIterationComponent, "_map_run", recording)
    s3 = boto3.client("s3")
    prefix = "sets/many/"
    x, y = make_digits(170, 7)
    plan = [("train", 0, slice(0, 12)), ("validation", 0, slice(12, 20))]
    # 150 children: without OutputPath null their inputs (about 1.9 KB each)
    # would collect past the 256 KB limit.
    plan += [("test", i, slice(20 + i, 21 + i)) for i in range(148)]
    for split, i, rows in plan:
        key = f"{prefix}{split}/part-{i:05d}.csv"
        s3.put_object(Bucket=pipeline.bucket, Key=key, Body=_csv(x[rows], y[rows]))
    for folder in ("", "train/", "test/"):  # what "Create folder" in the S3 console makes
        s3.put_object(Bucket=pipeline.bucket, Key=f"{prefix}{folder}", Body=b"")
    # Two instances for one train object: FinalizeDataset fails right after
    # checking every shard's receipt, so the run ends without tuning.
    payload = {"source": f"s3://{pipeline.bucket}/{prefix}", "training_instance_count": 2, **FAST}
    result = pipeline.execute(payload, "e2e-shards-150", timeout=300)
    assert result.error == "TooFewTrainObjectsError", (result.error, result.cause)
    assert "ShardConversionFailed" not in visited(result)
    assert sizes and max(sizes) < 4096, sizes  # 150 times "{}", not 150 child inputs
