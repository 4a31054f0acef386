"""The local SageMaker refuses what AWS refuses, over HTTP as boto3 sees it:
the documented constraints of docs/SAGEMAKER_CONSTRAINTS.md, each with AWS's
error code (and AWS's wording where it is known)."""

from __future__ import annotations

import io
import re
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from local.account.local_account import RESOURCE_CREATORS, ResourceContext
from local.emulator.failure_reasons import failure_reason, reworded
from local.emulator.service import LocalSageMaker
from stacks import asl
from training.serving import BackgroundServer

IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
BUCKET = "constraints"
ARN = "arn:aws:sagemaker:us-east-1:123456789012"
ROOT = Path(__file__).resolve().parents[2]


class FakeBackend:
    def load_endpoint_model(
        self, name: str, artifact: Path, max_body_bytes: int | None = None
    ) -> None:
        pass

    def unload_endpoint_model(self, name: str) -> None:
        pass

    def runtime_app(self) -> Any:
        from starlette.applications import Starlette

        return Starlette()


class Account:
    def __init__(self, service: LocalSageMaker, url: str) -> None:
        self.service = service
        self.url = url
        self.sm = boto3.client(
            "sagemaker",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(retries={"max_attempts": 1}),
        )


@pytest.fixture
def account(tmp_path: Path) -> Iterator[Account]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz"):
            pass
        s3.put_object(Bucket=BUCKET, Key="m/model.tar.gz", Body=buf.getvalue())
        s3.put_object(Bucket=BUCKET, Key="data/train/part-0", Body=b"x")
        service = LocalSageMaker(backend=FakeBackend(), s3_client=s3, work_dir=tmp_path)  # type: ignore[arg-type]
        service.delete_seconds = 0.05
        with BackgroundServer(service.app()) as server:
            yield Account(service, server.url)
        service.shutdown()


def error_of(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    error = info.value.response["Error"]
    return error["Code"], error["Message"]


def model(sm: Any, name: str, **extra: Any) -> None:
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/m/model.tar.gz"},
        **extra,
    )


SERVERLESS = {"MemorySizeInMB": 2048, "MaxConcurrency": 2}


def instances(model_name: str, count: int = 1, variant: str = "AllTraffic") -> dict[str, Any]:
    return {
        "VariantName": variant,
        "ModelName": model_name,
        "InitialInstanceCount": count,
        "InstanceType": "ml.m5.large",
    }


def serverless(model_name: str, variant: str = "AllTraffic") -> dict[str, Any]:
    return {"VariantName": variant, "ModelName": model_name, "ServerlessConfig": SERVERLESS}


def config(sm: Any, name: str, *variants: dict[str, Any], **extra: Any) -> None:
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=list(variants), **extra)


def in_service(account: Account, name: str) -> None:
    deadline = time.monotonic() + 20
    while account.sm.describe_endpoint(EndpointName=name)["EndpointStatus"] != "InService":
        assert time.monotonic() < deadline
        time.sleep(0.05)


# -- the model registry ------------------------------------------------------------------


def test_a_group_version_takes_no_tags_and_answers_its_groups(account: Account) -> None:
    sm = account.sm
    tags = [{"Key": "mnist-ll:stack", "Value": "dev"}, {"Key": "project", "Value": "mnist"}]
    sm.create_model_package_group(ModelPackageGroupName="g", Tags=tags)
    inference = {
        "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/m/model.tar.gz"}],
        "SupportedContentTypes": ["text/csv"],
        "SupportedResponseMIMETypes": ["application/json"],
    }
    code, message = error_of(
        sm.create_model_package,
        ModelPackageGroupName="g",
        InferenceSpecification=inference,
        Tags=[{"Key": "run", "Value": "1"}],
    )
    assert code == "ValidationException" and "Tags cannot be supplied" in message
    arn = sm.create_model_package(ModelPackageGroupName="g", InferenceSpecification=inference)[
        "ModelPackageArn"
    ]
    assert sm.list_tags(ResourceArn=arn)["Tags"] == tags


