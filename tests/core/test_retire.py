"""Each run deletes what it created once it no longer serves, with a bounded
number of calls and no listing: the config and model it superseded (on
InService), its own never-served config and model (an update rolled back), and
the model of its Batch Transform job (mode ``none``)."""

from __future__ import annotations

from typing import Any

from botocore.stub import Stubber
from pipeline_testlib import (
    ENDPOINT,
    STACK_TAG,
    endpoint_config_description,
    make_run,
    sagemaker_client,
    stubbed,
)

from pipeline_core.names import ENDPOINT_TAG_KEY, STACK_TAG_KEY
from pipeline_core.retire import discard_unserved, retire_superseded, retire_transform_model

RUN = make_run("exec-1")
OLD_CONFIG, OLD_MODEL = "mnist-ll-exec-0-0a0a0a0a-config", "mnist-ll-exec-0-0a0a0a0a-model"
OURS = [{"Key": STACK_TAG_KEY, "Value": STACK_TAG}, {"Key": ENDPOINT_TAG_KEY, "Value": ENDPOINT}]
DEPLOYED = {
    "endpoint_name": ENDPOINT,
    "endpoint_config_name": RUN.names.endpoint_config,
    "model_name": RUN.names.model,
    "action": "update",
    "previous_config": OLD_CONFIG,
}
CONFIG_ARN = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{OLD_CONFIG}"


def _previous(stub: Stubber, tags: list[dict[str, str]] = OURS) -> None:
    stub.add_response(
        "describe_endpoint_config",
        endpoint_config_description(OLD_CONFIG, model=OLD_MODEL),
        expected_params={"EndpointConfigName": OLD_CONFIG},
    )
    stub.add_response("list_tags", {"Tags": tags}, expected_params={"ResourceArn": CONFIG_ARN})


def _retire(sm: Any, deployed: dict[str, Any] = DEPLOYED, **kw: Any) -> list[dict[str, str]]:
    return retire_superseded(deployed, sm, stack_tag=STACK_TAG, **kw)


def test_in_service_retires_the_config_it_superseded_and_its_model() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:  # no List call: the run knows what it superseded
        _previous(stub)
        stub.add_response(
            "delete_endpoint_config", {}, expected_params={"EndpointConfigName": OLD_CONFIG}
        )
        stub.add_response("delete_model", {}, expected_params={"ModelName": OLD_MODEL})
        retired = _retire(sm)
    assert retired == [
        {"kind": "endpoint_config", "name": OLD_CONFIG},
        {"kind": "model", "name": OLD_MODEL},
    ]


def test_a_superseded_config_of_another_stack_or_endpoint_is_left_alone() -> None:
    for tags in (
        [],
        [{"Key": STACK_TAG_KEY, "Value": "Beta"}, OURS[1]],
        [OURS[0], {"Key": ENDPOINT_TAG_KEY, "Value": "mnist-ll-other"}],
    ):
        sm = sagemaker_client()
        with stubbed(sm) as stub:  # and no delete after the tags
            _previous(stub, tags)
            assert _retire(sm) == []


def test_nothing_superseded_nothing_called() -> None:
    sm = sagemaker_client()
    with stubbed(sm):
        assert _retire(sm, {**DEPLOYED, "previous_config": None}) == []
        # Never the serving config itself.
        assert _retire(sm, {**DEPLOYED, "previous_config": RUN.names.endpoint_config}) == []


def test_a_superseded_config_already_gone_is_not_an_error() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_client_error(
            "describe_endpoint_config",
            service_error_code="ValidationException",
            service_message=f'Could not find endpoint configuration "{OLD_CONFIG}".',
            expected_params={"EndpointConfigName": OLD_CONFIG},
        )
        assert _retire(sm) == []


def test_a_failed_delete_is_logged_and_the_rest_carries_on() -> None:
    sm = sagemaker_client()
    logged: list[str] = []
    with stubbed(sm) as stub:
        _previous(stub)
        stub.add_client_error(
            "delete_endpoint_config",
            service_error_code="ThrottlingException",
            expected_params={"EndpointConfigName": OLD_CONFIG},
        )
        stub.add_response("delete_model", {}, expected_params={"ModelName": OLD_MODEL})
        retired = _retire(sm, log=logged.append)
    assert retired == [{"kind": "model", "name": OLD_MODEL}]
    assert any(OLD_CONFIG in line for line in logged)


def test_a_rolled_back_update_deletes_its_own_config_and_model_never_the_serving_one() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_response(
            "delete_endpoint_config",
            {},
            expected_params={"EndpointConfigName": RUN.names.endpoint_config},
        )
        stub.add_client_error(  # a retry: already gone
            "delete_model",
            service_error_code="ValidationException",
            service_message=f"Could not find model {RUN.names.model}.",
            expected_params={"ModelName": RUN.names.model},
        )
        out = discard_unserved(DEPLOYED, serving_config=OLD_CONFIG, sm=sm)
    assert out == [
        {"kind": "endpoint_config", "name": RUN.names.endpoint_config},
        {"kind": "model", "name": RUN.names.model},
    ]
    with stubbed(sm):  # our config is what serves: nothing is deleted
        assert discard_unserved(DEPLOYED, serving_config=RUN.names.endpoint_config, sm=sm) == []


def test_a_finished_transform_job_deletes_its_model() -> None:
    sm = sagemaker_client()
    deployed = {"mode": "none", "model_name": RUN.names.model, "transform_job_name": "t"}
    with stubbed(sm) as stub:
        stub.add_response("delete_model", {}, expected_params={"ModelName": RUN.names.model})
        assert retire_transform_model(deployed, sm) == [{"kind": "model", "name": RUN.names.model}]
    logged: list[str] = []
    with stubbed(sm) as stub:
        stub.add_client_error(
            "delete_model",
            service_error_code="AccessDeniedException",
            expected_params={"ModelName": RUN.names.model},
        )
        assert retire_transform_model(deployed, sm, log=logged.append) == []
    assert logged
