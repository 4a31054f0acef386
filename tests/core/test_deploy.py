from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from pipeline_testlib import (
    ENDPOINT,
    IMAGE,
    ROLE,
    SALT,
    STACK_TAG,
    WIDE_CONFIG,
    create_endpoint_params,
    endpoint_description,
    make_run,
    sagemaker_client,
    stub_already_exists,
    stub_create_endpoint,
    stub_endpoint_missing,
    stub_model_and_config,
    stub_serving_config,
    stubbed,
    tuning_result,
)

from pipeline_core.config import DEFAULTS
from pipeline_core.deploy import (
    build_endpoint_config_request,
    build_model_request,
    deploy,
    deploy_tags,
    preflight_endpoint_kind,
)
from pipeline_core.errors import (
    EndpointBusyError,
    EndpointDeploymentFailedError,
    InvalidInputError,
    NameCollisionError,
    ResourceLimitError,
    ThrottlingError,
    TuningJobFailedError,
)
from pipeline_core.names import (
    DEPLOYMENT_TAG_KEY,
    ENDPOINT_TAG_KEY,
    EXECUTION_TAG_KEY,
    STACK_TAG_KEY,
)

ARN = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}"
OURS = [{"Key": STACK_TAG_KEY, "Value": STACK_TAG}]
RUN = make_run("exec-1")
TUNING = tuning_result()


def _model_request() -> dict[str, Any]:
    return build_model_request(RUN, TUNING, image_uri=IMAGE, role_arn=ROLE)


def _config_request() -> dict[str, Any]:
    return build_endpoint_config_request(RUN, DEFAULTS)


def _existing(
    stub: Stubber, status: str, config: str | None, tags: list[dict[str, str]] = OURS, **extra: Any
) -> None:
    stub.add_response(
        "describe_endpoint",
        {**endpoint_description(ENDPOINT, status, config), **extra},
        expected_params={"EndpointName": ENDPOINT},
    )
    stub.add_response("list_tags", {"Tags": tags}, expected_params={"ResourceArn": ARN})


def _deploy(sm: Any, **kwargs: Any) -> dict[str, Any]:
    return deploy(
        RUN,
        DEFAULTS,
        TUNING,
        sm,
        stack_tag=STACK_TAG,
        image_uri=IMAGE,
        role_arn=ROLE,
        sleep=lambda _s: None,
        **kwargs,
    )


def test_model_request_uses_the_best_job_artifacts_with_network_isolation() -> None:
    request = _model_request()
    assert request == {
        "ModelName": RUN.names.model,
        "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": TUNING["best"]["model_artifacts"]},
        "ExecutionRoleArn": ROLE,
        "EnableNetworkIsolation": True,
        "Tags": [
            {"Key": "mnist-ll:stack", "Value": STACK_TAG},
            {"Key": "mnist-ll:execution", "Value": "exec-1"},
            {"Key": DEPLOYMENT_TAG_KEY, "Value": SALT},
            {"Key": ENDPOINT_TAG_KEY, "Value": ENDPOINT},
        ],
    }


def test_endpoint_config_request_has_one_variant_of_the_endpoint_instance_type() -> None:
    run = make_run("exec-1", {"endpoint_instance_type": "ml.t2.medium"}, config=WIDE_CONFIG)
    request = build_endpoint_config_request(run, DEFAULTS)
    assert request["EndpointConfigName"] == run.names.endpoint_config
    assert request["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": run.names.model,
            "InitialInstanceCount": 1,
            "InstanceType": "ml.t2.medium",
            "InitialVariantWeight": 1.0,
        }
    ]


KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_endpoint_config_with_kms_encrypts_the_endpoint_volume() -> None:
    assert build_endpoint_config_request(RUN, DEFAULTS, kms_key_arn=KEY)["KmsKeyId"] == KEY
    assert "KmsKeyId" not in build_endpoint_config_request(RUN, DEFAULTS)


def test_endpoint_config_key_is_left_out_for_instance_types_with_local_storage() -> None:
    run = make_run("exec-1", {"endpoint_instance_type": "ml.c5d.xlarge"}, config=WIDE_CONFIG)
    assert "KmsKeyId" not in build_endpoint_config_request(run, DEFAULTS, kms_key_arn=KEY)