def test_the_template_group_is_created_with_its_tags(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", account.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    tags = [{"Key": "mnist-ll:stack", "Value": "Stack"}, {"Key": "project", "Value": "p"}]
    props = {"ModelPackageGroupName": "stack-models", "Tags": tags}
    template = {"Resources": {"Group": {"Type": "AWS::SageMaker::ModelPackageGroup"}}}
    resolver = asl.Resolver(template, "us-east-1", "123456789012")
    RESOURCE_CREATORS["AWS::SageMaker::ModelPackageGroup"](
        ResourceContext("Group", "AWS::SageMaker::ModelPackageGroup", props, resolver)
    )
    group_arn = f"{ARN}:model-package-group/stack-models"
    assert account.sm.list_tags(ResourceArn=group_arn)["Tags"] == tags


def test_tag_keys_must_be_unique(account: Account) -> None:
    code, message = error_of(
        account.sm.create_model_package_group,
        ModelPackageGroupName="g",
        Tags=[{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}],
    )
    assert code == "ValidationException" and "tag keys must be unique per resource" in message


# -- serverless endpoints --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_extra", "variants", "config_extra", "words"),
    [
        ({"EnableNetworkIsolation": True}, 1, {}, "network isolation is not supported"),
        (
            {"VpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]}},
            1,
            {},
            "VPC configuration is not supported",
        ),
        (
            {},
            1,
            {
                "DataCaptureConfig": {
                    "InitialSamplingPercentage": 100,
                    "DestinationS3Uri": f"s3://{BUCKET}/capture",
                    "CaptureOptions": [{"CaptureMode": "Input"}],
                }
            },
            "DataCaptureConfig is not supported for serverless",
        ),
        ({}, 2, {}, "does not support multiple production variants"),
    ],
)
def test_serverless_feature_exclusions_are_refused_at_create_endpoint_config(
    account: Account,
    model_extra: dict[str, Any],
    variants: int,
    config_extra: dict[str, Any],
    words: str,
) -> None:
    model(account.sm, "m", **model_extra)
    second = [instances("m", variant="Other")] if variants == 2 else []
    code, message = error_of(
        account.sm.create_endpoint_config,
        EndpointConfigName="c",
        ProductionVariants=[serverless("m"), *second],
        **config_extra,
    )
    assert code == "ValidationException" and words in message
    config(account.sm, "c-instances", instances("m"), *second, **config_extra)  # fine on instances


def test_an_instance_endpoint_cannot_become_serverless(account: Account) -> None:
    sm = account.sm
    model(sm, "m")
    config(sm, "c-sl", serverless("m"))
    config(sm, "c-inst", instances("m"))
    config(sm, "c-sl-2", serverless("m"))
    sm.create_endpoint(EndpointName="e", EndpointConfigName="c-sl")
    in_service(account, "e")
    # The developer guide: a serverless endpoint can be converted to instances ...
    sm.update_endpoint(EndpointName="e", EndpointConfigName="c-inst")
    in_service(account, "e")
    # ... but not back, nor can any instance-based endpoint become serverless.
    code, message = error_of(sm.update_endpoint, EndpointName="e", EndpointConfigName="c-sl-2")
    assert code == "ValidationException"
    assert f'Cannot update endpoint "{ARN}:endpoint/e"' in message
    assert "cannot be converted to a serverless endpoint" in message


def _canary(value: int, kind: str = "CAPACITY_PERCENT") -> dict[str, Any]:
    routing = {
        "Type": "CANARY",
        "WaitIntervalInSeconds": 0,
        "CanarySize": {"Type": kind, "Value": value},
    }
    return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing}}


def _linear(value: int, kind: str = "CAPACITY_PERCENT") -> dict[str, Any]:
    routing = {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": 0,
        "LinearStepSize": {"Type": kind, "Value": value},
    }
    return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing}}


