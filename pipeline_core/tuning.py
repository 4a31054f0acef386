"""The one builder of the CreateHyperParameterTuningJob request.

The cloud Lambda sends this dict to SageMaker and the local tuner reads the
very same dict, so hyperparameter ranges, static hyperparameters, channels and
limits are defined here once.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from pipeline_core.adopt import adopt_or_collide
from pipeline_core.awserrors import is_already_exists, named_error
from pipeline_core.config import ParameterRange, PipelineConfig, has_local_storage
from pipeline_core.errors import TooFewTrainObjectsError
from pipeline_core.inputs import RunSpec

RECORDIO_CONTENT_TYPE = "application/x-recordio-protobuf"


def _number(value: float, kind: str) -> str:
    """SageMaker takes range bounds as strings: ints plainly, floats round-trip."""
    if kind == "Integer":
        return str(int(value))
    return repr(float(value))


def parameter_ranges(ranges: tuple[ParameterRange, ...]) -> dict[str, list[dict[str, str]]]:
    continuous: list[dict[str, str]] = []
    integer: list[dict[str, str]] = []
    for r in ranges:
        entry = {
            "Name": r.name,
            "MinValue": _number(r.min_value, r.kind),
            "MaxValue": _number(r.max_value, r.kind),
            "ScalingType": r.scaling,
        }
        (integer if r.kind == "Integer" else continuous).append(entry)
    return {
        "ContinuousParameterRanges": continuous,
        "IntegerParameterRanges": integer,
        "CategoricalParameterRanges": [],
    }


def static_hyperparameters(run: RunSpec, config: PipelineConfig) -> dict[str, str]:
    """Config's static hyperparameters, plus mini_batch_size unless it is tuned;
    a tuned name is never also static."""
    tuned = {r.name for r in run.ranges}
    static = dict(config.static_hyperparameters())
    if "mini_batch_size" not in tuned:
        static.setdefault("mini_batch_size", str(config.mini_batch_size))
    return {k: v for k, v in static.items() if k not in tuned}


def _channel(name: str, uri: str, distribution: str = "FullyReplicated") -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": distribution,
            }
        },
        "ContentType": RECORDIO_CONTENT_TYPE,
        "CompressionType": "None",
    }


def build_tuning_request(
    run: RunSpec,
    config: PipelineConfig,
    *,
    image_uri: str,
    role_arn: str,
    train_uri: str,
    validation_uri: str,
    output_uri: str,
    tags: list[dict[str, str]] | None = None,
    kms_key_arn: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments of ``sagemaker.create_hyper_parameter_tuning_job``.

    With ``kms_key_arn`` the key encrypts the model artifacts and the training
    volumes (unless the instance type has local storage, which SageMaker
    encrypts in hardware and refuses a key for)."""
    output: dict[str, str] = {"S3OutputPath": output_uri}
    resources: dict[str, Any] = {
        "InstanceType": run.training_instance_type,
        "InstanceCount": run.training_instance_count,
        "VolumeSizeInGB": config.training_volume_gb,
    }
    if kms_key_arn:
        output["KmsKeyId"] = kms_key_arn
        if not has_local_storage(run.training_instance_type):
            resources["VolumeKmsKeyId"] = kms_key_arn
    tuning_config: dict[str, Any] = {
        "Strategy": run.strategy,
        "HyperParameterTuningJobObjective": {
            "Type": run.objective_type,
            "MetricName": run.objective_metric,
        },
        "ResourceLimits": {
            "MaxNumberOfTrainingJobs": run.max_jobs,
            "MaxParallelTrainingJobs": run.max_parallel_jobs,
        },
        "ParameterRanges": parameter_ranges(run.ranges),
        "TrainingJobEarlyStoppingType": "Off",
    }
    if run.random_seed is not None:
        tuning_config["RandomSeed"] = run.random_seed
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": config.max_runtime_seconds}
    spot: dict[str, Any] = {}
    if run.spot:
        # Managed Spot: wait for capacity up to MaxWaitTimeInSeconds (>= the runtime);
        # checkpoints under the run's prefix let an interrupted job resume.
        stopping["MaxWaitTimeInSeconds"] = config.spot_max_wait_seconds
        spot = {
            "EnableManagedSpotTraining": True,
            "CheckpointConfig": {"S3Uri": run.s3_uri("checkpoints/")},
        }
    return {
        "HyperParameterTuningJobName": run.names.tuning_job,
        "HyperParameterTuningJobConfig": tuning_config,
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {
                "TrainingImage": image_uri,
                "TrainingInputMode": "File",
            },
            "RoleArn": role_arn,
            "StaticHyperParameters": static_hyperparameters(run, config),
            # Several instances split the train objects between them; Linear
            # Learner needs the whole validation set on every instance.
            "InputDataConfig": [
                _channel(
                    "train",
                    train_uri,
                    "ShardedByS3Key" if run.training_instance_count > 1 else "FullyReplicated",
                ),
                _channel("validation", validation_uri, "FullyReplicated"),
            ],
            "OutputDataConfig": output,
            "ResourceConfig": resources,
            "StoppingCondition": stopping,
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": True,
            **spot,
        },
        "Tags": run.tag_list() if tags is None else list(tags),
    }


def start_tuning(
    run: RunSpec,
    config: PipelineConfig,
    data: dict[str, Any],
    sm: Any,
    *,
    image_uri: str,
    role_arn: str,
    kms_key_arn: str | None = None,
) -> dict[str, Any]:
    """Create the tuning job, or adopt it if a retry finds it already there
    (only if its tags are this run's: otherwise :class:`NameCollisionError`).

    Returns ``$.tuning``: ``{name, status, polls: 0, created}``. Raises
    :class:`TooFewTrainObjectsError` when the data has fewer train objects
    than ``training_instance_count`` (the tutorial pickle makes one)."""
    train_objects = int((data.get("splits") or {}).get("train", {}).get("objects", 1))
    if train_objects < run.training_instance_count:
        raise TooFewTrainObjectsError(
            f"training_instance_count: {run.training_instance_count} instances but only "
            f"{train_objects} train object(s); use a sharded source with at least as many"
        )
    request = build_tuning_request(
        run,
        config,
        image_uri=image_uri,
        role_arn=role_arn,
        train_uri=data["train_uri"],
        validation_uri=data["validation_uri"],
        output_uri=run.s3_uri("tuning/"),
        kms_key_arn=kms_key_arn,
    )
    name = run.names.tuning_job
    try:
        sm.create_hyper_parameter_tuning_job(**request)
        return {"name": name, "status": "InProgress", "polls": 0, "created": True}
    except ClientError as e:
        if not is_already_exists(e):
            raise named_error(e, "CreateHyperParameterTuningJob") from e
    try:
        described = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    except ClientError as e:
        raise named_error(e, "DescribeHyperParameterTuningJob") from e
    adopt_or_collide(
        sm, "tuning job", name, str(described["HyperParameterTuningJobArn"]), request["Tags"]
    )
    return {
        "name": name,
        "status": str(described["HyperParameterTuningJobStatus"]),
        "polls": 0,
        "created": False,
    }
