"""The local SageMaker's Search (local/emulator/search.py): training jobs (standalone
and tuned), tuning jobs, the model registry and endpoints, every filter
operator, sub-expressions, nested filters, sorting and paging, and the
ValidationExceptions of what it cannot answer. Every answer is checked
against botocore's output shape. No training runs: tuning jobs come from a
fake backend, standalone jobs fail at once on an empty channel."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.emulator.errors import ServiceError
from local.emulator.service import LocalSageMaker
from pipeline_core.names import STACK_TAG_KEY
from tests.local.test_sagemaker_shapes import (
    BUCKET,
    IMAGE,
    ROLE,
    FakeBackend,
    _channel,
    _minimal_job,
    checked,
)

STACK_TAG = STACK_TAG_KEY
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
#: The fake tuning job's training jobs: name suffix, wd, objective.
TUNED = (("001", "0.001", 0.90), ("002", "0.5", 0.95), ("003", "0.02", 0.80))


class FakeTuning:
    """A tuning job that has already run: three Completed training jobs."""

    def __init__(self, name: str) -> None:
        self.name = name

    def run(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {
            "HyperParameterTuningJobStatus": "Completed",
            "TrainingJobStatusCounters": {
                "Completed": len(TUNED),
                "InProgress": 0,
                "RetryableError": 0,
                "NonRetryableError": 0,
                "Stopped": 0,
            },
            "ObjectiveStatusCounters": {"Succeeded": len(TUNED), "Pending": 0, "Failed": 0},
        }

    def training_jobs(self) -> list[dict[str, Any]]:
        out = []
        for i, (suffix, wd, objective) in enumerate(TUNED):
            start = T0 + timedelta(minutes=i)
            out.append(
                {
                    "TrainingJobName": f"{self.name}-{suffix}",
                    "TrainingJobStatus": "Completed",
                    "CreationTime": start,
                    "TrainingStartTime": start,
                    "TrainingEndTime": start + timedelta(seconds=30),
                    "TunedHyperParameters": {"wd": wd},
                    "FinalMetricDataList": [
                        {
                            "MetricName": "validation:binary_f_beta",
                            "Value": objective,
                            "Timestamp": start,
                        }
                    ],
                }
            )
        return out

    def training_job(self, name: str) -> dict[str, Any]:
        for summary in self.training_jobs():
            if summary["TrainingJobName"] == name:
                return summary
        raise KeyError(name)


class TuningBackend(FakeBackend):
    def start_tuning(self, **_: Any) -> FakeTuning:
        return FakeTuning("ll-tune")


@pytest.fixture
def sm(tmp_path: Path) -> Iterator[LocalSageMaker]:
    """Two failed standalone jobs, a tuning job with three completed ones."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="t/train/data", Body=b"x")
        service = LocalSageMaker(backend=TuningBackend(), s3_client=s3, work_dir=tmp_path)  # type: ignore[arg-type]
        for name, wd, stage in (("ll-alone-a", "0.2", "prod"), ("ll-alone-b", "0.003", None)):
            job = _minimal_job(name)
            # Its channel holds no recordIO-protobuf: it fails at once (an empty
            # prefix would be refused at the call).
            job["InputDataConfig"] = [_channel("train", f"s3://{BUCKET}/t/train/")]
            job["HyperParameters"] = {"feature_dim": "6", "wd": wd}
            if stage:
                job["Tags"] = [{"Key": STACK_TAG, "Value": stage}]
            checked(service, "CreateTrainingJob", **job)
        checked(
            service,
            "CreateHyperParameterTuningJob",
            HyperParameterTuningJobName="ll-tune",
            HyperParameterTuningJobConfig={
                "Strategy": "Random",
                "HyperParameterTuningJobObjective": {
                    "Type": "Maximize",
                    "MetricName": "validation:binary_f_beta",
                },
                "ResourceLimits": {"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 1},
                "ParameterRanges": {
                    "ContinuousParameterRanges": [
                        {"Name": "wd", "MinValue": "1e-6", "MaxValue": "1"}
                    ]
                },
            },
            TrainingJobDefinition={
                "StaticHyperParameters": {"feature_dim": "6", "mini_batch_size": "100"},
                "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
                "RoleArn": ROLE,
                "InputDataConfig": [
                    _channel("train", f"s3://{BUCKET}/t/train/"),
                    _channel("validation", f"s3://{BUCKET}/t/train/"),
                ],
                "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/tuning"},
                "ResourceConfig": {
                    "InstanceType": "ml.c4.xlarge",
                    "InstanceCount": 1,
                    "VolumeSizeInGB": 1,
                },
                "StoppingCondition": {"MaxRuntimeInSeconds": 600},
            },
            Tags=[{"Key": STACK_TAG, "Value": "dev"}],
        )
        service.wait_idle(30)
        yield service
        service.shutdown()


