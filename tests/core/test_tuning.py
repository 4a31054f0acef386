from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from pipeline_testlib import (
    BUCKET,
    IMAGE,
    ROLE,
    SALT,
    STACK_TAG,
    WIDE_CONFIG,
    make_run,
    sagemaker_client,
    stub_already_exists,
    stubbed,
    tuning_description,
)

from pipeline_core.config import DEFAULTS
from pipeline_core.errors import (
    NameCollisionError,
    ResourceLimitError,
    ThrottlingError,
    TooFewTrainObjectsError,
)
from pipeline_core.names import STACK_TAG_KEY
from pipeline_core.tuning import build_tuning_request, start_tuning

DATA = {
    "train_uri": f"s3://{BUCKET}/runs/exec-1/data/train/",
    "validation_uri": f"s3://{BUCKET}/runs/exec-1/data/validation/",
}


def _request(run: Any = None, **kwargs: Any) -> dict[str, Any]:
    run = run or make_run("exec-1")
    return build_tuning_request(
        run,
        DEFAULTS,
        image_uri=IMAGE,
        role_arn=ROLE,
        train_uri=DATA["train_uri"],
        validation_uri=DATA["validation_uri"],
        output_uri=run.s3_uri("tuning/"),
        **kwargs,
    )


def test_tuning_request_has_the_exact_shape_for_the_defaults() -> None:
    run = make_run("exec-1")
    channel = {
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "ContentType": "application/x-recordio-protobuf",
        "CompressionType": "None",
    }
    train = {**channel, "ChannelName": "train"}
    train["DataSource"] = {
        "S3DataSource": {**channel["DataSource"]["S3DataSource"], "S3Uri": DATA["train_uri"]}
    }
    validation = {**channel, "ChannelName": "validation"}
    validation["DataSource"] = {
        "S3DataSource": {**channel["DataSource"]["S3DataSource"], "S3Uri": DATA["validation_uri"]}
    }
    assert _request(run) == {
        "HyperParameterTuningJobName": run.names.tuning_job,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {
                "Type": "Maximize",
                "MetricName": "validation:binary_f_beta",
            },
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {
                "ContinuousParameterRanges": [
                    {"Name": "wd", "MinValue": "1e-07", "MaxValue": "1.0", "ScalingType": "Auto"},
                    {
                        "Name": "learning_rate",
                        "MinValue": "1e-05",
                        "MaxValue": "1.0",
                        "ScalingType": "Auto",
                    },
                ],
                "IntegerParameterRanges": [
                    {
                        "Name": "mini_batch_size",
                        "MinValue": "100",
                        "MaxValue": "2000",
                        "ScalingType": "Auto",
                    }
                ],
                "CategoricalParameterRanges": [],
            },
            "TrainingJobEarlyStoppingType": "Off",
        },
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "RoleArn": ROLE,
            "StaticHyperParameters": {"feature_dim": "784", "predictor_type": "binary_classifier"},
            "InputDataConfig": [train, validation],
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/runs/exec-1/tuning/"},
            "ResourceConfig": {
                "InstanceType": "ml.c4.xlarge",
                "InstanceCount": 1,
                "VolumeSizeInGB": 10,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": True,
        },
        "Tags": [
            {"Key": "mnist-ll:stack", "Value": STACK_TAG},
            {"Key": "mnist-ll:execution", "Value": "exec-1"},
            {"Key": "mnist-ll:deployment", "Value": SALT},
        ],
    }


def test_untuned_mini_batch_size_becomes_static() -> None:
    run = make_run("e", {"ranges": [{"name": "wd", "min_value": 1e-6, "max_value": 0.5}]})
    request = _request(run)
    static = request["TrainingJobDefinition"]["StaticHyperParameters"]
    assert static["mini_batch_size"] == str(DEFAULTS.mini_batch_size)
    ranges = request["HyperParameterTuningJobConfig"]["ParameterRanges"]
    assert ranges["IntegerParameterRanges"] == []
    assert ranges["ContinuousParameterRanges"][0]["MaxValue"] == "0.5"