def test_deploy_with_kms_sends_the_key_in_the_endpoint_config() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub_endpoint_missing(stub)
        stub_model_and_config(stub, RUN, TUNING, {**_config_request(), "KmsKeyId": KEY})
        stub_create_endpoint(stub, RUN)
        _deploy(sm, kms_key_arn=KEY)


@pytest.mark.parametrize("key", [None, KEY])
def test_realtime_models_are_always_network_isolated(key: str | None) -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub_endpoint_missing(stub)
        stub.add_response(
            "create_model",
            {"ModelArn": f"arn:aws:sagemaker:us-east-1:123456789012:model/{RUN.names.model}"},
            expected_params={
                "ModelName": RUN.names.model,
                "PrimaryContainer": {
                    "Image": IMAGE,
                    "ModelDataUrl": TUNING["best"]["model_artifacts"],
                },
                "ExecutionRoleArn": ROLE,
                "EnableNetworkIsolation": True,
                "Tags": _model_request()["Tags"],
            },
        )
        stub.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/x"},
            expected_params=build_endpoint_config_request(RUN, DEFAULTS, kms_key_arn=key),
        )
        stub.add_response("create_endpoint", {"EndpointArn": ARN})
        _deploy(sm, kms_key_arn=key)


def test_model_request_without_best_job_raises() -> None:
    with pytest.raises(TuningJobFailedError):
        build_model_request(RUN, {"best": None}, image_uri=IMAGE, role_arn=ROLE)


def test_deploy_creates_a_new_endpoint() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub_endpoint_missing(stub)
        stub_model_and_config(stub, RUN, TUNING)
        stub_create_endpoint(stub, RUN)
        out = _deploy(sm)
    assert out == {
        "endpoint_name": ENDPOINT,
        "endpoint_config_name": RUN.names.endpoint_config,
        "model_name": RUN.names.model,
        "action": "create",
        "previous_config": None,
        "model_data_url": TUNING["best"]["model_artifacts"],
        "mode": "realtime",
    }


def test_deploy_updates_an_existing_endpoint_blue_green() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        _existing(stub, "InService", "mnist-ll-old-config")
        stub_serving_config(stub, "mnist-ll-old-config")
        stub_model_and_config(stub, RUN, TUNING)
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": ARN},
            expected_params={
                "EndpointName": ENDPOINT,
                "EndpointConfigName": RUN.names.endpoint_config,
            },
        )
        out = _deploy(sm)
    assert out["action"] == "update"
    assert out["previous_config"] == "mnist-ll-old-config"


def test_deploy_deletes_a_failed_endpoint_then_creates_it_anew() -> None:
    sm = sagemaker_client()
    sleeps: list[float] = []
    with stubbed(sm) as stub:
        _existing(stub, "Failed", "mnist-ll-older-config")
        stub_model_and_config(stub, RUN, TUNING)
        stub.add_response("delete_endpoint", {}, expected_params={"EndpointName": ENDPOINT})
        stub.add_response(
            "describe_endpoint",
            endpoint_description(ENDPOINT, "Deleting", "mnist-ll-older-config"),
            expected_params={"EndpointName": ENDPOINT},
        )
        stub_endpoint_missing(stub)
        stub_create_endpoint(stub, RUN)
        out = deploy(
            RUN,
            DEFAULTS,
            TUNING,
            sm,
            stack_tag=STACK_TAG,
            image_uri=IMAGE,
            role_arn=ROLE,
            sleep=sleeps.append,
        )
    assert out["action"] == "create"
    assert len(sleeps) == 1
    # The failed endpoint's config (and model) are retired once ours serves.
    assert out["previous_config"] == "mnist-ll-older-config"


def test_deploy_gives_up_when_a_deletion_outlasts_the_budget() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        _existing(stub, "Deleting", "x-config")
        stub_model_and_config(stub, RUN, TUNING)
        stub.add_response(
            "describe_endpoint",
            endpoint_description(ENDPOINT, "Deleting", "x-config"),
            expected_params={"EndpointName": ENDPOINT},
        )
        with pytest.raises(EndpointBusyError, match="still being deleted"):
            _deploy(sm, deletion_timeout=0.0)


