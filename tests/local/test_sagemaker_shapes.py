"""The local SageMaker answers as AWS shapes it: standalone training jobs
(prefix channels naming one object, CSV and test channels, logs), List paging
and filters, DescribeEndpoint's ProductionVariants, UpdateEndpoint rules."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws

from local.emulator.errors import ServiceError
from local.emulator.service import LocalSageMaker
from local.emulator.validation import response_errors
from pipeline_core.recordio import encode_dense
from training.metric_definitions import parse_metrics
from training.model import LinearModel
from training.serving import SERVERLESS_MAX_BODY_BYTES

IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
BUCKET = "shapes"


class FakeBackend:
    def __init__(self) -> None:
        self.loaded: dict[str, Path] = {}
        self.limits: dict[str, int | None] = {}

    def load_endpoint_model(
        self, name: str, artifact: Path, max_body_bytes: int | None = None
    ) -> None:
        self.loaded[name] = artifact
        self.limits[name] = max_body_bytes

    def unload_endpoint_model(self, name: str) -> None:
        self.loaded.pop(name, None)

    def runtime_app(self) -> Any:
        return None


def checked(sm: LocalSageMaker, operation: str, **params: Any) -> dict[str, Any]:
    """Call one operation and check its answer against botocore's output shape."""
    import json

    from local.emulator.wire import wire_value as _wire_value

    result = sm.dispatch(operation, params)
    assert response_errors(operation, json.loads(json.dumps(result, default=_wire_value))) == []
    return result


@pytest.fixture
def sm(tmp_path: Path) -> Iterator[LocalSageMaker]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        service = LocalSageMaker(backend=FakeBackend(), s3_client=s3, work_dir=tmp_path)  # type: ignore[arg-type]
        service.logs = boto3.client("logs", region_name="us-east-1")
        service.cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        yield service
        service.shutdown()


def _data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6)).astype(np.float32)
    y = (x @ np.arange(1, 7, dtype=np.float32) > 0).astype(np.float32)
    return x, y


def _channel(name: str, uri: str, content_type: str | None = None) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "ChannelName": name,
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
    }
    if content_type:
        channel["ContentType"] = content_type
    return channel


