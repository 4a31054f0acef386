from __future__ import annotations

import importlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY
from moto import mock_aws
from pipeline_testlib import (
    BUCKET,
    ENDPOINT,
    IMAGE,
    LOCK_TABLE,
    REGION,
    ROLE,
    SALT,
    STACK_TAG,
    dynamodb_client,
    endpoint_config_description,
    endpoint_description,
    make_dataset,
    make_run,
    pickle_gz,
    sagemaker_client,
    stub_acquire,
    stub_create_endpoint,
    stub_endpoint_missing,
    stub_model_and_config,
    stub_release,
    stub_serving_config,
    stubbed,
    tuning_description,
    tuning_result,
)

from lambdas import (
    cleanup,
    cleanup_complete,
    convert,
    convert_shard,
    deploy,
    describe_endpoint,
    describe_transform,
    describe_tuning,
    endpoint_ttl,
    evaluate,
    execution_ended,
    finalize_dataset,
    load_model_package,
    schedule_ttl,
    start_transform,
    start_tuning,
    validate_input,
)
from lambdas._env import BOTO_CONFIG, Settings, client, load_settings
from pipeline_core.config import DEFAULTS
from pipeline_core.errors import (
    EndpointBusyError,
    InvalidInputError,
    ModelTestDataMissingError,
    ThrottlingError,
)
from pipeline_core.recordio import encode_dense
from pipeline_core.tuning import build_tuning_request

HANDLERS = [
    validate_input,
    convert,
    start_tuning,
    describe_tuning,
    deploy,
    describe_endpoint,
    evaluate,
    cleanup,
    convert_shard,
    finalize_dataset,
    cleanup_complete,
    schedule_ttl,
    start_transform,
    describe_transform,
    endpoint_ttl,
    execution_ended,
]


