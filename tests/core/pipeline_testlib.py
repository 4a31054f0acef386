"""Builders shared by the core and handler tests."""

from __future__ import annotations

import gzip
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import boto3
import numpy as np
from botocore.stub import ANY, Stubber

from pipeline_core.config import DEFAULTS, PipelineConfig
from pipeline_core.deploy import build_endpoint_config_request, build_model_request
from pipeline_core.inputs import RunSpec, resolve_run

REGION = "us-east-1"
BUCKET = "mnist-ll-data-bucket"
STACK_TAG = "MnistLinearLearner-123456789012-us-east-1"
IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
ROLE = "arn:aws:iam::123456789012:role/mnist-ll-sagemaker"
ENDPOINT = "mnist-ll-endpoint"
#: DEFAULTS with local-storage and burstable types allowed too (request-shape tests;
#: ml.g4dn.xlarge is the local-storage type that trains, the m5d/c5d ones only serve).
WIDE_CONFIG = PipelineConfig.from_mapping(
    {
        "allowed_instance_types": [
            *DEFAULTS.allowed_instance_types,
            "ml.t2.medium",
            "ml.m5d.large",
            "ml.m5d.xlarge",
            "ml.c5d.xlarge",
            "ml.g4dn.xlarge",
        ]
    }
)
#: The deployment salt (the UUID of the stack id) of the tests' stack.
SALT = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
LOCK_TABLE = "Pipeline-EndpointLeasesTable-ABC123"


def make_run(
    execution_name: str = "exec-1",
    raw: dict[str, Any] | None = None,
    config: PipelineConfig = DEFAULTS,
    **kwargs: Any,
) -> RunSpec:
    return resolve_run(
        raw or {},
        execution_name=execution_name,
        config=config,
        bucket=kwargs.pop("bucket", BUCKET),
        region=REGION,
        default_endpoint_name=ENDPOINT,
        stack_tag=kwargs.pop("stack_tag", STACK_TAG),
        salt=kwargs.pop("salt", SALT),
        **kwargs,
    )


def make_split(rows: int, seed: int, dim: int = 784) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = (rng.integers(0, 256, (rows, dim)) / 255.0).astype(np.float32)
    labels = rng.integers(0, 10, rows).astype(np.int64)
    labels[0] = 0  # the target digit is always present
    return images, labels


def make_dataset(rows: tuple[int, int, int] = (60, 20, 20), dim: int = 784) -> tuple[Any, ...]:
    return tuple(make_split(n, seed, dim) for seed, n in enumerate(rows))


def pickle_gz(obj: Any, protocol: int = pickle.HIGHEST_PROTOCOL) -> bytes:
    return gzip.compress(pickle.dumps(obj, protocol=protocol), mtime=0)


def sagemaker_client() -> Any:
    return boto3.client("sagemaker", region_name=REGION)


def dynamodb_client() -> Any:
    return boto3.client("dynamodb", region_name=REGION)


