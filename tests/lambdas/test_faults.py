"""Injected faults, end to end through the handlers (botocore Stubber, real retry config)."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody
from botocore.retries import standard
from pipeline_testlib import (
    ENDPOINT,
    IMAGE,
    ROLE,
    STACK_TAG,
    best_job,
    dynamodb_client,
    endpoint_description,
    make_run,
    sagemaker_client,
    stub_acquire,
    stub_create_endpoint,
    stub_endpoint_missing,
    stub_model_and_config,
    stub_release,
    stub_serving_config,
    stubbed,
    training_description,
    tuning_description,
    tuning_result,
)
from test_handlers import ENV, FakeContext

from lambdas import (
    _env,
    cleanup,
    convert,
    deploy,
    describe_endpoint,
    describe_tuning,
    evaluate,
    start_tuning,
)
from pipeline_core.config import DEFAULTS
from pipeline_core.errors import (
    ResourceLimitError,
    ThrottlingError,
    TuningJobFailedError,
)
from pipeline_core.recordio import encode_dense
from pipeline_core.rollout import alarm_names, deployment_config
from pipeline_core.tuning import build_tuning_request

RUN = make_run("exec-1")
NAME = RUN.names.tuning_job
ARN = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}"
OURS = [{"Key": "mnist-ll:stack", "Value": STACK_TAG}]
DATA = {"train_uri": RUN.s3_uri("data/train/"), "validation_uri": RUN.s3_uri("data/validation/")}
TUNING_ARN = "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/"
QUOTA = "The account-level service limit 'ml.c4.xlarge for training job usage' is 0 Instances"


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)


def _inject(monkeypatch: pytest.MonkeyPatch, module: Any, clients: Any) -> None:
    monkeypatch.setattr(module, "_clients", lambda _s: clients)


def _tuning_event(status: str = "InProgress", polls: int = 3) -> dict[str, Any]:
    return {"run": RUN.to_dict(), "tuning": {"name": NAME, "status": status, "polls": polls}}


def _tuning_request() -> dict[str, Any]:
    return build_tuning_request(
        RUN,
        DEFAULTS,
        image_uri=IMAGE,
        role_arn=ROLE,
        train_uri=DATA["train_uri"],
        validation_uri=DATA["validation_uri"],
        output_uri=RUN.s3_uri("tuning/"),
    )


# -- tuning outcomes ----------------------------------------------------------------


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_describe_tuning_handler_reports_failed_and_stopped_for_the_tuning_failed_route(
    monkeypatch: pytest.MonkeyPatch, status: str
) -> None:
    sm = sagemaker_client()
    _inject(monkeypatch, describe_tuning, sm)
    with stubbed(sm) as stub:
        stub.add_response(
            "describe_hyper_parameter_tuning_job",
            tuning_description(NAME, status, reason="AlgorithmError: out of memory"),
            expected_params={"HyperParameterTuningJobName": NAME},
        )
        # An ended job is billed once (no training job ran here).
        stub.add_response(
            "list_training_jobs_for_hyper_parameter_tuning_job",
            {"TrainingJobSummaries": []},
            expected_params={"HyperParameterTuningJobName": NAME},
        )
        out = describe_tuning.handler(_tuning_event(), FakeContext())
    # TuningStatus routes Failed/Stopped to TuningJobNotCompleted -> TuningFailed.
    assert out["status"] == status
    assert out["failure_reason"] == "AlgorithmError: out of memory"
    assert out["best"] is None and out["gate"]["passed"] is False
    assert out["billing"]["billable_seconds"] == 0


def test_describe_tuning_handler_completed_without_best_job_raises_tuning_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sm = sagemaker_client()
    _inject(monkeypatch, describe_tuning, sm)
    with stubbed(sm) as stub:
        stub.add_response(
            "describe_hyper_parameter_tuning_job",
            tuning_description(NAME, "Completed"),
            expected_params={"HyperParameterTuningJobName": NAME},
        )
        with pytest.raises(TuningJobFailedError, match="without a best training job"):
            describe_tuning.handler(_tuning_event(), FakeContext())


def test_describe_tuning_handler_best_job_without_metric_raises_tuning_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sm = sagemaker_client()
    _inject(monkeypatch, describe_tuning, sm)
    best = best_job(f"{NAME}-001-aaaaaaaa", None)
    with stubbed(sm) as stub:
        stub.add_response(
            "describe_hyper_parameter_tuning_job",
            tuning_description(NAME, "Completed", best=best),
            expected_params={"HyperParameterTuningJobName": NAME},
        )
        stub.add_response(
            "describe_training_job",
            training_description(best["TrainingJobName"], "s3://b/m.tar.gz"),
            expected_params={"TrainingJobName": best["TrainingJobName"]},
        )
        with pytest.raises(TuningJobFailedError, match="no objective metric"):
            describe_tuning.handler(_tuning_event(), FakeContext())


# -- StartTuning retried --------------------------------------------------------------


def test_retried_start_tuning_adopts_the_job_and_never_starts_a_second_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sm = sagemaker_client()
    _inject(monkeypatch, start_tuning, sm)
    event = {"run": RUN.to_dict(), "data": DATA}
    creates: list[str] = []
    sm.meta.events.register(
        "provide-client-params.sagemaker.CreateHyperParameterTuningJob",
        lambda params, **_k: creates.append(params["HyperParameterTuningJobName"]),
    )
    with stubbed(sm) as stub:
        # First attempt: created, but the Lambda timed out before answering.
        stub.add_response(
            "create_hyper_parameter_tuning_job",
            {"HyperParameterTuningJobArn": f"{TUNING_ARN}{NAME}"},
            expected_params=_tuning_request(),
        )
        # The retry sends the very same name; SageMaker refuses a second job.
        stub.add_client_error(
            "create_hyper_parameter_tuning_job",
            service_error_code="ResourceInUse",
            service_message=f"Hyperparameter tuning job {NAME} already exists",
            expected_params=_tuning_request(),
        )
        stub.add_response(
            "describe_hyper_parameter_tuning_job",
            tuning_description(NAME, "InProgress"),
            expected_params={"HyperParameterTuningJobName": NAME},
        )
        # Adopted because its tags are this run's (stack, deployment, execution).
        stub.add_response(
            "list_tags",
            {"Tags": RUN.tag_list()},
            expected_params={"ResourceArn": TUNING_ARN + NAME},
        )
        first = start_tuning.handler(event, FakeContext())
        retry = start_tuning.handler(event, FakeContext())
    assert creates == [NAME, NAME]
    assert first == {"name": NAME, "status": "InProgress", "polls": 0, "created": True}
    assert retry == {"name": NAME, "status": "InProgress", "polls": 0, "created": False}


# -- quotas and throttling ------------------------------------------------------------


def test_start_tuning_handler_quota_raises_resource_limit_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sm = sagemaker_client()
    _inject(monkeypatch, start_tuning, sm)
    with stubbed(sm) as stub:
        stub.add_client_error(
            "create_hyper_parameter_tuning_job",
            service_error_code="ResourceLimitExceeded",
            service_message=QUOTA,
            expected_params=_tuning_request(),
        )
        with pytest.raises(ResourceLimitError) as raised:
            start_tuning.handler({"run": RUN.to_dict(), "data": DATA}, FakeContext())
    assert "ml.c4.xlarge for training job usage" in str(raised.value)


def test_deploy_handler_endpoint_quota_raises_resource_limit_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sm, ddb = sagemaker_client(), dynamodb_client()
    _inject(monkeypatch, deploy, (sm, ddb))
    quota = "The account-level service limit 'ml.m4.xlarge for endpoint usage' is 0 Instances"
    with stubbed(sm) as stub, stubbed(ddb) as leases:
        stub_acquire(leases, ENDPOINT, "exec-1")
        stub_release(leases, ENDPOINT, "exec-1")  # nothing was created: free it for the retry
        stub.add_client_error(
            "describe_endpoint",
            service_error_code="ValidationException",
            service_message=f'Could not find endpoint "{ENDPOINT}".',
        )
        stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m"})
        stub.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/c"},
        )
        stub.add_client_error(
            "create_endpoint", service_error_code="ResourceLimitExceeded", service_message=quota
        )
        with pytest.raises(ResourceLimitError, match=r"ml\.m4\.xlarge for endpoint usage"):
            deploy.handler({"run": RUN.to_dict(), "tuning": tuning_result()}, FakeContext())


def _always_throttled(calls: list[str]) -> Any:
    body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()

    class Raw:
        def stream(self, **_k: Any) -> Any:
            yield body

    def send(request: Any, **_k: Any) -> AWSResponse:
        calls.append(request.url)
        headers = {"x-amzn-RequestId": "r", "Content-Type": "application/x-amz-json-1.1"}
        return AWSResponse(request.url, 400, headers, Raw())

    return send


@pytest.mark.parametrize(
    ("module", "event"),
    [
        (describe_tuning, _tuning_event()),
        (start_tuning, {"run": RUN.to_dict(), "data": DATA}),
    ],
    ids=["DescribeTuning", "StartTuning"],
)
def test_throttling_that_outlasts_the_client_retries_raises_throttling_error(
    monkeypatch: pytest.MonkeyPatch, module: Any, event: dict[str, Any]
) -> None:
    """The handler's real client (standard mode, 5 attempts) retries, then ThrottlingError."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda _self, _ctx: 0)
    sm = _env.build_client("sagemaker", "us-east-1")
    calls: list[str] = []
    sm.meta.events.register_first("before-send.sagemaker", _always_throttled(calls))
    _inject(monkeypatch, module, sm)
    with pytest.raises(ThrottlingError, match="still throttled after retries"):
        module.handler(event, FakeContext())
    assert len(calls) == 5  # every attempt the client config allows