def test_deploy_retry_carries_on_when_model_and_config_already_exist() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        _existing(stub, "Creating", RUN.names.endpoint_config)
        # Both are this execution's (its tags): adopted.
        stub_already_exists(stub, "create_model", _model_request(), deploy_tags(RUN))
        stub_already_exists(stub, "create_endpoint_config", _config_request(), deploy_tags(RUN))
        out = _deploy(sm)  # and no CreateEndpoint: it is already being created
    assert out["action"] == "create"


@pytest.mark.parametrize(
    "tags",
    [
        [],  # untagged: someone else's
        [{"Key": STACK_TAG_KEY, "Value": "OtherStack"}],
        # Same stack name, execution and endpoint, but an earlier deployment of it.
        [
            {**t, "Value": "an-earlier-salt"} if t["Key"] == DEPLOYMENT_TAG_KEY else t
            for t in deploy_tags(RUN)
        ],
        # This stack and deployment, another execution.
        [
            {**t, "Value": "exec-2"} if t["Key"] == EXECUTION_TAG_KEY else t
            for t in deploy_tags(RUN)
        ],
    ],
)
def test_deploy_never_adopts_a_model_that_is_not_this_executions(
    tags: list[dict[str, str]],
) -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub_endpoint_missing(stub)
        stub_already_exists(stub, "create_model", _model_request(), tags)
        # Nothing else: no config, no endpoint, no delete.
        with pytest.raises(NameCollisionError, match=f"model {RUN.names.model} already exists"):
            _deploy(sm)


def test_deploy_never_adopts_an_endpoint_config_of_another_stack() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub_endpoint_missing(stub)
        stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m"})
        stub_already_exists(
            stub,
            "create_endpoint_config",
            _config_request(),
            [{"Key": STACK_TAG_KEY, "Value": "Beta"}],
        )
        with pytest.raises(NameCollisionError, match="endpoint config"):
            _deploy(sm)


def test_deploy_retry_after_update_sent_does_not_update_twice() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        _existing(
            stub,
            "Updating",
            "mnist-ll-old-config",
            PendingDeploymentSummary={"EndpointConfigName": RUN.names.endpoint_config},
        )
        stub_model_and_config(stub, RUN, TUNING)
        out = _deploy(sm)
    assert out["action"] == "update" and out["previous_config"] == "mnist-ll-old-config"


def test_deploy_retry_when_endpoint_already_serves_our_config_sends_nothing_more() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        _existing(stub, "InService", RUN.names.endpoint_config)
        stub_model_and_config(stub, RUN, TUNING)
        assert _deploy(sm)["endpoint_config_name"] == RUN.names.endpoint_config


def test_deploy_create_race_resource_in_use_carries_on() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub_endpoint_missing(stub)
        stub_model_and_config(stub, RUN, TUNING)
        stub_already_exists(stub, "create_endpoint", create_endpoint_params(RUN), RUN.tag_list())
        assert _deploy(sm)["action"] == "create"


def test_deploy_create_race_with_a_foreign_endpoint_is_a_name_collision() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub_endpoint_missing(stub)
        stub_model_and_config(stub, RUN, TUNING)
        stub_already_exists(
            stub, "create_endpoint", create_endpoint_params(RUN), [{"Key": "owner", "Value": "x"}]
        )
        with pytest.raises(NameCollisionError, match=f"endpoint {RUN.endpoint_name}"):
            _deploy(sm)


def test_deploy_refuses_to_touch_an_endpoint_this_stack_did_not_create() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        _existing(stub, "Failed", "theirs", tags=[{"Key": "owner", "Value": "someone"}])
        with pytest.raises(EndpointDeploymentFailedError, match="not managed by this stack"):
            _deploy(sm)


def test_deploy_while_another_update_is_running_raises_busy() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        _existing(stub, "Updating", "other-config")
        with pytest.raises(EndpointBusyError):
            _deploy(sm)