def test_deployment_guardrail_sizes_policies_and_variant_names(account: Account) -> None:
    sm = account.sm
    model(sm, "m")
    config(sm, "c1", instances("m", 2))
    config(sm, "c2", instances("m", 2))
    config(sm, "c-renamed", instances("m", 2, variant="Renamed"))
    sm.create_endpoint(EndpointName="e", EndpointConfigName="c1")
    in_service(account, "e")
    refused = [
        (_canary(60), "CanarySize (CAPACITY_PERCENT 60) must be at most 50%"),
        (_canary(2, "INSTANCE_COUNT"), "CanarySize (INSTANCE_COUNT 2) must be at most 50%"),
        (_linear(5), "LinearStepSize (CAPACITY_PERCENT 5) must be between 10% and 50%"),
        (_linear(60), "LinearStepSize (CAPACITY_PERCENT 60) must be between 10% and 50%"),
        (
            {**_canary(10), "RollingUpdatePolicy": _rolling()},
            "Only one update policy may be used",
        ),
        (
            {
                "RollingUpdatePolicy": {
                    **_rolling(),
                    "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 60},
                }
            },
            "MaximumBatchSize (CAPACITY_PERCENT 60) must be between 5% and 50%",
        ),
        (
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 0}
                }
            },
            "CanarySize is required for traffic routing CANARY",
        ),
        (
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {"Type": "LINEAR", "WaitIntervalInSeconds": 0}
                }
            },
            "LinearStepSize is required for traffic routing LINEAR",
        ),
    ]
    for deployment, words in refused:
        code, message = error_of(
            sm.update_endpoint,
            EndpointName="e",
            EndpointConfigName="c2",
            DeploymentConfig=deployment,
        )
        assert code == "ValidationException" and words in message, deployment
    code, message = error_of(
        sm.update_endpoint,
        EndpointName="e",
        EndpointConfigName="c-renamed",
        DeploymentConfig=_canary(10),
    )
    assert code == "ValidationException" and "same variant names" in message
    # within bounds: accepted
    sm.update_endpoint(EndpointName="e", EndpointConfigName="c2", DeploymentConfig=_linear(50))
    # endpoint names are case-insensitive at CreateEndpoint
    code, message = error_of(sm.create_endpoint, EndpointName="E", EndpointConfigName="c1")
    assert (code, message) == (
        "ValidationException",
        f'Cannot create already existing endpoint "{ARN}:endpoint/e".',
    )


def _rolling() -> dict[str, Any]:
    return {
        "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 10},
        "WaitIntervalInSeconds": 0,
    }


def test_deployment_guardrails_are_refused_on_a_serverless_endpoint(account: Account) -> None:
    sm = account.sm
    model(sm, "m")
    config(sm, "c1", serverless("m"))
    config(sm, "c2", serverless("m"))
    sm.create_endpoint(EndpointName="e", EndpointConfigName="c1")
    in_service(account, "e")
    code, message = error_of(
        sm.update_endpoint, EndpointName="e", EndpointConfigName="c2", DeploymentConfig=_linear(20)
    )
    assert code == "ValidationException"
    assert "DeploymentConfig is not supported for serverless endpoints" in message
    sm.update_endpoint(EndpointName="e", EndpointConfigName="c2")  # without guardrails: fine


# -- names that do not exist -------------------------------------------------------------------


def test_missing_resources_are_answered_as_aws_answers_them(account: Account) -> None:
    sm = account.sm
    expected = [
        (sm.delete_endpoint_config, {"EndpointConfigName": "Nope"},
         f'Could not find endpoint configuration "{ARN}:endpoint-config/nope".'),
        (sm.describe_endpoint_config, {"EndpointConfigName": "nope"},
         f'Could not find endpoint configuration "{ARN}:endpoint-config/nope".'),
        (sm.delete_model, {"ModelName": "nope"}, f'Could not find model "{ARN}:model/nope".'),
        (sm.describe_model, {"ModelName": "nope"}, f'Could not find model "{ARN}:model/nope".'),
        (sm.update_endpoint, {"EndpointName": "nope", "EndpointConfigName": "c"},
         f'Could not find endpoint "{ARN}:endpoint/nope".'),
        (sm.describe_endpoint, {"EndpointName": "nope"},
         f'Could not find endpoint "{ARN}:endpoint/nope".'),
        (sm.delete_endpoint, {"EndpointName": "nope"},
         f'Could not find endpoint "{ARN}:endpoint/nope".'),
        (sm.create_endpoint, {"EndpointName": "e", "EndpointConfigName": "nope"},
         f'Could not find endpoint configuration "{ARN}:endpoint-config/nope".'),
    ]  # fmt: skip
    for call, kwargs, message in expected:
        assert error_of(call, **kwargs) == ("ValidationException", message)
    code, message = error_of(
        sm.create_transform_job,
        TransformJobName="x",
        ModelName="nope",
        TransformInput={
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/"}
            }
        },
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/pred/"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    assert (code, message) == ("ValidationException", f'Could not find model "{ARN}:model/nope".')
    for call in (sm.describe_training_job, sm.stop_training_job):
        assert error_of(call, TrainingJobName="nope") == (
            "ValidationException",
            "Requested resource not found.",
        )
    code, message = error_of(
        sm.create_endpoint_config, EndpointConfigName="c", ProductionVariants=[instances("nope")]
    )
    assert (code, message) == ("ValidationException", f'Could not find model "{ARN}:model/nope".')


# -- jobs ----------------------------------------------------------------------------------------


