"""Regions known not to offer C4/M4: a synth for one of them with the C4/M4
defaults fails at once, naming the region, the type and the cdk.json keys and
values to set instead; an environment-agnostic synth is unchanged."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest

from pipeline_core.config import PipelineConfig
from pipeline_core.errors import InvalidConfigError
from stacks.regions import NO_C4_M4_REGIONS, check_instance_types
from tests.stack.helpers import cdk_json_context, synth

ACCOUNT = "123456789012"
C5_M5 = {
    "training_instance_type": "ml.c5.xlarge",
    "endpoint_instance_type": "ml.m5.xlarge",
    "transform_instance_type": "ml.m5.xlarge",
}


def _pipeline(**overrides: Any) -> dict[str, Any]:
    pipeline: dict[str, Any] = {**cdk_json_context()["pipeline"], **overrides}
    return pipeline


def test_the_defaults_fail_the_synth_in_eu_north_1_and_say_what_to_set() -> None:
    with pytest.raises(InvalidConfigError) as raised:
        synth(env=cdk.Environment(account=ACCOUNT, region="eu-north-1"))
    message = str(raised.value)
    for needle in (
        "eu-north-1",
        "ml.c4.xlarge",
        "ml.m4.xlarge",
        '"training_instance_type": "ml.c5.xlarge"',
        '"endpoint_instance_type": "ml.m5.xlarge"',
        '"transform_instance_type": "ml.m5.xlarge"',
        "cdk.json",
    ):
        assert needle in message, needle


def test_the_advised_types_synthesize_in_eu_north_1() -> None:
    _app, stack, _assembly = synth(
        {"pipeline": _pipeline(**C5_M5)},
        env=cdk.Environment(account=ACCOUNT, region="eu-north-1"),
    )
    assert stack.region == "eu-north-1"
    assert stack.settings.pipeline.training_instance_type == "ml.c5.xlarge"


@pytest.mark.parametrize("region", sorted(NO_C4_M4_REGIONS))
def test_every_listed_region_refuses_each_c4_m4_default(region: str) -> None:
    for key, replacement in C5_M5.items():
        old = getattr(PipelineConfig(), key)
        config = PipelineConfig(**{**C5_M5, key: old})
        with pytest.raises(InvalidConfigError, match=f"{key}.*{old}|{old}.*{key}") as raised:
            check_instance_types(region, config)
        assert region in str(raised.value)
        assert f'"{key}": "{replacement}"' in str(raised.value)
    check_instance_types(region, PipelineConfig(**C5_M5))


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-northeast-1", "us-west-2"])
def test_regions_with_c4_m4_keep_the_tutorial_defaults(region: str) -> None:
    assert region not in NO_C4_M4_REGIONS
    check_instance_types(region, PipelineConfig())


def test_an_unresolved_region_changes_nothing() -> None:
    """Environment-agnostic (no CDK_DEFAULT_REGION): the region is a token."""
    check_instance_types(cdk.Aws.REGION, PipelineConfig())