def names(sm: LocalSageMaker, *filters: dict[str, Any], **params: Any) -> list[str]:
    """Names of the training jobs one Search finds, in its order."""
    if filters:
        params["SearchExpression"] = {"Filters": list(filters)}
    result = checked(sm, "Search", Resource="TrainingJob", **params)
    return [r["TrainingJob"]["TrainingJobName"] for r in result["Results"]]


def where(name: str, operator: str | None, value: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"Name": name}
    if operator:
        out["Operator"] = operator
    if value is not None:
        out["Value"] = value
    return out


TUNED_NAMES = ["ll-tune-001", "ll-tune-002", "ll-tune-003"]
ALL = ["ll-alone-a", "ll-alone-b", *TUNED_NAMES]


def test_training_job_records_are_described_jobs_with_their_tags(sm: LocalSageMaker) -> None:
    result = checked(sm, "Search", Resource="TrainingJob")
    assert result["TotalHits"] == {"Value": 5, "Relation": "EqualTo"}
    records = {r["TrainingJob"]["TrainingJobName"]: r["TrainingJob"] for r in result["Results"]}
    assert sorted(records) == ALL
    alone = records["ll-alone-a"]
    assert alone == {
        **sm.dispatch("DescribeTrainingJob", {"TrainingJobName": "ll-alone-a"}),
        "Tags": [{"Key": STACK_TAG, "Value": "prod"}],
    }
    assert alone["TrainingJobStatus"] == "Failed"
    tuned = records["ll-tune-002"]
    # A tuning job's tags are on the training jobs it launched.
    assert tuned == {
        **sm.dispatch("DescribeTrainingJob", {"TrainingJobName": "ll-tune-002"}),
        "Tags": [{"Key": STACK_TAG, "Value": "dev"}],
    }
    hyperparameters = tuned["HyperParameters"]
    assert (hyperparameters["wd"], hyperparameters["mini_batch_size"]) == ("0.5", "100")
    assert tuned["TuningJobArn"].endswith(":hyper-parameter-tuning-job/ll-tune")
    assert records["ll-alone-b"]["Tags"] == []


def test_each_filter_operator(sm: LocalSageMaker) -> None:
    def found(*filters: dict[str, Any]) -> list[str]:
        return sorted(names(sm, *filters))

    assert found(where("TrainingJobName", "Equals", "ll-tune-002")) == ["ll-tune-002"]
    assert found(where("TrainingJobName", None, "ll-alone-b")) == ["ll-alone-b"]  # Equals
    assert found(where("TrainingJobStatus", "NotEquals", "Completed")) == [
        "ll-alone-a",
        "ll-alone-b",
    ]
    assert found(where("TrainingJobName", "Contains", "alone")) == ["ll-alone-a", "ll-alone-b"]
    assert found(where("TrainingJobStatus", "In", "Failed, Stopped")) == [
        "ll-alone-a",
        "ll-alone-b",
    ]
    # Hyperparameters compare as decimals, metrics and times in order.
    assert found(where("HyperParameters.wd", "GreaterThan", "0.1")) == ["ll-alone-a", "ll-tune-002"]
    assert found(where("HyperParameters.wd", "LessThan", "0.01")) == ["ll-alone-b", "ll-tune-001"]
    # ... and as integers when Value is one (AWS's documented rule): 0.5 -> 0
    assert found(where("HyperParameters.wd", "GreaterThan", "0")) == []
    assert found(where("HyperParameters.wd", "LessThanOrEqualTo", "0")) == sorted(ALL)
    assert found(where("Metrics.validation:binary_f_beta", "GreaterThanOrEqualTo", "0.9")) == [
        "ll-tune-001",
        "ll-tune-002",
    ]
    assert found(where("CreationTime", "LessThanOrEqualTo", "2024-05-01T12:01:00")) == [
        "ll-tune-001",
        "ll-tune-002",
    ]
    assert found(where("TrainingEndTime", "Equals", "2024-05-01T12:02:30Z")) == ["ll-tune-003"]
    assert found(where("TuningJobArn", "Exists")) == TUNED_NAMES
    assert found(where("TuningJobArn", "NotExists")) == ["ll-alone-a", "ll-alone-b"]
    assert found(where(f"Tags.{STACK_TAG}", "Equals", "dev")) == TUNED_NAMES
    assert found(where(f"Tags.{STACK_TAG}", "NotEquals", "dev")) == ["ll-alone-a", "ll-alone-b"]
    # A list property matches when one element does; nested paths reach into structures.
    assert found(where("InputDataConfig.ChannelName", "Equals", "validation")) == TUNED_NAMES
    assert found(where("ResourceConfig.InstanceType", "Equals", "ml.c4.xlarge")) == sorted(ALL)
    # A tuned job is described as a standalone one (DescribeTrainingJob answers the flag).
    assert found(where("EnableManagedSpotTraining", "Equals", "false")) == sorted(ALL)
    # Filters together: And.
    assert found(
        where("TrainingJobStatus", "Equals", "Completed"),
        where("HyperParameters.wd", "GreaterThan", "0.01"),
    ) == ["ll-tune-002", "ll-tune-003"]


