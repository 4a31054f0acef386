"""Blue/green DeploymentConfig: its shape (Stubber-validated UpdateEndpoint)
and the cdk.json ``rollout`` checks."""

from __future__ import annotations

from typing import Any

import pytest
from pipeline_testlib import (
    ENDPOINT,
    IMAGE,
    ROLE,
    STACK_TAG,
    endpoint_description,
    make_run,
    sagemaker_client,
    stub_model_and_config,
    stub_serving_config,
    stubbed,
    tuning_result,
)

from pipeline_core.config import DEFAULTS, PipelineConfig
from pipeline_core.deploy import deploy
from pipeline_core.errors import InvalidConfigError
from pipeline_core.names import STACK_TAG_KEY, tag_value
from pipeline_core.rollout import ROLLOUT_DEFAULTS, alarm_names, deployment_config

ALARMS = alarm_names(ENDPOINT)


def test_default_is_a_ten_percent_canary_baking_five_minutes_with_alarm_rollback() -> None:
    config = deployment_config(ROLLOUT_DEFAULTS, ALARMS, instance_count=10)
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {
        "Type": "CANARY",
        "WaitIntervalInSeconds": 300,
        "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
    }
    assert config["AutoRollbackConfiguration"] == {
        "Alarms": [
            {"AlarmName": "mnist-ll-endpoint-invocation-5xx"},
            {"AlarmName": "mnist-ll-endpoint-model-latency"},
        ]
    }


def test_linear_and_all_at_once() -> None:
    linear = deployment_config({"traffic": "LINEAR", "step_percent": 25}, ALARMS, instance_count=8)
    routing = linear["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["LinearStepSize"] == {"Type": "INSTANCE_COUNT", "Value": 2}
    once = deployment_config({"traffic": "ALL_AT_ONCE"}, (), instance_count=8)
    routing = once["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert set(routing) == {"Type", "WaitIntervalInSeconds"}
    assert "AutoRollbackConfiguration" not in once


@pytest.mark.parametrize(
    "rollout",
    [
        {"traffic": "BLUE"},
        {"step_percent": 0},
        {"wait_seconds": 3601},
        {"max_execution_timeout_seconds": 10},
        {"auto_rollback": "yes"},
        {"surprise": 1},
    ],
)
def test_bad_rollout_config_is_refused(rollout: dict[str, Any]) -> None:
    with pytest.raises(InvalidConfigError, match="rollout"):
        PipelineConfig.from_mapping({"rollout": rollout})


def test_partial_rollout_overlays_the_defaults() -> None:
    config = PipelineConfig.from_mapping({"rollout": {"traffic": "LINEAR"}})
    assert config.rollout["traffic"] == "LINEAR"
    assert config.rollout["wait_seconds"] == 300


def test_update_endpoint_sends_the_deployment_config() -> None:
    run = make_run("exec-1")
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}"
    config = deployment_config(DEFAULTS.rollout, ALARMS, instance_count=1)
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_response(
            "describe_endpoint",
            endpoint_description(ENDPOINT, "InService", "mnist-ll-old-config"),
            expected_params={"EndpointName": ENDPOINT},
        )
        stub.add_response(
            "list_tags",
            {"Tags": [{"Key": STACK_TAG_KEY, "Value": tag_value(STACK_TAG)}]},
            expected_params={"ResourceArn": arn},
        )
        stub_serving_config(stub, "mnist-ll-old-config")
        stub_model_and_config(stub, run, tuning_result())
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": arn},
            expected_params={
                "EndpointName": ENDPOINT,
                "EndpointConfigName": run.names.endpoint_config,
                "DeploymentConfig": config,
            },
        )
        out = deploy(
            run, DEFAULTS, tuning_result(), sm, stack_tag=STACK_TAG, image_uri=IMAGE,
            role_arn=ROLE, sleep=lambda _s: None, deployment_config=config,
        )  # fmt: skip
    assert out["action"] == "update"


# -- the API's limits: CanarySize <= 50%, LinearStepSize 10-50% of the variant's instances ---


def _routing(rollout: dict[str, Any], count: int) -> dict[str, Any]:
    config = deployment_config(rollout, ALARMS, instance_count=count)
    routing: dict[str, Any] = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    return routing