def _s3_slow_down(calls: list[str]) -> Any:
    body = (
        b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    )

    class Raw:
        def stream(self, **_k: Any) -> Any:
            yield body

    def send(request: Any, **_k: Any) -> AWSResponse:
        calls.append(request.url)
        return AWSResponse(request.url, 503, {"Content-Type": "application/xml"}, Raw())

    return send


def test_s3_throttling_that_outlasts_the_client_retries_raises_throttling_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Convert's real S3 client (5 attempts) keeps getting SlowDown: ThrottlingError."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda _self, _ctx: 0)
    s3 = _env.build_client("s3", "us-east-1")
    calls: list[str] = []
    s3.meta.events.register_first("before-send.s3", _s3_slow_down(calls))
    _inject(monkeypatch, convert, s3)
    run = make_run("exec-1", {"source": "s3://mnist-ll-data-bucket/sources/mnist.pkl.gz"})
    with pytest.raises(ThrottlingError, match="still throttled after retries"):
        convert.handler({"run": run.to_dict()}, FakeContext())
    assert len(calls) == 5


def test_invoke_endpoint_throttling_that_outlasts_the_client_retries_raises_throttling_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Evaluate's real sagemaker-runtime client (5 attempts), then ThrottlingError."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda _self, _ctx: 0)
    rng = np.random.default_rng(0)
    test_rec = encode_dense(rng.random((4, 784), dtype=np.float32), np.zeros(4, np.float32))
    s3 = boto3.client("s3", region_name="us-east-1")
    runtime = _env.build_client("sagemaker-runtime", "us-east-1")
    calls: list[str] = []
    runtime.meta.events.register_first("before-send.sagemaker-runtime", _always_throttled(calls))
    ddb = dynamodb_client()
    _inject(monkeypatch, evaluate, (s3, runtime, ddb))
    data = {
        "test_uri": RUN.s3_uri("data/test/"),
        "files": {"test": RUN.s3_uri("data/test/test.rec")},
    }
    deployed = {"endpoint_name": ENDPOINT, "endpoint_config_name": "c", "model_name": "m"}
    with stubbed(s3) as stub, stubbed(ddb):  # the lease stays held for the retry
        stub.add_response(
            "get_object",
            {"Body": StreamingBody(io.BytesIO(test_rec), len(test_rec))},
            expected_params={"Bucket": RUN.bucket, "Key": "runs/exec-1/data/test/test.rec"},
        )
        with pytest.raises(ThrottlingError, match="InvokeEndpoint"):
            evaluate.handler(
                {"run": RUN.to_dict(), "data": data, "deploy": deployed}, FakeContext()
            )
    assert len(calls) == 5


