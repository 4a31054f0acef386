from __future__ import annotations

import re

import pytest

from pipeline_core.names import (
    DEPLOYMENT_TAG_KEY,
    EXECUTION_TAG_KEY,
    STACK_TAG_KEY,
    carries_tags,
    default_endpoint_name,
    endpoint_config_name,
    model_name,
    resource_names,
    resource_tags,
    tuning_job_name,
)

SAGEMAKER = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
TAG_VALUE = re.compile(r"^[\w .:/=+\-@]*$")

NASTY = [
    "a",
    "x" * 80,
    "_" * 80,
    "...---___",
    "my.execution_name-2026-01-01T00.00.00",
    "Ünïcödé-名前-" + "z" * 60,
    "UPPER_and_lower",
    "-leading-and-trailing-",
    "(parens)'quotes'!bang",
    "a" * 79 + "b",
]


@pytest.mark.parametrize("execution", NASTY)
def test_names_fit_sagemaker_limits_and_pattern_for_any_execution_name(execution: str) -> None:
    names = resource_names("mnist-ll", execution)
    assert len(names.tuning_job) <= 32
    assert len(names.model) <= 63
    assert len(names.endpoint_config) <= 63
    for name in (names.tuning_job, names.model, names.endpoint_config):
        assert SAGEMAKER.match(name), name


@pytest.mark.parametrize("prefix", ["a", "mnist-ll", "abcdefghijkl"])
def test_names_fit_limits_with_longest_prefix(prefix: str) -> None:
    assert len(tuning_job_name(prefix, "e" * 80)) <= 32
    assert len(model_name(prefix, "e" * 80)) <= 63
    assert len(endpoint_config_name(prefix, "e" * 80)) <= 63


def test_names_are_deterministic() -> None:
    assert resource_names("mnist-ll", "run-42") == resource_names("mnist-ll", "run-42")


def test_names_keep_a_readable_slug_of_the_execution() -> None:
    assert tuning_job_name("mnist-ll", "Run_42").startswith("mnist-ll-run-42-")


def test_names_are_distinct_for_distinct_executions_even_with_equal_slugs() -> None:
    executions = ["run_1", "run.1", "run-1", "RUN-1", "x" * 80, "x" * 79 + "y", "x" * 79]
    for make in (tuning_job_name, model_name, endpoint_config_name):
        names = {make("mnist-ll", e) for e in executions}
        assert len(names) == len(executions)


def test_model_and_config_names_differ_within_an_execution() -> None:
    names = resource_names("mnist-ll", "e")
    assert len({names.tuning_job, names.model, names.endpoint_config}) == 3


@pytest.mark.parametrize("execution", NASTY)
def test_tags_carry_stack_and_execution_with_valid_values(execution: str) -> None:
    tags = resource_tags("MyStack", execution)
    assert [t["Key"] for t in tags] == [STACK_TAG_KEY, EXECUTION_TAG_KEY]
    assert tags[0]["Value"] == "MyStack"
    for tag in tags:
        assert TAG_VALUE.match(tag["Value"]) and len(tag["Value"]) <= 256


def test_the_deployment_salt_changes_every_name_of_the_same_execution() -> None:
    """Two stacks, or a stack destroyed and deployed again, never share names."""
    alpha = resource_names("mnist-ll", "demo", "7f0c2a9e-0000-4000-8000-000000000001")
    beta = resource_names("mnist-ll", "demo", "7f0c2a9e-0000-4000-8000-000000000002")
    for a, b in zip(alpha.to_dict().values(), beta.to_dict().values(), strict=True):
        assert a != b
        assert a.startswith("mnist-ll-demo-") and b.startswith("mnist-ll-demo-")
    assert resource_names("mnist-ll", "demo", "s") == resource_names("mnist-ll", "demo", "s")


@pytest.mark.parametrize("execution", NASTY)
def test_salted_names_fit_sagemaker_limits(execution: str) -> None:
    names = resource_names("abcdefghijkl", execution, "1b4e28ba-2fa1-11d2-883f-0016d3cca427")
    assert len(names.tuning_job) <= 32
    assert max(len(names.model), len(names.endpoint_config)) <= 63
    for name in names.to_dict().values():
        assert SAGEMAKER.match(name), name


@pytest.mark.parametrize(
    "stack", ["Alpha", "Beta", "MnistLinearLearnerPipeline", "A" + "b-" * 63, "x-" * 60 + "y"]
)
def test_default_endpoint_name_is_per_stack_and_valid(stack: str) -> None:
    name = default_endpoint_name("mnist-ll", stack)
    assert len(name) <= 63 and SAGEMAKER.match(name) and name.startswith("mnist-ll-")
    assert name.endswith("-endpoint")
    assert name == default_endpoint_name("mnist-ll", stack)


def test_default_endpoint_names_of_different_stacks_differ_even_with_equal_slugs() -> None:
    stacks = ["Alpha", "alpha", "Beta", "a" * 120 + "X", "a" * 120 + "Y"]
    assert len({default_endpoint_name("mnist-ll", s) for s in stacks}) == len(stacks)
    assert default_endpoint_name("mnist-ll", "Alpha").startswith("mnist-ll-alpha-")


def test_tags_carry_the_deployment_salt_when_there_is_one() -> None:
    tags = resource_tags("MyStack", "e", "1b4e28ba-2fa1-11d2-883f-0016d3cca427")
    assert tags[-1] == {
        "Key": DEPLOYMENT_TAG_KEY,
        "Value": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
    }


def test_carries_tags_needs_every_expected_tag() -> None:
    expected = resource_tags("S", "e", "salt")
    assert carries_tags({t["Key"]: t["Value"] for t in expected} | {"x": "y"}, expected)
    assert not carries_tags({t["Key"]: t["Value"] for t in expected[:2]}, expected)
    assert not carries_tags({}, expected)
