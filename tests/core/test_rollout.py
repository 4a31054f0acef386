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
    config = deployment_config(ROLLOUT_DEFAULTS, ALARMS)
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {
        "Type": "CANARY",
        "WaitIntervalInSeconds": 300,
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
    }
    assert config["AutoRollbackConfiguration"] == {
        "Alarms": [
            {"AlarmName": "mnist-ll-endpoint-invocation-5xx"},
            {"AlarmName": "mnist-ll-endpoint-model-latency"},
        ]
    }


def test_linear_and_all_at_once() -> None:
    linear = deployment_config({"traffic": "LINEAR", "step_percent": 25}, ALARMS)
    routing = linear["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["LinearStepSize"] == {"Type": "CAPACITY_PERCENT", "Value": 25}
    once = deployment_config({"traffic": "ALL_AT_ONCE"}, ())
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
    config = deployment_config(DEFAULTS.rollout, ALARMS)
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
