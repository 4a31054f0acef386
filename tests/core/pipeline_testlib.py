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
from botocore.stub import Stubber

from pipeline_core.config import DEFAULTS, PipelineConfig
from pipeline_core.deploy import build_endpoint_config_request, build_model_request
from pipeline_core.inputs import RunSpec, resolve_run

REGION = "us-east-1"
BUCKET = "mnist-ll-data-bucket"
STACK_TAG = "MnistLinearLearner-123456789012-us-east-1"
IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
ROLE = "arn:aws:iam::123456789012:role/mnist-ll-sagemaker"
ENDPOINT = "mnist-ll-endpoint"
#: DEFAULTS with local-storage and burstable types allowed too (request-shape tests).
WIDE_CONFIG = PipelineConfig.from_mapping(
    {
        "allowed_instance_types": [
            *DEFAULTS.allowed_instance_types,
            "ml.t2.medium",
            "ml.m5d.large",
            "ml.m5d.xlarge",
            "ml.c5d.xlarge",
        ]
    }
)


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