# -- endpoint failures ---------------------------------------------------------------


def test_deploy_handler_deletes_a_failed_endpoint_and_creates_it_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sm, ddb = sagemaker_client(), dynamodb_client()
    _inject(monkeypatch, deploy, (sm, ddb))
    with stubbed(sm) as stub, stubbed(ddb) as leases:
        stub_acquire(leases, ENDPOINT, "exec-1")
        stub.add_response(
            "describe_endpoint",
            endpoint_description(
                ENDPOINT, "Failed", "mnist-ll-old-config", reason="CreateEndpoint failed"
            ),
            expected_params={"EndpointName": ENDPOINT},
        )
        stub.add_response("list_tags", {"Tags": OURS}, expected_params={"ResourceArn": ARN})
        stub_model_and_config(stub, RUN, tuning_result())
        stub.add_response("delete_endpoint", {}, expected_params={"EndpointName": ENDPOINT})
        stub_endpoint_missing(stub)
        stub_create_endpoint(stub, RUN)
        out = deploy.handler({"run": RUN.to_dict(), "tuning": tuning_result()}, FakeContext())
    assert out["action"] == "create" and out["endpoint_config_name"] == RUN.names.endpoint_config


def test_failed_update_keeps_the_old_config_serving_and_reports_update_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = "mnist-ll-exec-0-0a0a0a0a-config"
    sm, ddb = sagemaker_client(), dynamodb_client()
    _inject(monkeypatch, deploy, (sm, ddb))
    _inject(monkeypatch, describe_endpoint, (sm, ddb))
    with stubbed(sm) as stub, stubbed(ddb) as leases:
        stub_acquire(leases, ENDPOINT, "exec-1")
        stub_release(leases, ENDPOINT, "exec-1")  # the update failed for good
        stub.add_response(
            "describe_endpoint",
            endpoint_description(ENDPOINT, "InService", old),
            expected_params={"EndpointName": ENDPOINT},
        )
        stub.add_response("list_tags", {"Tags": OURS}, expected_params={"ResourceArn": ARN})
        stub_serving_config(stub, old)
        stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m"})
        stub.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/c"},
        )
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": ARN},
            expected_params={
                "EndpointName": ENDPOINT,
                "EndpointConfigName": RUN.names.endpoint_config,
                # Blue/green (one instance: all at once, then baking), rolled back on the alarms.
                "DeploymentConfig": deployment_config(
                    DEFAULTS.rollout, alarm_names(ENDPOINT), instance_count=1
                ),
            },
        )
        deployed = deploy.handler({"run": RUN.to_dict(), "tuning": tuning_result()}, FakeContext())
        # SageMaker rolled the update back: InService, still on the old config.
        stub.add_response(
            "describe_endpoint",
            endpoint_description(ENDPOINT, "InService", old, reason="Failed to load the new model"),
            expected_params={"EndpointName": ENDPOINT},
        )
        # Only this run's own config and model go; the serving config is kept.
        stub.add_response(
            "delete_endpoint_config",
            {},
            expected_params={"EndpointConfigName": RUN.names.endpoint_config},
        )
        stub.add_response("delete_model", {}, expected_params={"ModelName": RUN.names.model})
        out = describe_endpoint.handler(
            {
                "run": RUN.to_dict(),
                "deploy": deployed,
                "endpoint": {"status": "InProgress", "polls": 2},
            },
            FakeContext(),
        )
    assert deployed["action"] == "update" and deployed["previous_config"] == old
    assert out["status"] == "UpdateFailed"
    assert out["endpoint_config_name"] == old
    assert out["failure_reason"] == "Failed to load the new model"
    assert out["retired"] == [
        {"kind": "endpoint_config", "name": RUN.names.endpoint_config},
        {"kind": "model", "name": RUN.names.model},
    ]