def test_deploy_resource_limit_on_create_endpoint_names_the_quota() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub_endpoint_missing(stub)
        stub_model_and_config(stub, RUN, TUNING)
        stub.add_client_error(
            "create_endpoint",
            service_error_code="ResourceLimitExceeded",
            service_message="The account-level service limit 'ml.m4.xlarge for endpoint usage' is 0 Instances",  # noqa: E501
            expected_params=create_endpoint_params(RUN),
        )
        with pytest.raises(ResourceLimitError, match=r"ml.m4.xlarge for endpoint usage"):
            _deploy(sm)


def test_deploy_throttled_create_model_raises_throttling_error() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub_endpoint_missing(stub)
        stub.add_client_error(
            "create_model",
            service_error_code="ThrottlingException",
            expected_params=_model_request(),
        )
        with pytest.raises(ThrottlingError, match="CreateModel"):
            _deploy(sm)


def test_deploy_update_validation_error_is_not_swallowed() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        _existing(stub, "InService", "old")
        stub_serving_config(stub, "old")
        stub_model_and_config(stub, RUN, TUNING)
        stub.add_client_error(
            "update_endpoint",
            service_error_code="ValidationException",
            service_message="Cannot update in-progress endpoint",
            expected_params={
                "EndpointName": ENDPOINT,
                "EndpointConfigName": RUN.names.endpoint_config,
            },
        )
        with pytest.raises(ClientError):
            _deploy(sm)


def test_serverless_endpoint_config_has_a_serverless_variant_and_no_instances() -> None:
    run = make_run(
        "exec-1", {"endpoint": {"mode": "serverless", "memory_mb": 3072, "max_concurrency": 7}}
    )
    request = build_endpoint_config_request(run, DEFAULTS, kms_key_arn="arn:aws:kms:k")
    (variant,) = request["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 7}
    assert "InstanceType" not in variant and "InitialInstanceCount" not in variant
    assert "KmsKeyId" not in request
    # The real service model accepts it (Stubber validates the request).
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/x"},
            expected_params=request,
        )
        sm.create_endpoint_config(**request)


def test_realtime_endpoint_config_takes_the_instance_count() -> None:
    run = make_run("exec-1", {"endpoint": {"instance_type": "ml.m5.large", "instance_count": 2}})
    (variant,) = build_endpoint_config_request(run, DEFAULTS)["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 2)


# -- serverless: no network isolation; no instance <-> serverless update in place -----

SERVERLESS = make_run("exec-1", {"endpoint": {"mode": "serverless"}})


def test_serverless_model_is_created_without_network_isolation() -> None:
    """Serverless Inference excludes network isolation: its model must not ask for it."""
    model = build_model_request(SERVERLESS, TUNING, image_uri=IMAGE, role_arn=ROLE)
    assert model["EnableNetworkIsolation"] is False
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub_endpoint_missing(stub)
        stub.add_response(
            "create_model",
            {
                "ModelArn": f"arn:aws:sagemaker:us-east-1:123456789012:model/{SERVERLESS.names.model}"  # noqa: E501
            },
            expected_params={
                "ModelName": SERVERLESS.names.model,
                "PrimaryContainer": {
                    "Image": IMAGE,
                    "ModelDataUrl": TUNING["best"]["model_artifacts"],
                },
                "ExecutionRoleArn": ROLE,
                "EnableNetworkIsolation": False,
                "Tags": _model_request()["Tags"],
            },
        )
        stub.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/x"},
            expected_params=build_endpoint_config_request(SERVERLESS, DEFAULTS),
        )
        stub_create_endpoint(stub, SERVERLESS)
        deploy(
            SERVERLESS, DEFAULTS, TUNING, sm, stack_tag=STACK_TAG, image_uri=IMAGE,
            role_arn=ROLE, sleep=lambda _s: None,
        )  # fmt: skip


def test_realtime_and_transform_models_keep_network_isolation() -> None:
    assert _model_request()["EnableNetworkIsolation"] is True
    batch = make_run("exec-1", {"endpoint": {"mode": "none"}})
    model = build_model_request(batch, TUNING, image_uri=IMAGE, role_arn=ROLE)
    assert model["EnableNetworkIsolation"] is True