def test_input_overrides_reach_the_request() -> None:
    run = make_run(
        "e",
        {
            "strategy": "Random",
            "max_jobs": 3,
            "max_parallel_jobs": 3,
            "training_instance_type": "ml.m5.large",
        },
    )
    request = _request(run)
    assert request["HyperParameterTuningJobConfig"]["Strategy"] == "Random"
    assert request["HyperParameterTuningJobConfig"]["ResourceLimits"] == {
        "MaxNumberOfTrainingJobs": 3,
        "MaxParallelTrainingJobs": 3,
    }
    assert request["TrainingJobDefinition"]["ResourceConfig"]["InstanceType"] == "ml.m5.large"


KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_kms_key_encrypts_the_model_output_and_the_training_volumes() -> None:
    definition = _request(kms_key_arn=KEY)["TrainingJobDefinition"]
    assert definition["OutputDataConfig"] == {
        "S3OutputPath": f"s3://{BUCKET}/runs/exec-1/tuning/",
        "KmsKeyId": KEY,
    }
    assert definition["ResourceConfig"] == {
        "InstanceType": "ml.c4.xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 10,
        "VolumeKmsKeyId": KEY,
    }


def test_without_kms_no_key_is_named_anywhere() -> None:
    definition = _request()["TrainingJobDefinition"]
    assert "KmsKeyId" not in definition["OutputDataConfig"]
    assert "VolumeKmsKeyId" not in definition["ResourceConfig"]


def test_kms_volume_key_is_left_out_for_instance_types_with_local_storage() -> None:
    run = make_run("exec-1", {"training_instance_type": "ml.g4dn.xlarge"}, config=WIDE_CONFIG)
    definition = _request(run, kms_key_arn=KEY)["TrainingJobDefinition"]
    assert "VolumeKmsKeyId" not in definition["ResourceConfig"]  # SageMaker would refuse it
    assert definition["OutputDataConfig"]["KmsKeyId"] == KEY


def test_start_tuning_with_kms_sends_both_keys() -> None:
    run = make_run("exec-1")
    sm = sagemaker_client()
    expected = _request(run)
    expected["TrainingJobDefinition"]["OutputDataConfig"]["KmsKeyId"] = KEY
    expected["TrainingJobDefinition"]["ResourceConfig"]["VolumeKmsKeyId"] = KEY
    with stubbed(sm) as stub:
        stub.add_response(
            "create_hyper_parameter_tuning_job",
            {
                "HyperParameterTuningJobArn": "arn:aws:sagemaker:us-east-1:1:hyper-parameter-tuning-job/x"  # noqa: E501
            },
            expected_params=expected,
        )
        start_tuning(run, DEFAULTS, DATA, sm, image_uri=IMAGE, role_arn=ROLE, kms_key_arn=KEY)


@pytest.mark.parametrize(
    "raw",
    [{}, {"training_instance_type": "ml.g4dn.xlarge", "max_jobs": 1, "max_parallel_jobs": 1}],
)
@pytest.mark.parametrize("key", [None, KEY])
def test_training_jobs_are_network_isolated_with_encrypted_inter_container_traffic(
    raw: dict[str, Any], key: str | None
) -> None:
    definition = _request(make_run("exec-1", raw, config=WIDE_CONFIG), kms_key_arn=key)[
        "TrainingJobDefinition"
    ]
    assert definition["EnableNetworkIsolation"] is True
    assert definition["EnableInterContainerTrafficEncryption"] is True
    assert "VpcConfig" not in definition


def test_start_tuning_sends_the_built_request() -> None:
    run = make_run("exec-1")
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_response(
            "create_hyper_parameter_tuning_job",
            {
                "HyperParameterTuningJobArn": "arn:aws:sagemaker:us-east-1:1:hyper-parameter-tuning-job/x"  # noqa: E501
            },
            expected_params=_request(run),
        )
        out = start_tuning(run, DEFAULTS, DATA, sm, image_uri=IMAGE, role_arn=ROLE)
    assert out == {
        "name": run.names.tuning_job,
        "status": "InProgress",
        "polls": 0,
        "created": True,
    }


