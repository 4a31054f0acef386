"""The local SageMaker answers where it used to differ from AWS: training jobs of
a tuning job sorted by their objective, a tuned job described as a standalone
one, DeleteTags, and AWS's wording for missing jobs and customer errors.
The emulator alone (in-process moto for S3 and logs), with a fake tuner."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local.emulator.errors import ServiceError
from local.emulator.service import LocalSageMaker
from local.emulator.validation import response_errors
from local.emulator.wire import wire_value
from pipeline_core.awserrors import is_not_found
from pipeline_core.recordio import encode_dense

IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
BUCKET = "answers"
ARN = "arn:aws:sagemaker:us-east-1:123456789012"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
#: name -> objective value (None: the job failed and returned no objective)
OBJECTIVES: dict[str, float | None] = {
    "tj-001-aaa": 0.5,
    "tj-002-bbb": 0.9,
    "tj-003-ccc": None,
    "tj-004-ddd": 0.7,
}


class FakeTuning:
    """A tuning job that has ended: three jobs with an objective, one failed."""

    def __init__(self, request: dict[str, Any], failed: bool) -> None:
        self.request = request
        self.failed = failed

    def run(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def _summary(self, index: int, name: str, value: float | None) -> dict[str, Any]:
        created = T0 + timedelta(minutes=index)
        out: dict[str, Any] = {
            "TrainingJobName": name,
            "TrainingJobArn": f"{ARN}:training-job/{name}",
            "CreationTime": created,
            "TrainingStartTime": created + timedelta(seconds=5),
            "TrainingEndTime": created + timedelta(seconds=65),
            "TrainingJobStatus": "Completed" if value is not None else "Failed",
            "TunedHyperParameters": {"wd": str(index)},
            "ObjectiveStatus": "Succeeded" if value is not None else "Failed",
        }
        if value is None:
            out["FailureReason"] = "DataChannelError: the train channel has no records"
        else:
            out["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": "Maximize",
                "MetricName": "validation:binary_f_beta",
                "Value": value,
            }
        return out

    def training_jobs(self) -> list[dict[str, Any]]:
        return [self._summary(i, n, v) for i, (n, v) in enumerate(OBJECTIVES.items())]

    def training_job(self, name: str) -> dict[str, Any]:
        (summary,) = [s for s in self.training_jobs() if s["TrainingJobName"] == name]
        metric = summary.get("FinalHyperParameterTuningJobObjectiveMetric")
        if metric:
            summary["FinalMetricDataList"] = [
                {"MetricName": metric["MetricName"], "Value": metric["Value"]}
            ]
        return summary

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"HyperParameterTuningJobStatus": "Completed"}
        if self.failed:
            out["HyperParameterTuningJobStatus"] = "Failed"
            out["FailureReason"] = (
                "All training jobs failed. Last: DataChannelError: the train channel has no records"
            )
        return out


class FakeBackend:
    def start_tuning(self, *, request: dict[str, Any], **_: Any) -> FakeTuning:
        return FakeTuning(request, failed=request["HyperParameterTuningJobName"].endswith("bad"))

    def load_endpoint_model(
        self, name: str, artifact: Path, max_body_bytes: int | None = None
    ) -> None:
        return None

    def unload_endpoint_model(self, name: str) -> None:
        return None

    def runtime_app(self) -> Any:
        return None


@pytest.fixture
def sm(tmp_path: Path) -> Iterator[LocalSageMaker]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        x = np.random.default_rng(1).normal(size=(120, 4)).astype(np.float32)
        y = (x.sum(axis=1) > 0).astype(np.float32)
        s3.put_object(Bucket=BUCKET, Key="train/data", Body=encode_dense(x, y))
        service = LocalSageMaker(backend=FakeBackend(), s3_client=s3, work_dir=tmp_path)  # type: ignore[arg-type]
        service.logs = boto3.client("logs", region_name="us-east-1")
        yield service
        service.shutdown()


def checked(sm: LocalSageMaker, operation: str, **params: Any) -> dict[str, Any]:
    """One operation, its answer checked against botocore's output shape."""
    result = sm.dispatch(operation, params)
    assert response_errors(operation, json.loads(json.dumps(result, default=wire_value))) == []
    return result


def error_of(sm: LocalSageMaker, operation: str, **params: Any) -> tuple[str, str]:
    with pytest.raises(ServiceError) as info:
        sm.dispatch(operation, params)
    return info.value.code, info.value.message


def _channel() -> dict[str, Any]:
    return {
        "ChannelName": "train",
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/train/data"}
        },
    }


DEFINITION: dict[str, Any] = {
    "StaticHyperParameters": {"feature_dim": "4", "predictor_type": "binary_classifier"},
    "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
    "RoleArn": ROLE,
    "InputDataConfig": [_channel()],
    "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
    "ResourceConfig": {"InstanceType": "ml.c4.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1},
    "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    "EnableNetworkIsolation": True,
    "EnableInterContainerTrafficEncryption": True,
}


def _tune(sm: LocalSageMaker, name: str) -> dict[str, Any]:
    checked(
        sm,
        "CreateHyperParameterTuningJob",
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {
                "Type": "Maximize",
                "MetricName": "validation:binary_f_beta",
            },
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 1},
            "ParameterRanges": {
                "ContinuousParameterRanges": [{"Name": "wd", "MinValue": "1e-6", "MaxValue": "1"}]
            },
        },
        TrainingJobDefinition=DEFINITION,
    )
    sm.wait_idle(10)
    return checked(sm, "DescribeHyperParameterTuningJob", HyperParameterTuningJobName=name)