@pytest.mark.parametrize("traffic", ["CANARY", "LINEAR", "ALL_AT_ONCE"])
def test_one_instance_variant_shifts_all_at_once_baking_with_the_alarms(traffic: str) -> None:
    """A canary or a linear step of one instance would be 100% of the variant:
    SageMaker refuses both, so one instance shifts all at once, then bakes
    ``wait_seconds`` while the alarms can still roll it back."""
    config = deployment_config({"traffic": traffic}, ALARMS, instance_count=1)
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300}
    assert config["AutoRollbackConfiguration"]["Alarms"][0]["AlarmName"] == ALARMS[0]


@pytest.mark.parametrize(
    ("count", "percent", "size"),
    [(2, 10, 1), (4, 10, 1), (10, 50, 5), (20, 25, 5), (3, 50, 1)],
)
def test_canary_is_an_instance_count_within_half_the_variant(
    count: int, percent: int, size: int
) -> None:
    routing = _routing({"traffic": "CANARY", "step_percent": percent}, count)
    assert routing["CanarySize"] == {"Type": "INSTANCE_COUNT", "Value": size}


@pytest.mark.parametrize(
    ("count", "percent", "size"),
    [(2, 10, 1), (3, 50, 1), (15, 10, 2), (20, 10, 2), (20, 50, 10), (11, 25, 3)],
)
def test_linear_step_is_an_instance_count_between_a_tenth_and_half_the_variant(
    count: int, percent: int, size: int
) -> None:
    routing = _routing({"traffic": "LINEAR", "step_percent": percent}, count)
    assert routing["LinearStepSize"] == {"Type": "INSTANCE_COUNT", "Value": size}


def test_every_instance_count_and_step_stays_within_the_api_limits() -> None:
    for count in range(2, 21):
        for percent in range(1, 51):
            canary = _routing({"traffic": "CANARY", "step_percent": percent}, count)
            assert 1 <= canary["CanarySize"]["Value"] <= count / 2
        for percent in range(10, 51):
            step = _routing({"traffic": "LINEAR", "step_percent": percent}, count)
            assert count / 10 <= step["LinearStepSize"]["Value"] <= count / 2


@pytest.mark.parametrize(
    ("rollout", "says"),
    [
        ({"traffic": "CANARY", "step_percent": 60}, "at most 50"),
        ({"traffic": "LINEAR", "step_percent": 5}, "between 10 and 50"),
        ({"traffic": "LINEAR", "step_percent": 60}, "between 10 and 50"),
        (
            {"wait_seconds": 3600, "max_execution_timeout_seconds": 3600},
            "max_execution_timeout_seconds",
        ),
        (
            {"traffic": "LINEAR", "wait_seconds": 1800, "max_execution_timeout_seconds": 7200},
            "max_execution_timeout_seconds",
        ),
    ],
)
def test_rollout_outside_the_api_limits_is_a_config_error(
    rollout: dict[str, Any], says: str
) -> None:
    with pytest.raises(InvalidConfigError, match=says):
        PipelineConfig.from_mapping({"rollout": rollout})


def test_multi_instance_update_sends_a_valid_deployment_config() -> None:
    """Stubber validates the DeploymentConfig against UpdateEndpoint's model."""
    run = make_run("exec-1", {"endpoint": {"instance_count": 4}})
    config = deployment_config({"traffic": "LINEAR", "step_percent": 25}, ALARMS, instance_count=4)
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}"},
            expected_params={
                "EndpointName": ENDPOINT,
                "EndpointConfigName": run.names.endpoint_config,
                "DeploymentConfig": config,
            },
        )
        sm.update_endpoint(
            EndpointName=ENDPOINT,
            EndpointConfigName=run.names.endpoint_config,
            DeploymentConfig=config,
        )


def test_guardrails_are_sent_for_realtime_updates_only() -> None:
    """Deployment guardrails apply to real-time (and async) endpoints, not serverless."""
    from lambdas.deploy import rollout_for

    settings = _settings()
    realtime = rollout_for(make_run("exec-1"), settings)
    assert realtime is not None
    routing = realtime["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == "ALL_AT_ONCE"  # the default one instance
    serverless = make_run("exec-1", {"endpoint": {"mode": "serverless"}})
    assert rollout_for(serverless, settings) is None


def _settings() -> Any:
    from lambdas._env import Settings

    return Settings(
        config=DEFAULTS,
        bucket="b",
        role_arn=ROLE,
        image_uri=IMAGE,
        default_endpoint_name=ENDPOINT,
        stack_tag=STACK_TAG,
        region="us-east-1",
        allow_local_sources=False,
        kms_key_arn=None,
    )