@pytest.mark.parametrize(
    ("run", "existing_serverless", "kind"),
    [(SERVERLESS, False, "instance-based"), (RUN, True, "serverless")],
    ids=["serverless-onto-instance", "realtime-onto-serverless"],
)
def test_a_run_of_the_other_endpoint_kind_fails_fast_before_touching_anything(
    run: Any, existing_serverless: bool, kind: str
) -> None:
    """SageMaker cannot update an instance-based endpoint to a serverless config
    in place, nor back: refused before any model, config or update is sent."""
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        _existing(stub, "InService", "mnist-ll-old-config")
        stub_serving_config(stub, "mnist-ll-old-config", serverless=existing_serverless)
        # Nothing else may be called: no CreateModel, no UpdateEndpoint.
        with pytest.raises(InvalidInputError) as raised:
            deploy(
                run, DEFAULTS, TUNING, sm, stack_tag=STACK_TAG, image_uri=IMAGE,
                role_arn=ROLE, sleep=lambda _s: None,
            )  # fmt: skip
    message = str(raised.value)
    assert message.startswith("endpoint.mode:")
    assert f"{ENDPOINT} is {kind}" in message
    assert "endpoint_name" in message and "delete the endpoint" in message


@pytest.mark.parametrize("run", [SERVERLESS, RUN], ids=["serverless", "realtime"])
def test_a_run_of_the_same_endpoint_kind_updates_in_place(run: Any) -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        _existing(stub, "InService", "mnist-ll-old-config")
        stub_serving_config(
            stub, "mnist-ll-old-config", serverless=run.endpoint_mode == "serverless"
        )
        stub_model_and_config(stub, run, TUNING, build_endpoint_config_request(run, DEFAULTS))
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": ARN},
            expected_params={
                "EndpointName": ENDPOINT,
                "EndpointConfigName": run.names.endpoint_config,
            },
        )
        out = deploy(
            run, DEFAULTS, TUNING, sm, stack_tag=STACK_TAG, image_uri=IMAGE,
            role_arn=ROLE, sleep=lambda _s: None,
        )  # fmt: skip
    assert out["action"] == "update" and out["previous_config"] == "mnist-ll-old-config"


@pytest.mark.parametrize(
    ("run", "existing_serverless", "kind"),
    [(SERVERLESS, False, "instance-based"), (RUN, True, "serverless")],
    ids=["serverless-onto-instance", "realtime-onto-serverless"],
)
def test_validate_input_refuses_the_other_endpoint_kind_before_any_cost(
    run: Any, existing_serverless: bool, kind: str
) -> None:
    """The same refusal at ValidateInput: before conversion and tuning are paid for."""
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_response(
            "describe_endpoint",
            endpoint_description(ENDPOINT, "InService", "mnist-ll-old-config"),
            expected_params={"EndpointName": ENDPOINT},
        )
        stub_serving_config(stub, "mnist-ll-old-config", serverless=existing_serverless)
        with pytest.raises(InvalidInputError, match=f"{ENDPOINT} is {kind}"):
            preflight_endpoint_kind(run, sm)


@pytest.mark.parametrize("status", ["InService", "Updating", "Failed"])
def test_validate_input_lets_a_run_of_the_same_kind_or_a_recreated_endpoint_through(
    status: str,
) -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_response(
            "describe_endpoint",
            endpoint_description(ENDPOINT, status, "mnist-ll-old-config"),
            expected_params={"EndpointName": ENDPOINT},
        )
        if status != "Failed":  # a Failed endpoint is deleted and recreated: any kind
            stub_serving_config(stub, "mnist-ll-old-config", serverless=True)
        preflight_endpoint_kind(SERVERLESS, sm)


def test_validate_input_needs_no_endpoint_for_a_new_one_or_mode_none() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub_endpoint_missing(stub, ENDPOINT)
        preflight_endpoint_kind(RUN, sm)
    with stubbed(sm):  # mode none calls nothing
        preflight_endpoint_kind(make_run("exec-1", {"endpoint": {"mode": "none"}}), sm)