def stub_acquire(stub: Stubber, endpoint: str, holder: str, *, busy_by: str | None = None) -> None:
    """Deploy's conditional PutItem of the endpoint lease (``busy_by``: held by another)."""
    expected = {
        "TableName": LOCK_TABLE,
        "Item": {
            "pk": {"S": f"endpoint#{endpoint}"},
            "holder": {"S": holder},
            "expires_at": {"N": ANY},
            "acquired_at": {"N": ANY},
        },
        "ConditionExpression": (
            "attribute_not_exists(pk) OR expires_at < :now OR holder = :holder"
        ),
        "ExpressionAttributeValues": {":now": {"N": ANY}, ":holder": {"S": holder}},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    if busy_by is None:
        stub.add_response("put_item", {}, expected_params=expected)
    else:
        stub.add_client_error(
            "put_item",
            service_error_code="ConditionalCheckFailedException",
            service_message="The conditional request failed",
            expected_params=expected,
            response_meta={},
        )


def stub_release(stub: Stubber, endpoint: str, holder: str, *, held: bool = True) -> None:
    expected = {
        "TableName": LOCK_TABLE,
        "Key": {"pk": {"S": f"endpoint#{endpoint}"}},
        "ConditionExpression": "holder = :holder",
        "ExpressionAttributeValues": {":holder": {"S": holder}},
    }
    if held:
        stub.add_response("delete_item", {}, expected_params=expected)
    else:
        stub.add_client_error(
            "delete_item",
            service_error_code="ConditionalCheckFailedException",
            service_message="The conditional request failed",
            expected_params=expected,
        )


@contextmanager
def stubbed(client: Any) -> Iterator[Stubber]:
    """A Stubber that must be drained by the end of the block."""
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def when(seconds: int) -> datetime:
    return datetime.fromtimestamp(1_767_225_600 + seconds, UTC)


def tuning_result(
    artifacts: str = "s3://b/runs/exec-1/tuning/j-001/output/model.tar.gz",
) -> dict[str, Any]:
    return {
        "name": "mnist-ll-exec-1-abcdef12",
        "status": "Completed",
        "polls": 3,
        "best": {
            "training_job_name": "mnist-ll-exec-1-abcdef12-001-aaaa",
            "objective_metric": "validation:binary_f_beta",
            "objective_value": 0.95,
            "hyperparameters": {"wd": "0.01"},
            "model_artifacts": artifacts,
        },
        "gate": {"passed": True, "objective": 0.95, "threshold": 0.9, "objective_type": "Maximize"},
        "failure_reason": None,
    }


# -- valid SageMaker responses for the Stubber ------------------------------------------------


def tuning_description(
    name: str, status: str, *, best: dict[str, Any] | None = None, reason: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/{name}",  # noqa: E501
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 2},
        },
        "HyperParameterTuningJobStatus": status,
        "CreationTime": when(0),
        "TrainingJobStatusCounters": {},
        "ObjectiveStatusCounters": {},
    }
    if best is not None:
        out["BestTrainingJob"] = best
    if reason:
        out["FailureReason"] = reason
    return out


def best_job(
    name: str, value: float | None, metric: str = "validation:binary_f_beta"
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        "CreationTime": when(10),
        "TrainingJobStatus": "Completed",
        "TunedHyperParameters": {"wd": "0.001", "learning_rate": "0.1", "mini_batch_size": "200"},
    }
    if value is not None:
        out["FinalHyperParameterTuningJobObjectiveMetric"] = {"MetricName": metric, "Value": value}
    return out


def training_description(name: str, artifacts: str) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        "ModelArtifacts": {"S3ModelArtifacts": artifacts},
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "ResourceConfig": {
            "InstanceType": "ml.c4.xlarge",
            "InstanceCount": 1,
            "VolumeSizeInGB": 10,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": when(10),
    }


def endpoint_description(
    name: str, status: str, config: str | None, *, reason: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "EndpointName": name,
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}",
        "EndpointStatus": status,
        "CreationTime": when(0),
        "LastModifiedTime": when(5),
    }
    if config:
        out["EndpointConfigName"] = config
    if reason:
        out["FailureReason"] = reason
    return out


# -- Stubber steps of a deploy ------------------------------------------------------------------


def stub_endpoint_missing(stub: Stubber, name: str = ENDPOINT) -> None:
    """DescribeEndpoint answers that ``name`` does not exist (SageMaker's wording)."""
    stub.add_client_error(
        "describe_endpoint",
        service_error_code="ValidationException",
        service_message=f'Could not find endpoint "{name}".',
        expected_params={"EndpointName": name},
    )


def stub_model_and_config(
    stub: Stubber,
    run: RunSpec,
    tuning: dict[str, Any],
    config_request: dict[str, Any] | None = None,
) -> None:
    """CreateModel and CreateEndpointConfig with the requests deploy must send
    (``config_request`` defaults to the one without a KMS key)."""
    stub.add_response(
        "create_model",
        {"ModelArn": f"arn:aws:sagemaker:us-east-1:123456789012:model/{run.names.model}"},
        expected_params=build_model_request(run, tuning, image_uri=IMAGE, role_arn=ROLE),
    )
    stub.add_response(
        "create_endpoint_config",
        {
            "EndpointConfigArn": (
                "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/"
                f"{run.names.endpoint_config}"
            )
        },
        expected_params=config_request or build_endpoint_config_request(run, DEFAULTS),
    )