def _wait(sm: LocalSageMaker, name: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = checked(sm, "DescribeTrainingJob", TrainingJobName=name)
        if described["TrainingJobStatus"] != "InProgress":
            return described
        assert time.monotonic() < deadline, described
        time.sleep(0.1)


def test_standalone_training_job_reads_prefixes_naming_one_object_csv_and_test(
    sm: LocalSageMaker,
) -> None:
    s3 = sm.s3
    x, y = _data(400, 1)
    # The tutorial's layout: the channel URI names one object, not a folder.
    s3.put_object(Bucket=BUCKET, Key="p/train/recordio-pb-data", Body=encode_dense(x, y))
    vx, vy = _data(200, 2)
    csv = "\n".join(",".join(map(str, [label, *row])) for label, row in zip(vy, vx, strict=True))
    s3.put_object(Bucket=BUCKET, Key="p/validation/part.csv", Body=csv.encode())
    tx, ty = _data(200, 3)
    s3.put_object(Bucket=BUCKET, Key="p/test/recordio-pb-data", Body=encode_dense(tx, ty))
    checked(
        sm,
        "CreateTrainingJob",
        TrainingJobName="ll-standalone-1",
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        RoleArn=ROLE,
        HyperParameters={
            "feature_dim": "6",
            "predictor_type": "binary_classifier",
            "mini_batch_size": "50",
            "epochs": "3",
        },
        InputDataConfig=[
            _channel("train", f"s3://{BUCKET}/p/train/recordio-pb-data"),
            _channel("validation", f"s3://{BUCKET}/p/validation/", "text/csv"),
            _channel("test", f"s3://{BUCKET}/p/test/recordio-pb-data"),
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/out"},
        ResourceConfig={"InstanceType": "ml.c4.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
    described = _wait(sm, "ll-standalone-1")
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    artifact = described["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{BUCKET}/out/ll-standalone-1/output/model.tar.gz"
    body = s3.get_object(Bucket=BUCKET, Key="out/ll-standalone-1/output/model.tar.gz")["Body"]
    assert tarfile.open(fileobj=io.BytesIO(body.read())).getnames()
    metrics = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    for channel in ("validation", "test"):
        assert 0.8 < metrics[f"{channel}:binary_classification_accuracy"] <= 1.0
    assert "train:objective_loss" in metrics
    assert described["OutputDataConfig"]["KmsKeyId"] == ""
    statuses = [t["Status"] for t in described["SecondaryStatusTransitions"]]
    assert statuses[0] == "Starting" and statuses[-1] == "Completed"
    # Logs as SageMaker writes them, parsing with the algorithm's regexes.
    streams = sm.logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix="ll-standalone-1/"
    )["logStreams"]
    assert [s["logStreamName"].split("/")[1].split("-")[0] for s in streams] == ["algo"]
    events = sm.logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=streams[0]["logStreamName"]
    )["events"]
    parsed = parse_metrics([e["message"] for e in events])
    assert parsed["test:binary_classification_accuracy"] == pytest.approx(
        metrics["test:binary_classification_accuracy"]
    )
    # As SageMaker: the algorithm's MetricDefinitions are listed, and what they
    # match in the log is in CloudWatch metrics (what TrainingJobAnalytics reads).
    definitions = described["AlgorithmSpecification"]["MetricDefinitions"]
    assert {"train:objective_loss", "test:binary_classification_accuracy"} <= {
        d["Name"] for d in definitions
    }
    stats = sm.cloudwatch.get_metric_statistics(
        Namespace="/aws/sagemaker/TrainingJobs",
        MetricName="test:binary_classification_accuracy",
        Dimensions=[{"Name": "TrainingJobName", "Value": "ll-standalone-1"}],
        StartTime=described["TrainingStartTime"] - timedelta(minutes=1),
        EndTime=described["TrainingEndTime"] + timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert stats and max(d["Maximum"] for d in stats) == pytest.approx(
        metrics["test:binary_classification_accuracy"]
    )
    listed = checked(sm, "ListTrainingJobs", StatusEquals="Completed")["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in listed] == ["ll-standalone-1"]
    assert checked(sm, "ListTrainingJobs", StatusEquals="Failed")["TrainingJobSummaries"] == []
    with pytest.raises(ServiceError):
        sm.dispatch("CreateTrainingJob", {**_minimal_job("ll-standalone-1")})


def test_a_hinge_loss_job_trains_an_svm_whose_scores_are_decision_values(
    sm: LocalSageMaker,
) -> None:
    x, y = _data(400, 1)
    sm.s3.put_object(Bucket=BUCKET, Key="h/train/data", Body=encode_dense(x, y))
    vx, vy = _data(200, 2)
    sm.s3.put_object(Bucket=BUCKET, Key="h/validation/data", Body=encode_dense(vx, vy))
    job = _minimal_job("ll-hinge")
    job["HyperParameters"] = {
        "feature_dim": "6",
        "predictor_type": "binary_classifier",
        "mini_batch_size": "50",
        "epochs": "3",
        "loss": "hinge_loss",
        "margin": "2.0",
    }
    job["InputDataConfig"] = [
        _channel("train", f"s3://{BUCKET}/h/train/"),
        _channel("validation", f"s3://{BUCKET}/h/validation/"),
    ]
    checked(sm, "CreateTrainingJob", **job)
    described = _wait(sm, "ll-hinge")
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    metrics = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    assert metrics["validation:binary_classification_accuracy"] > 0.9
    blob = sm.s3.get_object(Bucket=BUCKET, Key="out/ll-hinge/output/model.tar.gz")["Body"].read()
    model = LinearModel.from_bytes(blob)
    assert model.loss == "hinge_loss"
    scores, _ = model.predict(vx)
    # the job's validation:objective_loss is the hinge loss at margin 2 of what it serves
    hinge = np.maximum(0.0, 2.0 - (2.0 * vy - 1.0) * scores.astype(np.float64)).mean()
    assert metrics["validation:objective_loss"] == pytest.approx(hinge, rel=1e-3)
    assert scores.min() < 0  # decision values, not probabilities


def test_a_job_reads_completed_only_once_its_model_is_in_s3(sm: LocalSageMaker) -> None:
    x, y = _data(200, 4)
    sm.s3.put_object(Bucket=BUCKET, Key="u/train/data", Body=encode_dense(x, y))
    upload = sm.s3.upload_file

    def slow_upload(*args: Any, **kwargs: Any) -> None:
        time.sleep(0.5)  # a slow S3: the SDK's fit-then-deploy must still find the model
        upload(*args, **kwargs)

    sm.s3.upload_file = slow_upload  # type: ignore[method-assign]
    job = _minimal_job("ll-upload")
    job["HyperParameters"] = {"feature_dim": "6", "predictor_type": "binary_classifier"}
    job["InputDataConfig"] = [_channel("train", f"s3://{BUCKET}/u/train/")]
    checked(sm, "CreateTrainingJob", **job)
    described = _wait(sm, "ll-upload")
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert described["SecondaryStatusTransitions"][-2]["Status"] == "Uploading"
    key = "out/ll-upload/output/model.tar.gz"
    assert sm.s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] > 0


def _minimal_job(name: str) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "InputDataConfig": [_channel("train", f"s3://{BUCKET}/missing/")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
        "ResourceConfig": {"InstanceType": "ml.c4.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }


def test_a_channel_with_no_objects_is_refused_at_the_call(sm: LocalSageMaker) -> None:
    with pytest.raises(ServiceError) as info:
        sm.dispatch("CreateTrainingJob", _minimal_job("ll-empty"))
    assert info.value.code == "ValidationException"
    assert info.value.message.startswith(
        f'No S3 objects found under S3 URL "s3://{BUCKET}/missing/"'
    )


def test_list_calls_page_sort_and_filter(sm: LocalSageMaker) -> None:
    for name in ("mnist-ll-c", "mnist-ll-a", "other-b", "mnist-ll-e", "mnist-ll-d"):
        checked(
            sm,
            "CreateModel",
            ModelName=name,
            ExecutionRoleArn=ROLE,
            PrimaryContainer={"Image": IMAGE},
        )
        time.sleep(0.01)
    seen: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"MaxResults": 2, "NameContains": "mnist-ll", "SortBy": "Name"}
        if token:
            kwargs["NextToken"] = token
        result = checked(sm, "ListModels", **kwargs)
        assert len(result["Models"]) <= 2
        seen += [m["ModelName"] for m in result["Models"]]
        token = result.get("NextToken")
        if not token:
            break
    assert seen == ["mnist-ll-e", "mnist-ll-d", "mnist-ll-c", "mnist-ll-a"]  # Descending
    newest = checked(sm, "ListModels", MaxResults=1)["Models"]
    assert [m["ModelName"] for m in newest] == ["mnist-ll-d"]  # CreationTime, newest first
    ascending = checked(sm, "ListModels", SortBy="Name", SortOrder="Ascending")["Models"]
    assert [m["ModelName"] for m in ascending][:2] == ["mnist-ll-a", "mnist-ll-c"]
    with pytest.raises(ServiceError) as info:
        sm.dispatch("ListModels", {"NextToken": "not-a-token"})
    assert info.value.code == "ValidationException"


def test_endpoint_shows_production_variants_and_refuses_an_update_to_its_own_config(
    sm: LocalSageMaker,
) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz"):
        pass
    sm.s3.put_object(Bucket=BUCKET, Key="m/model.tar.gz", Body=buf.getvalue())
    checked(
        sm,
        "CreateModel",
        ModelName="mnist-ll-m",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/m/model.tar.gz"},
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
    checked(sm, "CreateEndpoint", EndpointName="mnist-ll-ep", EndpointConfigName="mnist-ll-cfg")
    sm.wait_idle(10)
    described = checked(sm, "DescribeEndpoint", EndpointName="mnist-ll-ep")
    assert described["EndpointStatus"] == "InService"
    (variant,) = described["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic" and variant["CurrentInstanceCount"] == 1
    assert variant["DeployedImages"][0]["SpecifiedImage"] == IMAGE
    with pytest.raises(ServiceError) as info:
        sm.dispatch(
            "UpdateEndpoint", {"EndpointName": "mnist-ll-ep", "EndpointConfigName": "mnist-ll-cfg"}
        )
    assert info.value.code == "ValidationException" and "same endpoint configuration" in (
        info.value.message
    )
    # a serverless variant shows its ServerlessConfig, and no instances
    serverless = {"MemorySizeInMB": 2048, "MaxConcurrency": 2}
    checked(
        sm,
        "CreateEndpointConfig",
        EndpointConfigName="mnist-ll-cfg-sl",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "mnist-ll-m", "ServerlessConfig": serverless}
        ],
    )
    checked(sm, "CreateEndpoint", EndpointName="mnist-ll-sl", EndpointConfigName="mnist-ll-cfg-sl")
    sm.wait_idle(10)
    (variant,) = checked(sm, "DescribeEndpoint", EndpointName="mnist-ll-sl")["ProductionVariants"]
    assert variant["CurrentServerlessConfig"] == serverless == variant["DesiredServerlessConfig"]
    assert "CurrentInstanceCount" not in variant
    # the runtime takes at most 4 MB per request of it, the server's 6 MB of the other
    backend = sm.backend
    assert isinstance(backend, FakeBackend)
    assert backend.limits == {"mnist-ll-ep": None, "mnist-ll-sl": SERVERLESS_MAX_BODY_BYTES}


def test_best_training_job_and_running_jobs_are_visible_while_tuning(tmp_path: Path) -> None:
    from local.account.backend import LinearLearnerBackend

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        sm = LocalSageMaker(
            backend=LinearLearnerBackend(work_dir=tmp_path / "backend"),
            s3_client=s3,
            work_dir=tmp_path,
        )
        sm.logs = boto3.client("logs", region_name="us-east-1")
        sm.cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        x, y = _data(300, 4)
        s3.put_object(Bucket=BUCKET, Key="t/train/data", Body=encode_dense(x, y))
        s3.put_object(Bucket=BUCKET, Key="t/validation/data", Body=encode_dense(*_data(100, 5)))
        definition = {
            "StaticHyperParameters": {
                "feature_dim": "6",
                "predictor_type": "binary_classifier",
                "epochs": "2",
            },
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "RoleArn": ROLE,
            "InputDataConfig": [
                _channel("train", f"s3://{BUCKET}/t/train/data"),
                _channel("validation", f"s3://{BUCKET}/t/validation/data"),
            ],
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/tuning"},
            # what the SDK v2 sends instead of ResourceConfig
            "HyperParameterTuningResourceConfig": {
                "InstanceType": "ml.c4.xlarge",
                "InstanceCount": 1,
                "VolumeSizeInGB": 10,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        }
        checked(
            sm,
            "CreateHyperParameterTuningJob",
            HyperParameterTuningJobName="ll-while",
            HyperParameterTuningJobConfig={
                "Strategy": "Random",
                "HyperParameterTuningJobObjective": {
                    "Type": "Maximize",
                    "MetricName": "validation:binary_f_beta",
                },
                "ResourceLimits": {"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 1},
                "ParameterRanges": {
                    "ContinuousParameterRanges": [
                        {"Name": "wd", "MinValue": "1e-6", "MaxValue": "0.1"}
                    ]
                },
            },
            TrainingJobDefinition=definition,
        )
        seen_best_while_running = False
        running_described: dict[str, Any] | None = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            tuning = checked(
                sm, "DescribeHyperParameterTuningJob", HyperParameterTuningJobName="ll-while"
            )
            if tuning["HyperParameterTuningJobStatus"] != "InProgress":
                break
            if tuning["TrainingJobStatusCounters"]["Completed"] >= 1:
                seen_best_while_running |= "BestTrainingJob" in tuning
            jobs = checked(
                sm,
                "ListTrainingJobsForHyperParameterTuningJob",
                HyperParameterTuningJobName="ll-while",
                StatusEquals="InProgress",
            )["TrainingJobSummaries"]
            if jobs and running_described is None:
                running_described = checked(
                    sm, "DescribeTrainingJob", TrainingJobName=jobs[0]["TrainingJobName"]
                )
            time.sleep(0.05)
        sm.wait_idle(60)
        assert seen_best_while_running
        assert running_described is not None
        assert running_described["ResourceConfig"]["InstanceType"] == "ml.c4.xlarge"
        done = checked(
            sm, "DescribeHyperParameterTuningJob", HyperParameterTuningJobName="ll-while"
        )
        assert done["HyperParameterTuningJobStatus"] == "Completed"
        best = checked(
            sm, "DescribeTrainingJob", TrainingJobName=done["BestTrainingJob"]["TrainingJobName"]
        )
        names = {m["MetricName"] for m in best["FinalMetricDataList"]}
        assert {"validation:binary_f_beta", "validation:precision", "train:objective_loss"} <= names
        # SageMaker adds the objective to the hyperparameters (HyperparameterTuner.attach
        # deletes it from the static ones) and lists the algorithm's MetricDefinitions.
        objective = {"_tuning_objective_metric": "validation:binary_f_beta"}
        assert objective.items() <= best["HyperParameters"].items()
        assert objective.items() <= done["TrainingJobDefinition"]["StaticHyperParameters"].items()
        assert done["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"]
        # each tuned job's log and metrics, as for a standalone job
        best_name = best["TrainingJobName"]
        streams = sm.logs.describe_log_streams(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{best_name}/"
        )["logStreams"]
        assert len(streams) == 1
        messages = [
            e["message"]
            for e in sm.logs.get_log_events(
                logGroupName="/aws/sagemaker/TrainingJobs",
                logStreamName=streams[0]["logStreamName"],
            )["events"]
        ]
        final = {m["MetricName"]: m["Value"] for m in best["FinalMetricDataList"]}
        assert parse_metrics(messages)["validation:binary_f_beta"] == pytest.approx(
            final["validation:binary_f_beta"]
        )
        points = sm.cloudwatch.get_metric_statistics(
            Namespace="/aws/sagemaker/TrainingJobs",
            MetricName="validation:binary_f_beta",
            Dimensions=[{"Name": "TrainingJobName", "Value": best_name}],
            StartTime=best["TrainingStartTime"] - timedelta(minutes=1),
            EndTime=best["TrainingEndTime"] + timedelta(minutes=2),
            Period=60,
            Statistics=["Maximum"],
        )["Datapoints"]
        assert points
        listed = checked(
            sm,
            "ListTrainingJobsForHyperParameterTuningJob",
            HyperParameterTuningJobName="ll-while",
            MaxResults=2,
        )
        assert len(listed["TrainingJobSummaries"]) == 2 and "NextToken" in listed
        sm.shutdown()