class FakeContext:
    function_name = "mnist-ll-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:mnist-ll-test"
    memory_limit_in_mb = 1024
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/mnist-ll-test"
    log_stream_name = "test"

    def __init__(self, remaining_ms: int = 600_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


ENV = {
    "PIPELINE_CONFIG": DEFAULTS.to_json(),
    "DATA_BUCKET": BUCKET,
    "SAGEMAKER_ROLE_ARN": ROLE,
    "LINEAR_LEARNER_IMAGE": IMAGE,
    "DEFAULT_ENDPOINT_NAME": ENDPOINT,
    "STACK_TAG": STACK_TAG,
    "DEPLOYMENT_SALT": SALT,
    "LOCK_TABLE": LOCK_TABLE,
    "AWS_REGION": REGION,
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ALLOW_LOCAL_SOURCES", raising=False)
    return ENV


def _inject(monkeypatch: pytest.MonkeyPatch, module: Any, clients: Any) -> None:
    monkeypatch.setattr(module, "_clients", lambda _s: clients)


RUN = make_run("exec-1")


# -- factories ------------------------------------------------


def test_handlers_import_without_reading_env_or_creating_clients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_clients(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("boto3 client created at import time")

    monkeypatch.setattr(boto3, "client", no_clients)
    for name in ("PIPELINE_CONFIG", "DATA_BUCKET", "STACK_TAG"):
        monkeypatch.delenv(name, raising=False)
    for module in HANDLERS:
        importlib.reload(module)


def test_settings_come_from_the_environment(env: dict[str, str]) -> None:
    s = load_settings()
    assert (s.bucket, s.role_arn, s.image_uri, s.stack_tag) == (BUCKET, ROLE, IMAGE, STACK_TAG)
    assert s.default_endpoint_name == ENDPOINT and s.region == REGION
    assert s.config == DEFAULTS and s.allow_local_sources is False


def test_clients_use_standard_retries_and_honour_endpoint_url_overrides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", "http://127.0.0.1:4599")
    sm = client("sagemaker", REGION)
    assert sm.meta.config.retries == {"mode": "standard", "total_max_attempts": 5}
    assert sm.meta.endpoint_url == "http://127.0.0.1:4599"
    assert BOTO_CONFIG.retries == {"mode": "standard", "total_max_attempts": 5}


def test_a_client_is_reused_until_an_aws_variable_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", "http://127.0.0.1:4599")
    first = client("sagemaker", REGION)
    assert client("sagemaker", REGION) is first
    assert client("sagemaker", "eu-west-1") is not first
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", "http://127.0.0.1:4600")
    moved = client("sagemaker", REGION)
    assert moved is not first and moved.meta.endpoint_url == "http://127.0.0.1:4600"


# -- ValidateInput ------------------------------------------------


@pytest.fixture
def no_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """ValidateInput's look at the run's endpoint finds none (a new endpoint)."""
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub_endpoint_missing(stub, ENDPOINT)
        _inject(monkeypatch, validate_input, sm)
        yield


def test_validate_input_handler_returns_the_run_spec(
    env: dict[str, str], no_endpoint: None
) -> None:
    out = validate_input.handler(
        {"input": {"Comment": "Insert your JSON here"}, "execution_name": "exec-1"}, FakeContext()
    )
    assert out == RUN.to_dict()
    json.dumps(out)


def test_validate_input_handler_raises_named_error(env: dict[str, str]) -> None:
    with pytest.raises(InvalidInputError, match=r"^target_digit"):
        validate_input.handler(
            {"input": {"target_digit": 12}, "execution_name": "e"}, FakeContext()
        )


def test_validate_input_allows_local_sources_only_when_the_env_says_so(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, no_endpoint: None
) -> None:
    event = {"input": {"source": "/data/mnist.pkl.gz"}, "execution_name": "e"}
    with pytest.raises(InvalidInputError, match=r"^source"):
        validate_input.handler(event, FakeContext())
    monkeypatch.setenv("ALLOW_LOCAL_SOURCES", "true")
    assert validate_input.handler(event, FakeContext())["source"] == "/data/mnist.pkl.gz"


def test_validate_input_refuses_a_serverless_run_on_an_instance_endpoint(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_response(
            "describe_endpoint",
            endpoint_description(ENDPOINT, "InService", "mnist-ll-old-config"),
            expected_params={"EndpointName": ENDPOINT},
        )
        stub_serving_config(stub, "mnist-ll-old-config", serverless=False)
        _inject(monkeypatch, validate_input, sm)
        with pytest.raises(InvalidInputError, match=r"^endpoint.mode: 'serverless'"):
            validate_input.handler(
                {"input": {"endpoint": {"mode": "serverless"}}, "execution_name": "e"},
                FakeContext(),
            )


# -- ConvertDataset ------------------------------------------------


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        c = boto3.client("s3", region_name=REGION)
        c.create_bucket(Bucket=BUCKET)
        yield c


def test_convert_handler_writes_the_splits(
    env: dict[str, str], s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.put_object(Bucket=BUCKET, Key="src/mnist.pkl.gz", Body=pickle_gz(make_dataset()))
    _inject(monkeypatch, convert, s3)
    run = make_run("exec-1", {"source": f"s3://{BUCKET}/src/mnist.pkl.gz"})
    out = convert.handler({"run": run.to_dict()}, FakeContext())
    assert out["counts"] == {"train": 60, "validation": 20, "test": 20}
    assert out["train_uri"] == f"s3://{BUCKET}/runs/exec-1/data/train/"


def test_convert_handler_refuses_local_sources_without_the_flag(
    env: dict[str, str], s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _inject(monkeypatch, convert, s3)
    run = make_run("e", {"source": "/etc/passwd"}, allow_local_sources=True)
    with pytest.raises(InvalidInputError, match=r"^source"):
        convert.handler({"run": run.to_dict()}, FakeContext())


def test_convert_handler_without_run_names_the_missing_key(env: dict[str, str]) -> None:
    with pytest.raises(InvalidInputError, match=r"^run"):
        convert.handler({}, FakeContext())


def test_shard_handlers_convert_each_shard_then_finalize_the_manifest(
    env: dict[str, str], s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _inject(monkeypatch, convert_shard, s3)
    _inject(monkeypatch, finalize_dataset, s3)
    run = make_run("exec-1", {"source": f"s3://{BUCKET}/set/", "training_instance_count": 2})
    for i, (split, (x, y)) in enumerate(
        zip(("train", "train", "validation", "test"), make_dataset((30, 30, 20, 20)), strict=False)
    ):
        buf = io.BytesIO()
        np.savez(buf, x=x, y=y)
        key = f"set/{split}/p{i}.npz"
        s3.put_object(Bucket=BUCKET, Key=key, Body=buf.getvalue())
        out = convert_shard.handler({"run": run.to_dict(), "item": {"Key": key}}, FakeContext())
        assert out["rows"] == x.shape[0]
    data = finalize_dataset.handler({"run": run.to_dict()}, FakeContext())
    assert data["splits"]["train"] == {"rows": 60, "objects": 2}


def _approved_version(arn: str, **meta: str) -> dict[str, Any]:
    return {
        "ModelPackageName": "mnist-ll-models",
        "ModelPackageGroupName": "mnist-ll-models",
        "ModelPackageArn": arn,
        "CreationTime": datetime(2026, 12, 1, tzinfo=UTC),
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelApprovalStatus": "Approved",
        "InferenceSpecification": {
            "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://b/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        "CustomerMetadataProperties": {"execution": "exec-s", "target_digit": "0", **meta},
    }


def test_load_model_package_handler_finds_a_sharded_versions_test_objects_or_fails_named(
    env: dict[str, str], s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mnist-ll-models/2"
    prefix = "runs/exec-s/data/"
    manifest = {"source_kind": "sharded", "splits": {"test": {"rows": 5, "objects": 1}}}
    manifest["files"] = {"test": [f"{prefix}test/a.npz.0000.rec"]}
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}manifest.json", Body=json.dumps(manifest))
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}test/a.npz.0000.rec", Body=b"rec")
    sm = sagemaker_client()
    _inject(monkeypatch, load_model_package, (sm, s3))
    event = {"run": make_run("again-1", {"model_package_arn": arn}).to_dict()}
    sharded = {
        "test_data": f"s3://{BUCKET}/{prefix}test/",
        "test_manifest": f"s3://{BUCKET}/{prefix}manifest.json",
    }
    with stubbed(sm) as stub:
        stub.add_response("describe_model_package", _approved_version(arn, **sharded))
        out = load_model_package.handler(event, FakeContext())
    assert out["data"]["manifest_uri"] == sharded["test_manifest"]
    assert out["data"]["splits"] == manifest["splits"]
    s3.delete_object(Bucket=BUCKET, Key=f"{prefix}test/a.npz.0000.rec")
    with stubbed(sm) as stub:
        stub.add_response("describe_model_package", _approved_version(arn, **sharded))
        with pytest.raises(ModelTestDataMissingError, match=r"a\.npz\.0000\.rec"):
            load_model_package.handler(event, FakeContext())


def test_convert_shard_handler_without_item_names_the_missing_key(env: dict[str, str]) -> None:
    with pytest.raises(InvalidInputError, match=r"^item"):
        convert_shard.handler({"run": RUN.to_dict()}, FakeContext())


# -- StartTuning / DescribeTuning ------------------------------------------------


def test_start_tuning_handler_creates_the_job(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sm = sagemaker_client()
    _inject(monkeypatch, start_tuning, sm)
    data = {
        "train_uri": RUN.s3_uri("data/train/"),
        "validation_uri": RUN.s3_uri("data/validation/"),
    }
    with stubbed(sm) as stub:
        stub.add_response(
            "create_hyper_parameter_tuning_job",
            {
                "HyperParameterTuningJobArn": "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/x"  # noqa: E501
            },
            expected_params=build_tuning_request(
                RUN,
                DEFAULTS,
                image_uri=IMAGE,
                role_arn=ROLE,
                train_uri=data["train_uri"],
                validation_uri=data["validation_uri"],
                output_uri=RUN.s3_uri("tuning/"),
            ),
        )
        out = start_tuning.handler({"run": RUN.to_dict(), "data": data}, FakeContext())
    assert out == {
        "name": RUN.names.tuning_job,
        "status": "InProgress",
        "polls": 0,
        "created": True,
    }


def test_describe_tuning_handler_polls(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sm = sagemaker_client()
    _inject(monkeypatch, describe_tuning, sm)
    name = RUN.names.tuning_job
    with stubbed(sm) as stub:
        stub.add_response(
            "describe_hyper_parameter_tuning_job",
            tuning_description(name, "InProgress"),
            expected_params={"HyperParameterTuningJobName": name},
        )
        out = describe_tuning.handler(
            {"run": RUN.to_dict(), "tuning": {"name": name, "status": "InProgress", "polls": 0}},
            FakeContext(),
        )
    assert (out["status"], out["polls"], out["gate"]["passed"]) == ("InProgress", 1, False)


# -- Deploy / DescribeEndpoint ------------------------------------------------


def test_deploy_handler_creates_the_endpoint(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sm, ddb = sagemaker_client(), dynamodb_client()
    _inject(monkeypatch, deploy, (sm, ddb))
    with stubbed(sm) as stub, stubbed(ddb) as leases:
        stub_acquire(leases, ENDPOINT, "exec-1")  # the lease first, then the endpoint
        stub_endpoint_missing(stub)
        stub_model_and_config(stub, RUN, tuning_result())
        stub_create_endpoint(stub, RUN)
        out = deploy.handler({"run": RUN.to_dict(), "tuning": tuning_result()}, FakeContext())
    assert out["action"] == "create" and out["endpoint_name"] == ENDPOINT


def test_deploy_handler_fails_busy_without_touching_the_endpoint_while_another_holds_it(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sm, ddb = sagemaker_client(), dynamodb_client()
    _inject(monkeypatch, deploy, (sm, ddb))
    with stubbed(sm), stubbed(ddb) as leases:  # no SageMaker call at all
        stub_acquire(leases, ENDPOINT, "exec-1", busy_by="exec-0")
        with pytest.raises(EndpointBusyError, match=f"endpoint {ENDPOINT} is being deployed"):
            deploy.handler({"run": RUN.to_dict(), "tuning": tuning_result()}, FakeContext())


def test_deploy_handler_releases_the_lease_when_the_deploy_fails(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sm, ddb = sagemaker_client(), dynamodb_client()
    _inject(monkeypatch, deploy, (sm, ddb))
    with stubbed(sm) as stub, stubbed(ddb) as leases:
        stub_acquire(leases, ENDPOINT, "exec-1")
        stub.add_client_error(
            "describe_endpoint", service_error_code="ThrottlingException", http_status_code=400
        )
        stub_release(leases, ENDPOINT, "exec-1")
        with pytest.raises(ThrottlingError):
            deploy.handler({"run": RUN.to_dict(), "tuning": tuning_result()}, FakeContext())


def test_deploy_handler_serverless_run_on_an_instance_endpoint_fails_and_frees_the_lease(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A serverless run on the stack's instance-based endpoint: InvalidInputError
    before any model, config or update, and the lease is given back at once."""
    sm, ddb = sagemaker_client(), dynamodb_client()
    _inject(monkeypatch, deploy, (sm, ddb))
    run = make_run("exec-1", {"endpoint": {"mode": "serverless"}})
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}"
    with stubbed(sm) as stub, stubbed(ddb) as leases:
        stub_acquire(leases, ENDPOINT, "exec-1")
        stub.add_response(
            "describe_endpoint",
            endpoint_description(ENDPOINT, "InService", "mnist-ll-old-config"),
            expected_params={"EndpointName": ENDPOINT},
        )
        stub.add_response(
            "list_tags",
            {"Tags": [{"Key": "mnist-ll:stack", "Value": STACK_TAG}]},
            expected_params={"ResourceArn": arn},
        )
        stub_serving_config(stub, "mnist-ll-old-config", serverless=False)
        stub_release(leases, ENDPOINT, "exec-1")
        with pytest.raises(InvalidInputError, match="another endpoint_name"):
            deploy.handler({"run": run.to_dict(), "tuning": tuning_result()}, FakeContext())


def test_describe_endpoint_handler_retires_on_in_service(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sm = sagemaker_client()
    _inject(monkeypatch, describe_endpoint, (sm, dynamodb_client()))
    deployed = {
        "endpoint_name": ENDPOINT,
        "endpoint_config_name": RUN.names.endpoint_config,
        "model_name": RUN.names.model,
        "action": "update",
        "previous_config": "old",
    }
    with stubbed(sm) as stub:
        stub.add_response(
            "describe_endpoint",
            endpoint_description(ENDPOINT, "InService", RUN.names.endpoint_config),
            expected_params={"EndpointName": ENDPOINT},
        )
        # Bounded: the config this run superseded, its tags, then the deletes.
        stub.add_response(
            "describe_endpoint_config",
            endpoint_config_description("old", model="old-model"),
            expected_params={"EndpointConfigName": "old"},
        )
        stub.add_response(
            "list_tags",
            {
                "Tags": [
                    {"Key": "mnist-ll:stack", "Value": STACK_TAG},
                    {"Key": "mnist-ll:endpoint", "Value": ENDPOINT},
                ]
            },
            expected_params={
                "ResourceArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/old"
            },
        )
        stub.add_response(
            "delete_endpoint_config", {}, expected_params={"EndpointConfigName": "old"}
        )
        stub.add_response("delete_model", {}, expected_params={"ModelName": "old-model"})
        out = describe_endpoint.handler(
            {
                "run": RUN.to_dict(),
                "deploy": deployed,
                "endpoint": {"status": "Pending", "polls": 0},
            },
            FakeContext(),
        )
    assert out == {
        "status": "InService",
        "polls": 1,
        "failure_reason": None,
        "endpoint_config_name": RUN.names.endpoint_config,
        "retired": [
            {"kind": "endpoint_config", "name": "old"},
            {"kind": "model", "name": "old-model"},
        ],
    }


def test_describe_endpoint_handler_reports_update_failed(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sm, ddb = sagemaker_client(), dynamodb_client()
    _inject(monkeypatch, describe_endpoint, (sm, ddb))
    deployed = {
        "endpoint_name": ENDPOINT,
        "endpoint_config_name": RUN.names.endpoint_config,
        "model_name": RUN.names.model,
    }
    with stubbed(sm) as stub, stubbed(ddb) as leases:
        stub_release(leases, ENDPOINT, "exec-1")  # failed for good: the endpoint is free
        stub.add_response(
            "describe_endpoint",
            endpoint_description(
                ENDPOINT, "InService", "old-config", reason="model failed to load"
            ),
            expected_params={"EndpointName": ENDPOINT},
        )
        # The update's own config and model never served: deleted, the old ones kept.
        stub.add_response(
            "delete_endpoint_config",
            {},
            expected_params={"EndpointConfigName": RUN.names.endpoint_config},
        )
        stub.add_response("delete_model", {}, expected_params={"ModelName": RUN.names.model})
        out = describe_endpoint.handler({"run": RUN.to_dict(), "deploy": deployed}, FakeContext())
    assert out["status"] == "UpdateFailed"
    assert out["retired"] == [
        {"kind": "endpoint_config", "name": RUN.names.endpoint_config},
        {"kind": "model", "name": RUN.names.model},
    ]


def test_describe_transform_handler_deletes_the_model_once_the_job_has_ended(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sm = sagemaker_client()
    _inject(monkeypatch, describe_transform, sm)
    run = make_run("exec-1", {"endpoint": {"mode": "none"}})
    job = f"{run.names.tuning_job}-transform"
    deployed = {"mode": "none", "model_name": run.names.model, "transform_job_name": job}
    description = {
        "TransformJobName": job,
        "TransformJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{job}",
        "ModelName": run.names.model,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/k"}}
        },
        "TransformResources": {"InstanceType": "ml.m4.xlarge", "InstanceCount": 1},
        "CreationTime": "2026-11-30T13:00:00Z",
    }
    event = {"run": run.to_dict(), "deploy": deployed, "transform": {"polls": 0}}
    with stubbed(sm) as stub:  # still running: the model is kept
        stub.add_response(
            "describe_transform_job",
            {**description, "TransformJobStatus": "InProgress"},
            expected_params={"TransformJobName": job},
        )
        assert describe_transform.handler(event, FakeContext())["retired"] == []
    for status in ("Completed", "Failed", "Stopped"):
        with stubbed(sm) as stub:
            stub.add_response(
                "describe_transform_job",
                {**description, "TransformJobStatus": status},
                expected_params={"TransformJobName": job},
            )
            stub.add_response("delete_model", {}, expected_params={"ModelName": run.names.model})
            out = describe_transform.handler(event, FakeContext())
        assert out["status"] == status
        assert out["retired"] == [{"kind": "model", "name": run.names.model}]


# -- Evaluate ------------------------------------------------


def test_evaluate_handler_invokes_the_endpoint_101_times(
    env: dict[str, str], s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((200, 784), dtype=np.float32)
    y = np.zeros(200, np.float32)
    y[:50] = 1
    s3.put_object(Bucket=BUCKET, Key="runs/exec-1/data/test/test.rec", Body=encode_dense(x, y))
    runtime = boto3.client("sagemaker-runtime", region_name=REGION)
    ddb = dynamodb_client()
    _inject(monkeypatch, evaluate, (s3, runtime, ddb))

    def answer(rows: int) -> dict[str, Any]:
        body = json.dumps({"predictions": [{"score": 0.9, "predicted_label": 1}] * rows}).encode()
        return {
            "Body": StreamingBody(io.BytesIO(body), len(body)),
            "ContentType": "application/json",
        }

    expected = {
        "EndpointName": ENDPOINT,
        "ContentType": "text/csv",
        "Accept": "application/json",
        "Body": ANY,
    }
    data = {
        "test_uri": RUN.s3_uri("data/test/"),
        "files": {"test": RUN.s3_uri("data/test/test.rec")},
    }
    deployed = {"endpoint_name": ENDPOINT, "endpoint_config_name": "c", "model_name": "m"}
    with stubbed(runtime) as stub, stubbed(ddb) as leases:
        stub.add_response("invoke_endpoint", answer(1), expected_params=expected)
        for _ in range(100):
            stub.add_response("invoke_endpoint", answer(2), expected_params=expected)
        stub_release(leases, ENDPOINT, "exec-1")  # done with the endpoint
        out = evaluate.handler(
            {"run": RUN.to_dict(), "data": data, "deploy": deployed}, FakeContext()
        )
    assert out["confusion_matrix"] == {"tp": 50, "fp": 150, "tn": 0, "fn": 0}
    assert out["metrics"]["recall"] == 1.0
    assert out["report_uri"] == f"s3://{BUCKET}/runs/exec-1/report.json"
    # The dashboard's custom metrics (moto's CloudWatch, inside the s3 fixture's mock).
    listed = boto3.client("cloudwatch", region_name=REGION).list_metrics(
        Namespace="MnistLinearLearner"
    )["Metrics"]
    assert {m["MetricName"] for m in listed} == {"TestAccuracy", "TestF1"}
    assert all(m["Dimensions"] == [{"Name": "Stack", "Value": STACK_TAG}] for m in listed)


# -- Cleanup ------------------------------------------------


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_cleanup_handler_does_nothing_on_create_and_update(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, request_type: str
) -> None:
    sm = sagemaker_client()
    _inject(monkeypatch, cleanup, sm)
    with stubbed(sm):  # no call allowed
        out = cleanup.handler(
            {"RequestType": request_type, "PhysicalResourceId": "keep-me"}, FakeContext()
        )
    assert out == {"PhysicalResourceId": "keep-me"}


def test_cleanup_handler_create_gets_a_stable_physical_id(env: dict[str, str]) -> None:
    out = cleanup.handler({"RequestType": "Create"}, FakeContext())
    assert out == {"PhysicalResourceId": f"mnist-ll-cleanup-{STACK_TAG}"}


def test_cleanup_handler_on_delete_removes_our_endpoint_only(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with mock_aws():
        sm = boto3.client("sagemaker", region_name=REGION)
        for name, tags in (
            ("mnist-ll-ours", [{"Key": "mnist-ll:stack", "Value": STACK_TAG}]),
            ("mnist-ll-theirs", []),
        ):
            sm.create_model(
                ModelName=f"{name}-m",
                PrimaryContainer={"Image": "i"},
                ExecutionRoleArn=ROLE,
                Tags=tags,
            )
        _inject(monkeypatch, cleanup, sm)
        out = cleanup.handler({"RequestType": "Delete", "PhysicalResourceId": "p"}, FakeContext())
        assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["mnist-ll-theirs-m"]
    assert out["PhysicalResourceId"] == "p"


def test_cleanup_handler_never_raises(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def get_paginator(self, _op: str) -> Any:
            raise RuntimeError("no network")

    _inject(monkeypatch, cleanup, Broken())
    out = cleanup.handler({"RequestType": "Delete", "PhysicalResourceId": "p"}, FakeContext())
    assert out["PhysicalResourceId"] == "p"


def test_settings_type_is_injectable() -> None:
    assert Settings.__dataclass_fields__.keys() >= {"bucket", "stack_tag", "allow_local_sources"}