def _training(name: str, uri: str, **changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "HyperParameters": {"feature_dim": "6", "predictor_type": "binary_classifier"},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
        "ResourceConfig": {"InstanceType": "ml.c4.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    request.update(changes)
    return request


def _no_objects(uri: str, bucket: str = BUCKET) -> str:
    return (
        f'No S3 objects found under S3 URL "{uri}" given in input data source. Please ensure '
        "that the bucket exists in the selected region, that objects exist under that S3 "
        f'prefix, and that the role "{ROLE}" has "s3:ListBucket" permissions on bucket '
        f'"{bucket}".'
    )


def test_training_on_a_prefix_without_objects_is_refused_at_the_call(account: Account) -> None:
    sm = account.sm
    for uri, bucket in (
        (f"s3://{BUCKET}/missing/", BUCKET),
        ("s3://no-such-bucket/x", "no-such-bucket"),
    ):
        assert error_of(sm.create_training_job, **_training("t", uri)) == (
            "ValidationException",
            _no_objects(uri, bucket),
        )
    with pytest.raises(ClientError):
        sm.describe_training_job(TrainingJobName="t")  # nothing was created


def test_a_tuning_job_on_an_empty_prefix_fails_with_the_same_reason(account: Account) -> None:
    sm = account.sm
    uri = f"s3://{BUCKET}/missing/"
    definition = {
        k: v
        for k, v in _training("x", uri).items()
        if k not in ("TrainingJobName", "HyperParameters")
    }
    definition["StaticHyperParameters"] = {
        "feature_dim": "6",
        "predictor_type": "binary_classifier",
    }
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="tune",
        HyperParameterTuningJobConfig={
            "Strategy": "Random",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 1, "MaxParallelTrainingJobs": 1},
        },
        TrainingJobDefinition=definition,
    )
    account.service.wait_idle(30)
    described = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune")
    assert described["HyperParameterTuningJobStatus"] == "Failed"
    assert described["FailureReason"] == f"ClientError: {_no_objects(uri)}"


def test_stopping_a_job_that_is_not_in_progress_is_refused(account: Account) -> None:
    sm, service = account.sm, account.service
    # A built-in algorithm's customer error: FailureReason starts with "ClientError: ".
    bad = _training("t-bad", f"s3://{BUCKET}/data/train/", HyperParameters={"feature_dim": "0"})
    sm.create_training_job(**bad)
    deadline = time.monotonic() + 60
    while (described := sm.describe_training_job(TrainingJobName="t-bad"))["TrainingJobStatus"] in (
        "InProgress",
        "Stopping",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"].startswith("ClientError: hyperparameter 'feature_dim'")
    assert error_of(sm.stop_training_job, TrainingJobName="t-bad") == (
        "ValidationException",
        "The request was rejected because the training job is in status Failed.",
    )
    model(sm, "m")
    transform = {
        "ModelName": "m",
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/"}
            }
        },
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/pred/"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    service.inject_fault("transform_hang")
    sm.create_transform_job(TransformJobName="x-hang", **transform)
    sm.stop_transform_job(TransformJobName="x-hang")  # InProgress: accepted
    service.inject_fault("transform_failed", "RuntimeError: boom")
    sm.create_transform_job(TransformJobName="x-fail", **transform)
    service.wait_idle(10)
    assert error_of(sm.stop_transform_job, TransformJobName="x-fail") == (
        "ValidationException",
        "The request was rejected because the transform job is in status Failed.",
    )
    assert error_of(sm.stop_transform_job, TransformJobName="x-hang") == (
        "ValidationException",
        "The request was rejected because the transform job is in status Stopped.",
    )
    definition = {k: v for k, v in bad.items() if k not in ("TrainingJobName", "HyperParameters")}
    definition["StaticHyperParameters"] = {"feature_dim": "6"}
    service.inject_fault("tuning_failed")
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="tune",
        HyperParameterTuningJobConfig={
            "Strategy": "Random",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 1, "MaxParallelTrainingJobs": 1},
        },
        TrainingJobDefinition=definition,
    )
    service.wait_idle(30)
    assert error_of(sm.stop_hyper_parameter_tuning_job, HyperParameterTuningJobName="tune") == (
        "ValidationException",
        "The request was rejected because the hyperparameter tuning job is in status Failed.",
    )