def _listed(sm: LocalSageMaker, **params: Any) -> list[str]:
    names: list[str] = []
    token: str | None = None
    while True:
        page = checked(
            sm,
            "ListTrainingJobsForHyperParameterTuningJob",
            HyperParameterTuningJobName="tune-sort",
            **params,
            **({"NextToken": token} if token else {}),
        )
        names += [s["TrainingJobName"] for s in page["TrainingJobSummaries"]]
        token = page.get("NextToken")
        if not token:
            return names


def test_training_jobs_of_a_tuning_job_sort_by_their_final_objective_value(
    sm: LocalSageMaker,
) -> None:
    assert _tune(sm, "tune-sort")["HyperParameterTuningJobStatus"] == "Completed"
    # botocore: the default order is Ascending; jobs without an objective are not listed.
    by_value = _listed(sm, SortBy="FinalObjectiveMetricValue")
    assert by_value == ["tj-001-aaa", "tj-004-ddd", "tj-002-bbb"]
    best_first = _listed(
        sm, SortBy="FinalObjectiveMetricValue", SortOrder="Descending", MaxResults=2
    )
    assert best_first == ["tj-002-bbb", "tj-004-ddd", "tj-001-aaa"]
    # the default SortBy is Name, Ascending, and lists every job
    assert _listed(sm) == sorted(OBJECTIVES)


def test_a_tuned_training_job_is_described_as_a_standalone_one(sm: LocalSageMaker) -> None:
    _tune(sm, "tune-describe")
    tuned = checked(sm, "DescribeTrainingJob", TrainingJobName="tj-002-bbb")
    standalone_request = {
        "TrainingJobName": "standalone",
        "HyperParameters": DEFINITION["StaticHyperParameters"],
        **{k: v for k, v in DEFINITION.items() if k != "StaticHyperParameters"},
    }
    checked(sm, "CreateTrainingJob", **standalone_request)
    deadline = time.monotonic() + 60
    while (standalone := checked(sm, "DescribeTrainingJob", TrainingJobName="standalone"))[
        "TrainingJobStatus"
    ] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert standalone["TrainingJobStatus"] == "Completed", standalone.get("FailureReason")
    # Every member a standalone job answers, and the tuning job's ARN besides.
    assert set(tuned) - {"TuningJobArn"} == set(standalone)
    for flag in ("EnableNetworkIsolation", "EnableInterContainerTrafficEncryption"):
        assert tuned[flag] is True and standalone[flag] is True
    assert tuned["EnableManagedSpotTraining"] is False
    statuses = [t["Status"] for t in tuned["SecondaryStatusTransitions"]]
    assert statuses == ["Starting", "Training", "Completed"]
    assert tuned["SecondaryStatusTransitions"][1]["StartTime"] == tuned["TrainingStartTime"]
    failed = checked(sm, "DescribeTrainingJob", TrainingJobName="tj-003-ccc")
    assert failed["SecondaryStatusTransitions"][-1]["Status"] == "Failed"
    assert failed["FailureReason"].startswith("ClientError: ")


def test_delete_tags_removes_keys_and_refuses_unknown_resources_and_versions(
    sm: LocalSageMaker,
) -> None:
    model = checked(
        sm,
        "CreateModel",
        ModelName="m",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": IMAGE},
        Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}],
    )["ModelArn"]
    assert checked(sm, "DeleteTags", ResourceArn=model, TagKeys=["a", "zz"]) == {}
    assert checked(sm, "ListTags", ResourceArn=model)["Tags"] == [{"Key": "b", "Value": "2"}]
    code, message = error_of(sm, "DeleteTags", ResourceArn=f"{ARN}:model/nope", TagKeys=["a"])
    assert code == "ValidationException" and "model/nope" in message
    group = checked(
        sm,
        "CreateModelPackageGroup",
        ModelPackageGroupName="g",
        Tags=[{"Key": "team", "Value": "ml"}],
    )["ModelPackageGroupArn"]
    version = checked(
        sm, "CreateModelPackage", ModelPackageGroupName="g", ModelApprovalStatus="Approved"
    )["ModelPackageArn"]
    # a version has its group's tags and cannot have its own: neither added nor deleted
    for operation, params in (
        ("DeleteTags", {"TagKeys": ["team"]}),
        ("AddTags", {"Tags": [{"Key": "own", "Value": "x"}]}),
    ):
        code, message = error_of(sm, operation, ResourceArn=version, **params)
        assert code == "ValidationException" and "group" in message
    assert checked(sm, "ListTags", ResourceArn=version)["Tags"] == [{"Key": "team", "Value": "ml"}]
    checked(sm, "DeleteTags", ResourceArn=group, TagKeys=["team"])
    assert checked(sm, "ListTags", ResourceArn=version)["Tags"] == []


def test_missing_jobs_and_customer_errors_are_worded_as_aws_words_them(
    sm: LocalSageMaker,
) -> None:
    for operation in ("DescribeTrainingJob", "StopTrainingJob"):
        assert error_of(sm, operation, TrainingJobName="nope") == (
            "ValidationException",
            "Requested resource not found.",
        )
    assert error_of(sm, "DescribeHyperParameterTuningJob", HyperParameterTuningJobName="nope") == (
        "ResourceNotFound",
        "Amazon SageMaker can't find a tuning job called nope. Type another name.",
    )
    # the pipeline reads both as "not found"
    for code, message in (
        ("ValidationException", "Requested resource not found."),
        ("ResourceNotFound", "Amazon SageMaker can't find a tuning job called x."),
    ):
        error = ClientError({"Error": {"Code": code, "Message": message}}, "Describe")
        assert is_not_found(error)
    # a customer's error in the last job: the tuning job's reason words it as a ClientError
    failed = _tune(sm, "tune-bad")
    assert failed["HyperParameterTuningJobStatus"] == "Failed"
    assert failed["FailureReason"].endswith("Last: ClientError: the train channel has no records")
