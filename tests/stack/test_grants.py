"""stacks.grants: the tables cover every role, and the applier resolves them."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from stacks.functions import FUNCTION_SPECS
from stacks.grants import (
    GRANTS,
    SERVICE_ROLES,
    If,
    On,
    Targets,
    allow,
    apply_grants,
    objects,
)
from tests.stack.helpers import bare_app

TAG = "mnist-ll:stack"


def test_there_is_one_table_per_function_and_service_role() -> None:
    assert set(GRANTS) == set(FUNCTION_SPECS) | set(SERVICE_ROLES)


def test_every_grant_names_actions_and_resources() -> None:
    for name, grants in GRANTS.items():
        for grant in grants:
            assert grant.actions and grant.resources, name
            assert all(":" in action for action in grant.actions), name


def _arn(name: str) -> str:
    return f"arn:aws:sagemaker:eu-west-1:123456789012:{name.lower()}/test"


def _targets(*, key: bool) -> Targets:
    # Well-formed ARNs, so the synth's policy validation has nothing to report.
    resources: dict[On, tuple[str, ...]] = {on: (_arn(on.name),) for on in On}
    resources[On.KEY] = (_arn("KEY"),) if key else ()
    return Targets(resources=resources, stack_tag="Beta", instance_types=("ml.m5.large",))


def _statements(*, key: bool) -> list[dict[str, Any]]:
    """Apply the (patched) table of Convert to a fresh role; the role's statements."""
    stack = cdk.Stack(bare_app())
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    apply_grants(stack, {"Convert": role}, _targets(key=key))
    policies = Template.from_stack(stack).find_resources("AWS::IAM::Policy")
    return [st for p in policies.values() for st in p["Properties"]["PolicyDocument"]["Statement"]]


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    grants: dict[str, Any] = {}
    monkeypatch.setattr("stacks.grants.GRANTS", grants)
    return grants


def test_resources_and_conditions_are_resolved_and_merged(table: dict[str, Any]) -> None:
    table["Convert"] = (
        allow(
            "sagemaker:CreateModel",
            on=(On.MODEL, On.ENDPOINT),
            when=(If.REQUEST_TAGGED, If.ALLOWED_INSTANCE_TYPES, {"StringEquals": {"x:y": "z"}}),
        ),
        allow("sagemaker:DeleteModel", on=On.MODEL, when=If.TAGGED),
    )
    create, delete = _statements(key=False)
    assert create["Action"] == "sagemaker:CreateModel"
    assert create["Resource"] == [_arn("MODEL"), _arn("ENDPOINT")]
    assert create["Condition"] == {
        "StringEquals": {f"aws:RequestTag/{TAG}": "Beta", "x:y": "z"},
        "ForAllValues:StringEquals": {"sagemaker:InstanceTypes": ["ml.m5.large"]},
    }
    assert delete["Condition"] == {"StringEquals": {f"aws:ResourceTag/{TAG}": "Beta"}}


@pytest.mark.parametrize("key", [False, True])
def test_a_grant_on_the_key_exists_only_with_a_key(table: dict[str, Any], key: bool) -> None:
    table["Convert"] = objects(read=True, write=False)
    statements = _statements(key=key)
    assert [st["Action"] for st in statements] == ["s3:GetObject"] + (
        ["kms:Decrypt"] if key else []
    )


def test_own_policy_makes_a_policy_of_its_own(table: dict[str, Any]) -> None:
    table["Convert"] = (
        allow("s3:GetObject", on=On.BUCKET_OBJECTS),
        allow("states:SendTaskSuccess", on=On.STATE_MACHINE, own_policy="TaskResponse"),
    )
    stack = cdk.Stack(bare_app())
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    apply_grants(stack, {"Convert": role}, _targets(key=False))
    assert stack.node.try_find_child("ConvertTaskResponse") is not None
    assert len(Template.from_stack(stack).find_resources("AWS::IAM::Policy")) == 2


def test_a_role_without_a_table_or_a_missing_target_is_refused() -> None:
    stack = cdk.Stack(bare_app())
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    with pytest.raises(ValueError, match="NoSuchRole"):
        apply_grants(stack, {"NoSuchRole": role}, _targets(key=False))
    with pytest.raises(ValueError, match="TOPIC"):
        Targets(
            resources={on: ("x",) for on in On if on is not On.TOPIC},
            stack_tag="Beta",
            instance_types=(),
        )