def test_request_rules_of_training_tuning_and_transform_jobs(account: Account) -> None:
    sm = account.sm
    uri = f"s3://{BUCKET}/data/train/"
    spot = _training(
        "t-spot",
        uri,
        EnableManagedSpotTraining=True,
        StoppingCondition={"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 300},
    )
    code, message = error_of(sm.create_training_job, **spot)
    assert code == "ValidationException" and "must be equal to or greater than" in message
    both = _training(
        "t-both",
        uri,
        AlgorithmSpecification={
            "TrainingImage": IMAGE,
            "AlgorithmName": "a",
            "TrainingInputMode": "File",
        },
    )
    code, message = error_of(sm.create_training_job, **both)
    assert code == "ValidationException" and "and not both" in message
    definition = {
        k: v
        for k, v in _training("x", uri).items()
        if k not in ("TrainingJobName", "HyperParameters")
    }
    ranges = {
        "ContinuousParameterRanges": [
            {"Name": "wd", "MinValue": "0", "MaxValue": "1", "ScalingType": "Logarithmic"}
        ]
    }
    tuning_config = {
        "Strategy": "Random",
        "ResourceLimits": {"MaxNumberOfTrainingJobs": 1, "MaxParallelTrainingJobs": 1},
        "ParameterRanges": ranges,
    }
    code, message = error_of(
        sm.create_hyper_parameter_tuning_job,
        HyperParameterTuningJobName="tune",
        HyperParameterTuningJobConfig=tuning_config,
        TrainingJobDefinition=definition,
    )
    assert (
        code == "ValidationException"
        and "only for ranges that have only values greater than 0" in message
    )
    ranges["ContinuousParameterRanges"][0]["ScalingType"] = "ReverseLogarithmic"
    code, message = error_of(
        sm.create_hyper_parameter_tuning_job,
        HyperParameterTuningJobName="tune",
        HyperParameterTuningJobConfig=tuning_config,
        TrainingJobDefinition=definition,
    )
    assert code == "ValidationException" and "entirely within 0<=x<1.0" in message
    hyperband = {
        "Strategy": "Bayesian",
        "StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 10}},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": 1, "MaxParallelTrainingJobs": 1},
    }
    code, message = error_of(
        sm.create_hyper_parameter_tuning_job,
        HyperParameterTuningJobName="tune",
        HyperParameterTuningJobConfig=hyperband,
        TrainingJobDefinition=definition,
    )
    assert code == "ValidationException" and "only if the strategy is Hyperband" in message
    hyperband["Strategy"] = "Hyperband"
    hyperband["TrainingJobEarlyStoppingType"] = "Auto"
    code, message = error_of(
        sm.create_hyper_parameter_tuning_job,
        HyperParameterTuningJobName="tune",
        HyperParameterTuningJobConfig=hyperband,
        TrainingJobDefinition=definition,
    )
    assert code == "ValidationException" and "must be OFF to use Hyperband" in message
    model(sm, "m")
    transform: dict[str, Any] = {
        "TransformJobName": "x",
        "ModelName": "m",
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/"}
            }
        },
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/pred/"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    for changes, words in (
        ({"MaxPayloadInMB": 101}, "cannot be greater than 100 MB"),
        ({"MaxPayloadInMB": 30, "MaxConcurrentTransforms": 4}, "cannot exceed 100 MB"),
        ({"BatchStrategy": "MultiRecord"}, "you must set the SplitType property"),
    ):
        code, message = error_of(sm.create_transform_job, **{**transform, **changes})
        assert code == "ValidationException" and words in message, changes


def test_customer_errors_are_client_errors() -> None:
    assert failure_reason("HyperparameterError", "bad") == "ClientError: bad"
    assert failure_reason("RuntimeError", "boom") == "RuntimeError: boom"
    assert reworded("DataChannelError: empty") == "ClientError: empty"
    assert reworded("ChannelError: ClientError: none") == "ClientError: none"
    assert reworded("RuntimeError: ClientError: none") == "ClientError: none"
    assert reworded("RuntimeError: boom") == "RuntimeError: boom"


# -- the table -------------------------------------------------------------------------------------


def test_every_enforced_row_of_the_table_names_a_test_that_exists() -> None:
    table = (ROOT / "docs" / "SAGEMAKER_CONSTRAINTS.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("|") and "---" not in line]
    enforced = [r for r in rows[1:] if "| enforced" in r]
    assert len(enforced) >= 20
    for row in enforced:
        named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", row)
        assert named, f"an enforced row names no test: {row}"
        for path, name in named:
            source = (ROOT / path).read_text()
            assert re.search(rf"^def {name}\(", source, re.M), f"{path}::{name} does not exist"