def create_endpoint_params(run: RunSpec) -> dict[str, Any]:
    """What CreateEndpoint must receive for ``run``."""
    return {
        "EndpointName": run.endpoint_name,
        "EndpointConfigName": run.names.endpoint_config,
        "Tags": run.tag_list(),
    }


def stub_create_endpoint(stub: Stubber, run: RunSpec) -> None:
    stub.add_response(
        "create_endpoint",
        {"EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{run.endpoint_name}"},
        expected_params=create_endpoint_params(run),
    )


#: Create call -> (describe method, name parameter, ARN field, ARN resource type).
_ADOPT = {
    "create_model": ("describe_model", "ModelName", "ModelArn", "model"),
    "create_endpoint_config": (
        "describe_endpoint_config",
        "EndpointConfigName",
        "EndpointConfigArn",
        "endpoint-config",
    ),
    "create_endpoint": ("describe_endpoint", "EndpointName", "EndpointArn", "endpoint"),
    "create_hyper_parameter_tuning_job": (
        "describe_hyper_parameter_tuning_job",
        "HyperParameterTuningJobName",
        "HyperParameterTuningJobArn",
        "hyper-parameter-tuning-job",
    ),
}


def stub_already_exists(
    stub: Stubber,
    create: str,
    request: dict[str, Any],
    tags: list[dict[str, str]] | None,
    description: dict[str, Any] | None = None,
) -> str:
    """``create`` says the name exists; the adopt check describes it and lists
    its ``tags`` (``None``: stop after the create). Returns the ARN."""
    describe, param, _arn_field, kind = _ADOPT[create]
    name = request[param]
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:{kind}/{name.lower()}"
    stub.add_client_error(
        create,
        service_error_code="ValidationException",
        service_message=f'Cannot create already existing {kind} "{arn}".',
        expected_params=request,
    )
    if tags is None:
        return arn
    if description is None:
        description = _minimal_description(describe, name, arn)
    stub.add_response(describe, description, expected_params={param: name})
    stub.add_response("list_tags", {"Tags": tags}, expected_params={"ResourceArn": arn})
    return arn


def _minimal_description(describe: str, name: str, arn: str) -> dict[str, Any]:
    if describe == "describe_model":
        return {"ModelName": name, "ModelArn": arn, "CreationTime": when(0)}
    if describe == "describe_endpoint_config":
        return {
            "EndpointConfigName": name,
            "EndpointConfigArn": arn,
            "ProductionVariants": [{"VariantName": "AllTraffic"}],
            "CreationTime": when(0),
        }
    if describe == "describe_endpoint":
        return endpoint_description(name, "Creating", None)
    return tuning_description(name, "InProgress")


def endpoint_config_description(
    name: str, *, serverless: bool = False, model: str = "mnist-ll-old-model"
) -> dict[str, Any]:
    """DescribeEndpointConfig of a one-variant config (instance-based or serverless)."""
    variant: dict[str, Any] = {"VariantName": "AllTraffic", "ModelName": model}
    if serverless:
        variant["ServerlessConfig"] = {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    else:
        variant.update({"InstanceType": "ml.m4.xlarge", "InitialInstanceCount": 1})
    return {
        "EndpointConfigName": name,
        "EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{name}",
        "ProductionVariants": [variant],
        "CreationTime": when(0),
    }


def stub_serving_config(stub: Stubber, name: str, *, serverless: bool = False) -> None:
    """Deploy reads the serving config's kind before an update in place."""
    stub.add_response(
        "describe_endpoint_config",
        endpoint_config_description(name, serverless=serverless),
        expected_params={"EndpointConfigName": name},
    )