# -- cleanup must never block a stack deletion ---------------------------------------


def test_cleanup_handler_with_unreadable_settings_still_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIPELINE_CONFIG", "{not json")
    _inject(monkeypatch, cleanup, object())  # would fail on any call
    out = cleanup.handler({"RequestType": "Delete", "PhysicalResourceId": "p"}, FakeContext())
    assert out == {"PhysicalResourceId": "p"}


def test_cleanup_handler_with_almost_no_time_left_answers_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sm = sagemaker_client()
    _inject(monkeypatch, cleanup, sm)
    with stubbed(sm):  # no call allowed: 20 s left is inside the 30 s margin
        out = cleanup.handler(
            {"RequestType": "Delete", "PhysicalResourceId": "p"}, FakeContext(remaining_ms=20_000)
        )
    assert out["PhysicalResourceId"] == "p" and out["Data"]["Failed"] == "0"
    assert int(out["Data"]["Deadline"]) > 0  # for isComplete


def test_cleanup_handler_survives_every_call_failing(monkeypatch: pytest.MonkeyPatch) -> None:
    sm = sagemaker_client()
    _inject(monkeypatch, cleanup, sm)
    with stubbed(sm) as stub:
        for op in (
            "list_endpoints",
            "list_endpoint_configs",
            "list_models",
            "list_hyper_parameter_tuning_jobs",
        ):
            stub.add_client_error(op, service_error_code="AccessDeniedException")
        out = cleanup.handler({"RequestType": "Delete", "PhysicalResourceId": "p"}, FakeContext())
    assert out["PhysicalResourceId"] == "p" and out["Data"]["Failed"] == "4"