def test_sub_expressions_and_nested_filters(sm: LocalSageMaker) -> None:
    either = {
        "Operator": "Or",
        "SubExpressions": [
            {"Filters": [where("TrainingJobName", "Equals", "ll-alone-b")]},
            {
                "Filters": [
                    where("TuningJobArn", "Exists"),
                    where("Metrics.validation:binary_f_beta", "LessThan", "0.85"),
                ]
            },
        ],
    }
    assert sorted(names(sm, SearchExpression=either)) == ["ll-alone-b", "ll-tune-003"]
    nested = {
        "NestedFilters": [
            {
                "NestedPropertyName": "InputDataConfig",
                "Filters": [
                    where("InputDataConfig.ChannelName", "Equals", "validation"),
                    where("InputDataConfig.DataSource.S3DataSource.S3Uri", "Contains", "/t/"),
                ],
            }
        ]
    }
    assert sorted(names(sm, SearchExpression=nested)) == TUNED_NAMES
    # One channel must satisfy both: no "validation" channel reads from "missing/".
    nested["NestedFilters"][0]["Filters"][1]["Value"] = "missing/"
    assert names(sm, SearchExpression=nested) == []


def test_sorting_and_paging(sm: LocalSageMaker) -> None:
    # Default: LastModifiedTime, newest first (the standalone jobs ended just now).
    assert names(sm)[:2] in (["ll-alone-a", "ll-alone-b"], ["ll-alone-b", "ll-alone-a"])
    assert names(sm)[2:] == ["ll-tune-003", "ll-tune-002", "ll-tune-001"]
    by_metric = names(sm, SortBy="Metrics.validation:binary_f_beta")
    assert by_metric[:3] == ["ll-tune-002", "ll-tune-001", "ll-tune-003"]  # no metric: last
    by_wd = names(sm, SortBy="HyperParameters.wd", SortOrder="Ascending")
    assert by_wd == ["ll-tune-001", "ll-alone-b", "ll-tune-003", "ll-alone-a", "ll-tune-002"]
    seen: list[str] = []
    token = None
    while True:
        params: dict[str, Any] = {
            "Resource": "TrainingJob",
            "SortBy": "TrainingJobName",
            "SortOrder": "Ascending",
            "MaxResults": 2,
        }
        if token:
            params["NextToken"] = token
        page = checked(sm, "Search", **params)
        assert len(page["Results"]) <= 2 and page["TotalHits"]["Value"] == 5
        seen += [r["TrainingJob"]["TrainingJobName"] for r in page["Results"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == ALL


def test_registry_tuning_jobs_and_endpoints(sm: LocalSageMaker) -> None:
    for group in ("mnist-ll-models", "other-models"):
        checked(sm, "CreateModelPackageGroup", ModelPackageGroupName=group)
    inference = {
        "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/m/model.tar.gz"}],
        "SupportedContentTypes": ["text/csv"],
        "SupportedResponseMIMETypes": ["application/json"],
    }
    for status in ("Approved", "PendingManualApproval"):
        checked(
            sm,
            "CreateModelPackage",
            ModelPackageGroupName="mnist-ll-models",
            InferenceSpecification=inference,
            ModelApprovalStatus=status,
        )
    # What the SDK's register() asks before it creates a group.
    query = {"Filters": [where("ModelPackageGroupName", "Equals", "mnist-ll-models")]}
    groups = checked(sm, "Search", Resource="ModelPackageGroup", SearchExpression=query)
    (group,) = groups["Results"]
    assert group["ModelPackageGroup"]["ModelPackageGroupArn"].endswith(
        ":model-package-group/mnist-ll-models"
    )
    approved = checked(
        sm,
        "Search",
        Resource="ModelPackage",
        SearchExpression={
            "Filters": [
                where("ModelPackageGroupName", "Equals", "mnist-ll-models"),
                where("ModelApprovalStatus", "Equals", "Approved"),
            ]
        },
    )["Results"]
    assert [r["ModelPackage"]["ModelPackageVersion"] for r in approved] == [1]
    # As DescribeModelPackage answers (no empty CustomerMetadataProperties: its shape wants one).
    arn = approved[0]["ModelPackage"]["ModelPackageArn"]
    described = checked(sm, "DescribeModelPackage", ModelPackageName=arn)
    assert approved[0]["ModelPackage"] == {**described, "Tags": []}
    latest = checked(
        sm, "Search", Resource="ModelPackage", SortBy="ModelPackageVersion", MaxResults=1
    )
    assert latest["Results"][0]["ModelPackage"]["ModelPackageVersion"] == 2
    assert "NextToken" in latest

    tuning = checked(
        sm,
        "Search",
        Resource="HyperParameterTuningJob",
        SearchExpression={"Filters": [where(f"Tags.{STACK_TAG}", "Equals", "dev")]},
    )["Results"]
    (entity,) = [r["HyperParameterTuningJob"] for r in tuning]
    assert entity["HyperParameterTuningJobName"] == "ll-tune"
    assert entity["HyperParameterTuningJobStatus"] == "Completed"

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz"):
        pass
    sm.s3.put_object(Bucket=BUCKET, Key="m/model.tar.gz", Body=buf.getvalue())
    checked(
        sm,
        "CreateModel",
        ModelName="mnist-ll-m",
        ExecutionRoleArn=ROLE,
        PrimaryContainer=inference["Containers"][0],
    )
    checked(
        sm,
        "CreateEndpointConfig",
        EndpointConfigName="mnist-ll-cfg",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "mnist-ll-m",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m4.xlarge",
            }
        ],
    )
    checked(
        sm,
        "CreateEndpoint",
        EndpointName="mnist-ll-ep",
        EndpointConfigName="mnist-ll-cfg",
        Tags=[{"Key": STACK_TAG, "Value": "dev"}],
    )
    sm.wait_idle(10)
    endpoints = checked(
        sm,
        "Search",
        Resource="Endpoint",
        SearchExpression={"Filters": [where("EndpointStatus", "Equals", "InService")]},
    )["Results"]
    assert [r["Endpoint"]["EndpointName"] for r in endpoints] == ["mnist-ll-ep"]
    assert endpoints[0]["Endpoint"]["Tags"] == [{"Key": STACK_TAG, "Value": "dev"}]


