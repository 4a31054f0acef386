"""Endpoint modes, TTL, spot and the cost caps in ValidateInput (both sides of each)."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline_core.config import DEFAULTS, PipelineConfig
from pipeline_core.errors import InvalidConfigError, InvalidInputError
from pipeline_core.inputs import RunSpec
from tests.core.pipeline_testlib import make_run


def test_default_is_a_realtime_endpoint_deleted_after_24_hours() -> None:
    run = make_run("e", {})
    assert (run.endpoint_mode, run.ttl_hours, run.endpoint_instance_type) == (
        "realtime",
        24,
        "ml.m4.xlarge",
    )
    assert run.spot is False


def test_serverless_mode_takes_memory_and_concurrency() -> None:
    run = make_run(
        "e", {"endpoint": {"mode": "serverless", "memory_mb": 4096, "max_concurrency": 200}}
    )
    assert (run.endpoint_mode, run.serverless_memory_mb, run.serverless_max_concurrency) == (
        "serverless",
        4096,
        200,
    )


def test_mode_none_keeps_nothing_so_has_no_ttl() -> None:
    run = make_run("e", {"endpoint": {"mode": "none"}})
    assert (run.endpoint_mode, run.ttl_hours) == ("none", 0)


def test_ttl_zero_keeps_forever_and_round_trips() -> None:
    run = make_run("e", {"endpoint": {"mode": "realtime", "ttl_hours": 0}, "spot": True})
    assert run.ttl_hours == 0 and run.spot is True
    assert RunSpec.from_dict(run.to_dict()) == run


def test_old_endpoint_instance_type_key_is_an_alias() -> None:
    run = make_run("e", {"endpoint_instance_type": "ml.m5.large"})
    assert run.endpoint_instance_type == "ml.m5.large"
    same = make_run(
        "e", {"endpoint_instance_type": "ml.m5.large", "endpoint": {"instance_type": "ml.m5.large"}}
    )
    assert same.endpoint_instance_type == "ml.m5.large"


def test_cdk_json_endpoint_defaults_apply() -> None:
    config = PipelineConfig.from_mapping({"endpoint": {"mode": "none"}})
    assert config.endpoint["ttl_hours"] == 24  # partial objects overlay the defaults
    assert make_run("e", {}, config=config).endpoint_mode == "none"


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("mode unknown", {"endpoint": {"mode": "batch"}}, "endpoint.mode"),
    ("endpoint not an object", {"endpoint": "none"}, "endpoint"),
    ("unknown endpoint key", {"endpoint": {"mode": "realtime", "size": 1}}, "endpoint.size"),
    ("memory below", {"endpoint": {"mode": "serverless", "memory_mb": 512}}, "endpoint.memory_mb"),
    ("memory above", {"endpoint": {"mode": "serverless", "memory_mb": 7168}}, "endpoint.memory_mb"),
    ("memory step", {"endpoint": {"mode": "serverless", "memory_mb": 1536}}, "endpoint.memory_mb"),
    (
        "concurrency zero",
        {"endpoint": {"mode": "serverless", "max_concurrency": 0}},
        "endpoint.max_concurrency",
    ),
    (
        "concurrency above",
        {"endpoint": {"mode": "serverless", "max_concurrency": 201}},
        "endpoint.max_concurrency",
    ),
    ("ttl negative", {"endpoint": {"ttl_hours": -1}}, "endpoint.ttl_hours"),
    ("ttl float", {"endpoint": {"ttl_hours": 1.5}}, "endpoint.ttl_hours"),
    ("ttl in mode none", {"endpoint": {"mode": "none", "ttl_hours": 2}}, "endpoint.ttl_hours"),
    (
        "instance type for serverless",
        {"endpoint": {"mode": "serverless", "instance_type": "ml.m5.large"}},
        "endpoint.instance_type",
    ),
    (
        "alias with serverless",
        {"endpoint": {"mode": "serverless"}, "endpoint_instance_type": "ml.m5.large"},
        "endpoint_instance_type",
    ),
    (
        "alias conflicts",
        {"endpoint": {"instance_type": "ml.m5.large"}, "endpoint_instance_type": "ml.c5.large"},
        "endpoint_instance_type",
    ),
    ("instance count zero", {"endpoint": {"instance_count": 0}}, "endpoint.instance_count"),
    ("spot not a bool", {"spot": "yes"}, "spot"),
    # The caps: one step past each.
    ("max_jobs above cap", {"max_jobs": 21, "max_parallel_jobs": 1}, "max_jobs"),
    ("parallel above cap", {"max_jobs": 20, "max_parallel_jobs": 5}, "max_parallel_jobs"),
    (
        "training type outside allowlist",
        {"training_instance_type": "ml.p5.48xlarge"},
        "training_instance_type",
    ),
    (
        "endpoint type outside allowlist",
        {"endpoint": {"instance_type": "ml.g5.xlarge"}},
        "endpoint.instance_type",
    ),
    (
        "alias outside allowlist",
        {"endpoint_instance_type": "ml.m5.2xlarge"},
        "endpoint_instance_type",
    ),
]


@pytest.mark.parametrize(("case", "raw", "key"), BAD, ids=[b[0] for b in BAD])
def test_bad_endpoint_and_cap_inputs_name_the_key(case: str, raw: dict[str, Any], key: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        make_run("e", raw)
    assert str(info.value).startswith(key), str(info.value)


@pytest.mark.parametrize(
    "raw",
    [
        {"max_jobs": 20, "max_parallel_jobs": 4},
        {"training_instance_type": "ml.c5.xlarge"},
        {"endpoint": {"instance_type": "ml.m5.xlarge"}},
        {"endpoint": {"mode": "serverless", "memory_mb": 1024, "max_concurrency": 1}},
        {"endpoint": {"mode": "serverless", "memory_mb": 6144, "max_concurrency": 200}},
        {"endpoint": {"ttl_hours": 0}},
    ],
)
def test_inputs_at_the_caps_are_accepted(raw: dict[str, Any]) -> None:
    make_run("e", raw)


def test_caps_come_from_the_config() -> None:
    config = PipelineConfig.from_mapping(
        {
            "max_jobs_limit": 50,
            "max_parallel_limit": 10,
            "allowed_instance_types": ["ml.c4.xlarge", "ml.m4.xlarge"],
        }
    )
    run = make_run("e", {"max_jobs": 50, "max_parallel_jobs": 10}, config=config)
    assert (run.max_jobs, run.max_parallel_jobs) == (50, 10)
    with pytest.raises(InvalidInputError, match=r"^training_instance_type"):
        make_run("e", {"training_instance_type": "ml.m5.large"}, config=config)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"max_jobs": 21}, "max_jobs"),
        ({"max_jobs_limit": 501}, "max_jobs_limit"),
        ({"allowed_instance_types": ["ml.c4.xlarge"]}, "endpoint_instance_type"),
        ({"endpoint": {"mode": "realtime", "memory_mb": 100}}, "endpoint.memory_mb"),
        ({"endpoint": {"colour": "red"}}, "endpoint"),
        ({"spot_max_wait_seconds": 60}, "spot_max_wait_seconds"),
    ],
)
def test_config_defaults_must_respect_the_caps(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(InvalidConfigError) as info:
        PipelineConfig.from_mapping(overrides)
    assert str(info.value).startswith(key), str(info.value)


def test_defaults_are_valid() -> None:
    assert DEFAULTS.max_jobs_limit == 20 and DEFAULTS.max_parallel_limit == 4
