"""Server-side request validation: boto3 gets the error AWS gives, for a sample
of every constraint kind, from the local SageMaker over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local.emulator.errors import ServiceError
from local.emulator.service import LocalSageMaker
from local.emulator.validation import response_errors, validate_request
from training.serving import BackgroundServer

IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"


class _NoBackend:
    def runtime_app(self) -> Any:
        from starlette.applications import Starlette

        return Starlette()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    service = LocalSageMaker(
        backend=_NoBackend(),  # type: ignore[arg-type]
        s3_client=None,
        work_dir=Path(tmp_path_factory.mktemp("sm")),
    )
    with BackgroundServer(service.app()) as server:
        yield server.url


def client(url: str, validate: bool = True) -> Any:
    return boto3.client(
        "sagemaker",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(parameter_validation=validate, retries={"max_attempts": 1}),
    )


def tuning_request(**changes: Any) -> dict[str, Any]:
    channel = {
        "ChannelName": "train",
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/train"}},
    }
    request: dict[str, Any] = {
        "HyperParameterTuningJobName": "mnist-ll-ok",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {
                "Type": "Maximize",
                "MetricName": "validation:binary_f_beta",
            },
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
        },
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "RoleArn": ROLE,
            "InputDataConfig": [channel],
            "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
            "ResourceConfig": {
                "InstanceType": "ml.c4.xlarge",
                "InstanceCount": 1,
                "VolumeSizeInGB": 10,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        },
    }
    for path, value in changes.items():
        node = request
        *parents, last = path.split(".")
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value
    return request


def error_of(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    error = info.value.response["Error"]
    return error["Code"], error["Message"]


def test_pattern_violation_is_a_validation_exception_at_the_call(url: str) -> None:
    code, message = error_of(
        client(url).create_hyper_parameter_tuning_job,
        **tuning_request(HyperParameterTuningJobName="my_tuning_job"),
    )
    assert code == "ValidationException"
    assert message.startswith("1 validation error detected: Value 'my_tuning_job' at ")
    assert "'hyperParameterTuningJobName' failed to satisfy constraint: Member must satisfy " in (
        message
    )
    assert "regular expression pattern" in message


def test_too_long_name_enum_and_range_violations(url: str) -> None:
    sm = client(url)
    code, message = error_of(
        sm.create_model, ModelName="m" * 64, ExecutionRoleArn=ROLE, PrimaryContainer={}
    )
    assert code == "ValidationException"
    assert "Member must have length less than or equal to 63" in message
    request = tuning_request(**{"HyperParameterTuningJobConfig.Strategy": "Evolutionary"})
    code, message = error_of(sm.create_hyper_parameter_tuning_job, **request)
    assert code == "ValidationException" and "Member must satisfy enum value set: [" in message
    code, message = error_of(sm.list_training_jobs, MaxResults=101)
    assert code == "ValidationException"
    assert "'maxResults' failed to satisfy constraint: Member must have value less than or " in (
        message
    )


def test_required_min_size_and_type_checks_that_boto3_would_catch_first(url: str) -> None:
    sm = client(url, validate=False)
    code, message = error_of(sm.create_endpoint, EndpointName="mnist-ll-e")
    assert code == "ValidationException"
    assert "Value 'null' at 'endpointConfigName' failed to satisfy constraint: " in message
    assert "Member must not be null" in message
    code, message = error_of(
        sm.create_endpoint_config, EndpointConfigName="mnist-ll-c", ProductionVariants=[]
    )
    assert code == "ValidationException"
    assert "Member must have length greater than or equal to 1" in message
    code, _ = error_of(sm.list_models, MaxResults="ten")
    assert code == "SerializationException"


def test_linear_learner_objective_metric_and_channel_names(url: str) -> None:
    sm = client(url)
    request = tuning_request(
        **{"HyperParameterTuningJobConfig.HyperParameterTuningJobObjective.MetricName": "val:f1"}
    )
    code, message = error_of(sm.create_hyper_parameter_tuning_job, **request)
    assert code == "ValidationException" and "[val:f1] is not supported" in message
    request = tuning_request(**{"TrainingJobDefinition.InputDataConfig.0.ChannelName": "training"})
    code, message = error_of(sm.create_hyper_parameter_tuning_job, **request)
    assert code == "ValidationException" and "[training]" in message


def test_a_valid_request_passes_and_several_errors_are_counted() -> None:
    validate_request("CreateHyperParameterTuningJob", tuning_request())
    with pytest.raises(ServiceError) as info:
        validate_request("CreateModel", {"ModelName": "a_b", "ExecutionRoleArn": "nope"})
    # the name's pattern; the role's pattern and its minimum length (20)
    assert info.value.message.startswith("3 validation errors detected: ")
    assert "Member must have length greater than or equal to 20" in info.value.message


def test_response_shapes_are_checked_against_the_output_model() -> None:
    good = {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/x"}
    assert response_errors("CreateTrainingJob", good) == []
    bad = {"EndpointName": "e", "EndpointStatus": "Running", "Extra": 1}
    problems = response_errors("DescribeEndpoint", bad)
    assert any("enum" in p for p in problems) and any("not a member" in p for p in problems)
    assert any("'creationTime'" in p for p in problems)  # required


def test_timestamps_go_out_as_epoch_seconds(url: str) -> None:
    import httpx

    sm = client(url)
    sm.create_model(
        ModelName="mnist-ll-ts", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE}
    )
    raw = httpx.post(
        url,
        content=b'{"ModelName": "mnist-ll-ts"}',
        headers={
            "X-Amz-Target": "SageMaker.DescribeModel",
            "Content-Type": "application/x-amz-json-1.1",
        },
    ).json()
    assert isinstance(raw["CreationTime"], float)
    listed = httpx.post(
        url,
        content=b"{}",
        headers={
            "X-Amz-Target": "SageMaker.ListModels",
            "Content-Type": "application/x-amz-json-1.1",
        },
    ).json()
    assert all(isinstance(m["CreationTime"], float) for m in listed["Models"])
