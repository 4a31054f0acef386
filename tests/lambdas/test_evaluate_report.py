"""The Evaluate handler's report files on the Batch Transform path: the
trials it lists, the lineage it records and the metadata it adds to the
version this run registered (SageMaker through the Stubber, S3 in moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws
from pipeline_testlib import (
    BUCKET,
    IMAGE,
    LOCK_TABLE,
    REGION,
    ROLE,
    SALT,
    STACK_TAG,
    make_run,
    sagemaker_client,
    stubbed,
)

from lambdas import evaluate
from pipeline_core.config import DEFAULTS
from pipeline_core.recordio import encode_dense

RUN = make_run("exec-1", {"endpoint": {"mode": "none"}})
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mnist-ll-models/4"
EXECUTION_ARN = "arn:aws:states:us-east-1:123456789012:execution:pipeline:exec-1"


class _Number:
    """Matches a metadata value as the pattern allows it: digits and a dot."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.replace(".", "", 1).isdigit()


_ANY_NUMBER: Any = _Number()


class Context:
    function_name = "mnist-ll-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:mnist-ll-test"
    memory_limit_in_mb = 1024
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 600_000


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in {
        "PIPELINE_CONFIG": DEFAULTS.to_json(),
        "DATA_BUCKET": BUCKET,
        "SAGEMAKER_ROLE_ARN": ROLE,
        "LINEAR_LEARNER_IMAGE": IMAGE,
        "STACK_TAG": STACK_TAG,
        "DEPLOYMENT_SALT": SALT,
        "LOCK_TABLE": LOCK_TABLE,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_evaluate_writes_the_report_files_and_updates_the_registered_version(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(300) < 0.2).astype(np.float32)
    scores = np.clip(0.5 * y + rng.random(300) * 0.6, 0, 1).round(3)
    s3.put_object(
        Bucket=BUCKET,
        Key=f"{RUN.prefix}data/test/test.rec",
        Body=encode_dense(rng.random((300, 784), dtype=np.float32), y),
    )
    lines = [json.dumps({"score": float(s), "predicted_label": int(s >= 0.5)}) for s in scores]
    s3.put_object(
        Bucket=BUCKET, Key=f"{RUN.prefix}transform/test.rec.out", Body="\n".join(lines).encode()
    )
    sm = sagemaker_client()
    monkeypatch.setattr(evaluate, "_clients", lambda _s: (s3, None, None))
    monkeypatch.setattr(evaluate, "_sagemaker", lambda _s: sm)
    tuning = {
        "name": RUN.names.tuning_job,
        "best": {
            "training_job_name": f"{RUN.names.tuning_job}-001-aaaa",
            "objective_metric": "validation:binary_f_beta",
            "objective_value": 0.9,
            "hyperparameters": {"wd": "0.01"},
        },
    }
    event = {
        "run": RUN.to_dict(),
        "data": {
            "test_uri": RUN.s3_uri("data/test/"),
            "files": {"test": RUN.s3_uri("data/test/test.rec")},
            "source_sha256": "cd" * 32,
        },
        "deploy": {
            "mode": "none",
            "model_name": RUN.names.model,
            "transform_job_name": f"{RUN.names.tuning_job}-transform",
            "output_uri": RUN.s3_uri("transform/test.rec.out"),
        },
        "tuning": tuning,
        "registry": {"model_package_arn": PACKAGE, "source": "registered"},
        "execution_arn": EXECUTION_ARN,
    }
    with stubbed(sm) as stub:
        stub.add_response(
            "list_training_jobs_for_hyper_parameter_tuning_job",
            {
                "TrainingJobSummaries": [
                    {
                        "TrainingJobName": f"{RUN.names.tuning_job}-001-aaaa",
                        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/x",
                        "CreationTime": "2026-12-01T00:00:00Z",
                        "TrainingJobStatus": "Completed",
                        "TunedHyperParameters": {"wd": "0.01"},
                        "FinalHyperParameterTuningJobObjectiveMetric": {
                            "MetricName": "validation:binary_f_beta",
                            "Value": 0.9,
                        },
                    }
                ]
            },
            expected_params={"HyperParameterTuningJobName": RUN.names.tuning_job},
        )
        stub.add_response(
            "update_model_package",
            {"ModelPackageArn": PACKAGE},
            expected_params={
                "ModelPackageArn": PACKAGE,
                "CustomerMetadataProperties": {
                    "test_auc": _ANY_NUMBER,
                    "test_pr_auc": _ANY_NUMBER,
                    "test_f1": _ANY_NUMBER,
                },
            },
        )
        out = evaluate.handler(event, Context())
    assert out["registry_metadata"] == "updated"
    body = s3.get_object(Bucket=BUCKET, Key=f"{RUN.prefix}report.json")["Body"].read()
    report = json.loads(body)
    assert report["threshold"] >= 0.5 and report["threshold_basis"]["highest_negative_score"] < 0.5
    lineage = report["lineage"]
    assert lineage["execution_arn"] == EXECUTION_ARN
    assert lineage["dataset"]["sha256"] == "cd" * 32
    assert lineage["transform_job"] == f"{RUN.names.tuning_job}-transform"
    assert lineage["best_training_job"]["hyperparameters"]["wd"] == "0.01"
    assert lineage["best_training_job"]["hyperparameters"]["predictor_type"] == "binary_classifier"
    assert [t["objective"] for t in report["tuning_trials"]["trials"]] == [0.9]
    csv = s3.get_object(Bucket=BUCKET, Key=f"{RUN.prefix}predictions.csv")["Body"].read()
    assert len(csv.decode().splitlines()) == 301
    html = s3.get_object(Bucket=BUCKET, Key=f"{RUN.prefix}report.html")
    assert html["ContentType"].startswith("text/html")
    assert out["report_html_uri"] == RUN.s3_uri("report.html")
