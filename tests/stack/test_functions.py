"""Lambdas: newest Python on arm64, traced, own log group, env per DESIGN.md."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from aws_cdk import aws_lambda as lambda_

from pipeline_core.config import CONFIG_ENV, PipelineConfig
from pipeline_core.names import default_endpoint_name, model_package_group_name
from stacks.asl import lambda_functions
from tests.stack.conftest import Synth, make_synth

DESIGN_ENV = {
    "PIPELINE_CONFIG",
    "DATA_BUCKET",
    "SAGEMAKER_ROLE_ARN",
    "LINEAR_LEARNER_IMAGE",
    "DEFAULT_ENDPOINT_NAME",
    "STACK_TAG",
    "DEPLOYMENT_SALT",
    "LOCK_TABLE",
    "MODEL_PACKAGE_GROUP",
    "POWERTOOLS_SERVICE_NAME",
}
MODULES = {
    "validate_input",
    "convert",
    "start_tuning",
    "describe_tuning",
    "deploy",
    "describe_endpoint",
    "evaluate",
    "cleanup",
    "convert_shard",
    "finalize_dataset",
    "cleanup_complete",
    "schedule_ttl",
    "start_transform",
    "describe_transform",
    "endpoint_ttl",
    "execution_ended",
    "register_model",
    "load_model_package",
    "await_approval",
    "approval_decided",
}
#: Variables only some functions get (pipeline_stack._lifecycle_environment).
EXTRA_ENV = {
    "lambdas.schedule_ttl.handler": {"TTL_FUNCTION_ARN", "SCHEDULER_ROLE_ARN"},
    # Re-arms itself on a busy endpoint (its own ARN from the context).
    "lambdas.endpoint_ttl.handler": {"TOPIC_ARN", "SCHEDULER_ROLE_ARN"},
    # Schedules the TTL a run that failed after Deploy never scheduled.
    "lambdas.execution_ended.handler": {"TOPIC_ARN", "TTL_FUNCTION_ARN", "SCHEDULER_ROLE_ARN"},
    "lambdas.cleanup.handler": {
        "STATE_MACHINE_ARN",
        "TTL_FUNCTION_ARN",
        "MODEL_REGISTRY_RETAINED",
    },
}
CUSTOM_PIPELINE = {
    "objective_metric": "validation:roc_auc_score",
    "max_jobs": 4,
    "max_parallel_jobs": 1,
    "ranges": [
        {"name": "l1", "kind": "Continuous", "min_value": 1e-6, "max_value": 0.5},
        {"name": "mini_batch_size", "kind": "Integer", "min_value": 200, "max_value": 800},
    ],
}


@pytest.fixture(scope="module")
def custom() -> Iterator[Synth]:
    yield make_synth({"pipeline": CUSTOM_PIPELINE})


def ours(s: Synth) -> dict:
    return {
        lid: res
        for lid, res in s.resources("AWS::Lambda::Function").items()
        if str(res["Properties"].get("Handler", "")).startswith("lambdas.")
    }


def newest_python() -> str:
    versions = [
        tuple(int(x) for x in m.groups())
        for name in dir(lambda_.Runtime)
        if (m := re.fullmatch(r"PYTHON_(\d+)_(\d+)", name))
    ]
    major, minor = max(versions)
    return f"python{major}.{minor}"


def test_one_function_per_handler_module(synthesized: Synth) -> None:
    handlers = {res["Properties"]["Handler"] for res in ours(synthesized).values()}
    assert handlers == {f"lambdas.{m}.handler" for m in MODULES}


def test_functions_use_newest_python_on_arm64_with_active_tracing(synthesized: Synth) -> None:
    for lid, res in ours(synthesized).items():
        props = res["Properties"]
        assert props["Runtime"] == newest_python(), lid
        assert props["Architectures"] == ["arm64"], lid
        assert props["TracingConfig"] == {"Mode": "Active"}, lid


def test_each_function_logs_to_its_own_group_with_retention(synthesized: Synth) -> None:
    groups = synthesized.resources("AWS::Logs::LogGroup")
    used = []
    for lid, res in ours(synthesized).items():
        group = res["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert groups[group]["Properties"]["RetentionInDays"] == 30, lid
        used.append(group)
    assert len(set(used)) == len(used)


def test_environment_matches_design(synthesized: Synth) -> None:
    for lid, res in ours(synthesized).items():
        env = res["Properties"]["Environment"]["Variables"]
        extra = EXTRA_ENV.get(res["Properties"]["Handler"], set())
        assert set(env) == DESIGN_ENV | extra, lid
        assert env["POWERTOOLS_SERVICE_NAME"] == "mnist-ll-pipeline"
        assert env["STACK_TAG"] == "MnistLinearLearnerPipeline"
        assert env["DEFAULT_ENDPOINT_NAME"] == default_endpoint_name(
            "mnist-ll", "MnistLinearLearnerPipeline"
        )
        assert env["MODEL_PACKAGE_GROUP"] == model_package_group_name(
            "mnist-ll", "MnistLinearLearnerPipeline"
        )
        # The UUID of the stack id: new on every create of the stack.
        assert env["DEPLOYMENT_SALT"] == {
            "Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]
        }
        assert env["LOCK_TABLE"] == {
            "Ref": synthesized.stack.get_logical_id(
                synthesized.stack.leases.table.node.default_child
            )
        }
        assert PipelineConfig.from_json(env[CONFIG_ENV]) == PipelineConfig()


def test_kms_option_adds_the_key_arn(synthesized_kms: Synth) -> None:
    for lid, res in ours(synthesized_kms).items():
        env = res["Properties"]["Environment"]["Variables"]
        extra = EXTRA_ENV.get(res["Properties"]["Handler"], set())
        assert set(env) == DESIGN_ENV | extra | {"KMS_KEY_ARN"}, lid


def test_tuning_ranges_and_objective_come_from_config(custom: Synth) -> None:
    for info in lambda_functions(custom.json).values():
        if not info["handler"].startswith("lambdas."):
            continue
        config = json.loads(info["environment"][CONFIG_ENV])
        assert config["objective_metric"] == "validation:roc_auc_score"
        assert config["max_jobs"] == 4
        assert [r["name"] for r in config["ranges"]] == ["l1", "mini_batch_size"]
        assert config["ranges"][0]["max_value"] == 0.5


def test_heavy_functions_get_memory_and_time(synthesized: Synth) -> None:
    by_handler = {r["Properties"]["Handler"]: r["Properties"] for r in ours(synthesized).values()}
    for module in ("convert", "evaluate"):
        props = by_handler[f"lambdas.{module}.handler"]
        assert props["MemorySize"] >= 2048
        assert props["Timeout"] >= 300
    assert by_handler["lambdas.validate_input.handler"]["MemorySize"] <= 512


def test_all_functions_share_one_asset(synthesized: Synth) -> None:
    keys = {json.dumps(r["Properties"]["Code"], sort_keys=True) for r in ours(synthesized).values()}
    assert len(keys) == 1