def test_start_tuning_adopts_the_job_a_previous_attempt_created() -> None:
    run = make_run("exec-1")
    name = run.names.tuning_job
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_client_error(
            "create_hyper_parameter_tuning_job",
            service_error_code="ResourceInUse",
            service_message=f"Tuning job {name} already exists",
            expected_params=_request(run),
        )
        stub.add_response(
            "describe_hyper_parameter_tuning_job",
            tuning_description(name, "Completed"),
            expected_params={"HyperParameterTuningJobName": name},
        )
        stub.add_response(
            "list_tags",
            {"Tags": run.tag_list()},
            expected_params={
                "ResourceArn": tuning_description(name, "Completed")["HyperParameterTuningJobArn"]
            },
        )
        out = start_tuning(run, DEFAULTS, DATA, sm, image_uri=IMAGE, role_arn=ROLE)
    assert out == {"name": name, "status": "Completed", "polls": 0, "created": False}


@pytest.mark.parametrize(
    "tags",
    [
        [],
        [{"Key": STACK_TAG_KEY, "Value": "Beta"}],
        # The same stack name and execution name in an earlier deployment (destroy +
        # redeploy): its artifacts lived in the deleted bucket.
        [
            {**t, "Value": "0000"} if t["Key"] == "mnist-ll:deployment" else t
            for t in make_run("exec-1").tag_list()
        ],
    ],
)
def test_start_tuning_never_adopts_a_job_that_is_not_this_executions(
    tags: list[dict[str, str]],
) -> None:
    run = make_run("exec-1")
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub_already_exists(stub, "create_hyper_parameter_tuning_job", _request(run), tags)
        with pytest.raises(NameCollisionError, match=f"tuning job {run.names.tuning_job}"):
            start_tuning(run, DEFAULTS, DATA, sm, image_uri=IMAGE, role_arn=ROLE)


@pytest.mark.parametrize(
    ("code", "error"),
    [("ThrottlingException", ThrottlingError), ("ResourceLimitExceeded", ResourceLimitError)],
)
def test_start_tuning_raises_named_errors(code: str, error: type[Exception]) -> None:
    run = make_run("exec-1")
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_client_error(
            "create_hyper_parameter_tuning_job",
            service_error_code=code,
            service_message="The account-level service limit 'ml.c4.xlarge for training job usage' is 0",  # noqa: E501
            expected_params=_request(run),
        )
        with pytest.raises(error, match="CreateHyperParameterTuningJob"):
            start_tuning(run, DEFAULTS, DATA, sm, image_uri=IMAGE, role_arn=ROLE)


def test_resource_limit_error_names_the_quota() -> None:
    run = make_run("exec-1")
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_client_error(
            "create_hyper_parameter_tuning_job",
            service_error_code="ResourceLimitExceeded",
            service_message="The account-level service limit 'ml.c4.xlarge for training job usage' is 0",  # noqa: E501
            expected_params=_request(run),
        )
        with pytest.raises(ResourceLimitError, match=r"ml.c4.xlarge for training job usage"):
            start_tuning(run, DEFAULTS, DATA, sm, image_uri=IMAGE, role_arn=ROLE)


def test_start_tuning_does_not_swallow_validation_errors() -> None:
    run = make_run("exec-1")
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_client_error(
            "create_hyper_parameter_tuning_job",
            service_error_code="ValidationException",
            service_message="Invalid S3 URI",
            expected_params=_request(run),
        )
        with pytest.raises(ClientError, match="Invalid S3 URI"):
            start_tuning(run, DEFAULTS, DATA, sm, image_uri=IMAGE, role_arn=ROLE)