def test_visibility_conditions_and_cross_account(sm: LocalSageMaker) -> None:
    visible = names(sm, VisibilityConditions=[{"Key": f"Tags.{STACK_TAG}", "Value": "dev"}])
    # Tagged "prod": hidden; untagged: shown.
    assert sorted(visible) == ["ll-alone-b", *TUNED_NAMES]
    assert names(sm, CrossAccountFilterOption="CrossAccount") == []


def _error(sm: LocalSageMaker, **params: Any) -> str:
    with pytest.raises(ServiceError) as info:
        sm.dispatch("Search", params)
    assert info.value.code == "ValidationException", info.value.message
    return info.value.message


def test_what_it_cannot_answer_is_a_validation_exception(sm: LocalSageMaker) -> None:
    def bad(*filters: dict[str, Any], **params: Any) -> str:
        if filters:
            params["SearchExpression"] = {"Filters": list(filters)}
        return _error(sm, Resource=params.pop("Resource", "TrainingJob"), **params)

    assert "enum value set" in bad(where("TrainingJobName", "Like", "ll"))  # the request model
    sm.validate_requests = False  # ... and search.py itself
    assert "Unsupported operator 'Like'" in bad(where("TrainingJobName", "Like", "ll"))
    sm.validate_requests = True
    assert "Search on Experiment is not supported" in bad(Resource="Experiment")
    assert "Unknown property name: TrainingJobNme" in bad(where("TrainingJobNme", "Equals", "x"))
    assert "not supported for text property" in bad(where("TrainingJobName", "GreaterThan", "a"))
    assert "only supported for text properties" in bad(
        where("TrainingTimeInSeconds", "Contains", "1")
    )
    assert "must be a number" in bad(where("TrainingTimeInSeconds", "GreaterThan", "many"))
    assert "ISO 8601" in bad(where("CreationTime", "GreaterThan", "yesterday"))
    assert "needs a Value" in bad(where("TrainingJobName", "Equals"))
    assert "not a value property" in bad(where("ResourceConfig", "Equals", "x"))
    assert "usage limit of 1 exceeded" in bad(
        where("TrainingJobName", "Contains", "ll"), where("RoleArn", "Contains", "role")
    )
    assert "at least one of Filters" in bad(SearchExpression={})
    assert "at most 50" in bad(
        SearchExpression={
            "SubExpressions": [
                {"Filters": [where("TrainingJobName", "Equals", str(i)) for i in range(20)]}
                for _ in range(3)
            ]
        }
    )
    assert "must name a property of InputDataConfig" in bad(
        SearchExpression={
            "NestedFilters": [
                {"NestedPropertyName": "InputDataConfig", "Filters": [where("RoleArn", "Exists")]}
            ]
        }
    )
    assert "Unknown property name" in bad(SortBy="Nope")
    assert "Invalid pagination token" in bad(NextToken="not-a-token")
