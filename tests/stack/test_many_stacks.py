"""Two stacks of this app in one account never share a default name, and IAM
keeps each one's endpoint grants to resources tagged with its own stack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from stacks.asl import lambda_functions
from tests.stack.conftest import Synth, make_synth
from tests.stack.test_iam import _as_list, statements

#: Actions on an existing endpoint: only with the stack's tag on the resource.
RESOURCE_TAGGED = {
    "sagemaker:UpdateEndpoint",
    "sagemaker:DeleteEndpoint",
    "sagemaker:InvokeEndpoint",
    "sagemaker:DeleteEndpointConfig",
    "sagemaker:DeleteModel",
    "sagemaker:StopHyperParameterTuningJob",
    "sagemaker:StopTransformJob",
}
#: Create calls: only with the stack's tag in the request.
REQUEST_TAGGED = {
    "sagemaker:CreateEndpoint",
    "sagemaker:CreateEndpointConfig",
    "sagemaker:CreateModel",
    "sagemaker:CreateHyperParameterTuningJob",
    "sagemaker:CreateTransformJob",
    "sagemaker:AddTags",
}
#: Versions of the stack's own group: the request carries no Tags (the API
#: refuses them with a group), the group carries the stack tag.
GROUP_SCOPED = {"sagemaker:CreateModelPackage"}


@pytest.fixture(scope="module")
def two_stacks() -> Iterator[dict[str, Synth]]:
    yield {name: make_synth({"stack_name": name}) for name in ("Alpha", "Beta")}


def _env(s: Synth) -> dict[str, Any]:
    envs = [
        info["environment"]
        for info in lambda_functions(s.json).values()
        if info["handler"] == "lambdas.validate_input.handler"
    ]
    assert len(envs) == 1
    return envs[0]


def _conditions(s: Synth, actions: set[str]) -> list[tuple[str, Any]]:
    return [
        (action, st.get("Condition"))
        for _, st in statements(s)
        if st["Effect"] == "Allow"
        for action in _as_list(st["Action"])
        if action in actions
    ]


def test_default_endpoint_names_differ_and_follow_the_stack_name(
    two_stacks: dict[str, Synth],
) -> None:
    alpha, beta = (two_stacks[n] for n in ("Alpha", "Beta"))
    assert alpha.stack.endpoint_name != beta.stack.endpoint_name
    assert alpha.stack.endpoint_name.startswith("mnist-ll-alpha-")
    assert beta.stack.endpoint_name.startswith("mnist-ll-beta-")
    for name, s in two_stacks.items():
        env = _env(s)
        assert env["DEFAULT_ENDPOINT_NAME"] == s.stack.endpoint_name
        assert env["STACK_TAG"] == name
        assert s.json["Outputs"]["EndpointName"]["Value"] == s.stack.endpoint_name


def test_each_stack_owns_its_own_model_package_group(two_stacks: dict[str, Synth]) -> None:
    alpha, beta = (two_stacks[n] for n in ("Alpha", "Beta"))
    assert alpha.stack.model_package_group != beta.stack.model_package_group
    assert alpha.stack.model_package_group.startswith("mnist-ll-alpha-")
    for s in two_stacks.values():
        s.template.has_resource_properties(
            "AWS::SageMaker::ModelPackageGroup",
            {"ModelPackageGroupName": s.stack.model_package_group},
        )
        assert _env(s)["MODEL_PACKAGE_GROUP"] == s.stack.model_package_group


def test_endpoint_grants_are_conditioned_on_each_stacks_own_tag(
    two_stacks: dict[str, Synth],
) -> None:
    for name, s in two_stacks.items():
        tagged = _conditions(s, RESOURCE_TAGGED)
        assert {a for a, _ in tagged} == RESOURCE_TAGGED
        for action, condition in tagged:
            assert condition["StringEquals"] == {"aws:ResourceTag/mnist-ll:stack": name}, action
        created = _conditions(s, REQUEST_TAGGED)
        assert {a for a, _ in created} == REQUEST_TAGGED
        for action, condition in created:
            # Creates that launch instances also carry the instance-type allowlist.
            assert condition["StringEquals"] == {"aws:RequestTag/mnist-ll:stack": name}, action
            assert set(condition) <= {"StringEquals", "ForAllValues:StringEquals"}, action
        group = s.stack.model_package_group.lower()
        registered = [
            st
            for _, st in statements(s)
            if st["Effect"] == "Allow" and GROUP_SCOPED & set(_as_list(st["Action"]))
        ]
        assert registered
        for st in registered:
            assert "Condition" not in st
            rendered = json.dumps(st["Resource"])
            assert f"model-package-group/{group}" in rendered
            assert f"model-package/{group}/*" in rendered


def test_names_are_salted_with_the_stack_id_and_log_groups_are_not_fixed(
    two_stacks: dict[str, Synth],
) -> None:
    salt = {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}
    for s in two_stacks.values():
        fn = s.stack.functions["ValidateInput"].function.node.default_child
        raw = s.json["Resources"][s.stack.get_logical_id(fn)]["Properties"]
        assert raw["Environment"]["Variables"]["DEPLOYMENT_SALT"] == salt
        # The local run resolves it to a deterministic fake stack id's UUID.
        assert len(_env(s)["DEPLOYMENT_SALT"]) == 36
        for lid, res in s.resources("AWS::Logs::LogGroup").items():
            name = res["Properties"].get("LogGroupName")
            # Unnamed (CloudFormation picks a unique name) or salted per create.
            assert name is None or salt in name["Fn::Join"][1], lid
        for lid, res in s.resources("AWS::DynamoDB::Table").items():
            assert "TableName" not in res["Properties"], lid