@pytest.mark.parametrize(
    ("instance_type", "local"),
    [
        ("ml.c4.xlarge", False),
        ("ml.m4.xlarge", False),
        ("ml.m5.large", False),
        ("ml.t2.medium", False),
        ("ml.m5d.large", True),
        ("ml.c5d.xlarge", True),
        ("ml.g4dn.xlarge", True),
        ("ml.p3dn.24xlarge", True),
        ("ml.p4d.24xlarge", True),
        ("ml.g5.xlarge", True),
    ],
)
def test_instance_types_with_local_storage_are_recognised(instance_type: str, local: bool) -> None:
    from pipeline_core.config import has_local_storage

    assert has_local_storage(instance_type) is local


def test_random_seed_reaches_the_request_only_when_given() -> None:
    assert "RandomSeed" not in _request()["HyperParameterTuningJobConfig"]
    seeded = _request(make_run("e", {"random_seed": 42}))
    assert seeded["HyperParameterTuningJobConfig"]["RandomSeed"] == 42


def test_several_instances_shard_the_train_channel_and_replicate_validation() -> None:
    run = make_run("exec-1", {"training_instance_count": 2})
    request = _request(run)
    definition = request["TrainingJobDefinition"]
    assert definition["ResourceConfig"]["InstanceCount"] == 2
    kinds = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
        for c in definition["InputDataConfig"]
    }
    assert kinds == {"train": "ShardedByS3Key", "validation": "FullyReplicated"}
    sm = sagemaker_client()
    data = {**DATA, "splits": {"train": {"rows": 100, "objects": 2}}}
    with stubbed(sm) as stub:  # the service model accepts the request
        stub.add_response(
            "create_hyper_parameter_tuning_job",
            {"HyperParameterTuningJobArn": "arn:aws:sagemaker:us-east-1:1:x/y"},
            expected_params=request,
        )
        start_tuning(run, DEFAULTS, data, sm, image_uri=IMAGE, role_arn=ROLE)


def test_one_instance_keeps_every_channel_fully_replicated() -> None:
    definition = _request()["TrainingJobDefinition"]
    assert definition["ResourceConfig"]["InstanceCount"] == 1
    assert {
        c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
        for c in definition["InputDataConfig"]
    } == {"FullyReplicated"}


def test_fewer_train_objects_than_instances_fails_before_any_call() -> None:
    run = make_run("exec-1", {"training_instance_count": 2})
    sm = sagemaker_client()
    with stubbed(sm), pytest.raises(TooFewTrainObjectsError, match="2 instances but only 1"):
        # the tutorial pickle converts into one train object
        start_tuning(
            run,
            DEFAULTS,
            {**DATA, "splits": {"train": {"rows": 50000, "objects": 1}}},
            sm,
            image_uri=IMAGE,
            role_arn=ROLE,
        )


def test_spot_tuning_uses_managed_spot_with_a_wait_bound_and_run_checkpoints() -> None:
    run = make_run("exec-1", {"spot": True})
    request = _request(run)
    definition = request["TrainingJobDefinition"]
    assert definition["EnableManagedSpotTraining"] is True
    stopping = definition["StoppingCondition"]
    assert stopping["MaxWaitTimeInSeconds"] >= stopping["MaxRuntimeInSeconds"]
    assert definition["CheckpointConfig"]["S3Uri"] == f"s3://{run.bucket}/{run.prefix}checkpoints/"
    sm = sagemaker_client()
    with stubbed(sm) as stub:  # the service model accepts the request
        stub.add_response(
            "create_hyper_parameter_tuning_job",
            {
                "HyperParameterTuningJobArn": "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/x"  # noqa: E501
            },
            expected_params=request,
        )
        sm.create_hyper_parameter_tuning_job(**request)


def test_on_demand_tuning_has_no_spot_settings() -> None:
    definition = _request(make_run("exec-1"))["TrainingJobDefinition"]
    assert "EnableManagedSpotTraining" not in definition
    assert "MaxWaitTimeInSeconds" not in definition["StoppingCondition"]
