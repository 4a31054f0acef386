"""Roles AWS services assume: confused-deputy conditions in their trust
policies, and the order CloudFormation deletes the retraining schedule in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match

from tests.stack.conftest import Synth, make_synth

SAGEMAKER_EU_WEST_1 = "arn:aws:sagemaker:eu-west-1:123456789012:*"
SCHEDULE = {"expression": "rate(7 days)", "input": {"target_digit": 3}}


@pytest.fixture(scope="module")
def scheduled() -> Iterator[Synth]:
    """The stack with the optional retraining schedule."""
    yield make_synth({"schedule": SCHEDULE})


def _trust(s: Synth, role: Any) -> dict[str, Any]:
    lid = s.stack.get_logical_id(role.node.default_child)
    document: dict[str, Any] = s.json["Resources"][lid]["Properties"]["AssumeRolePolicyDocument"]
    return document


def _expected_trust(s: Synth, service: str, source_arn: str) -> dict[str, Any]:
    stack = s.stack
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": stack.resolve(stack.account)},
                    "ArnLike": {"aws:SourceArn": stack.resolve(source_arn)},
                },
            }
        ],
    }


def test_sagemaker_assumes_the_execution_role_only_for_this_account_and_region(
    scheduled: Synth,
) -> None:
    stack = scheduled.stack
    expected = _expected_trust(
        scheduled,
        "sagemaker.amazonaws.com",
        f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:*",
    )
    assert _trust(scheduled, stack.sagemaker_role) == expected
    assert expected["Statement"][0]["Condition"]["StringEquals"] == {
        "aws:SourceAccount": {"Ref": "AWS::AccountId"}
    }
    scheduled.template.has_resource_properties(
        "AWS::IAM::Role", {"AssumeRolePolicyDocument": expected}
    )


def test_scheduler_roles_trust_only_this_accounts_default_schedule_group(
    scheduled: Synth,
) -> None:
    stack = scheduled.stack
    group = f"arn:{stack.partition}:scheduler:{stack.region}:{stack.account}:schedule-group/default"
    expected = _expected_trust(scheduled, "scheduler.amazonaws.com", group)
    assert stack.retraining is not None
    for role in (stack.scheduler_role, stack.retraining.role):
        assert _trust(scheduled, role) == expected
    scheduled.template.has_resource_properties(
        "AWS::IAM::Role", {"AssumeRolePolicyDocument": expected}
    )


def test_every_service_role_carries_source_conditions(scheduled: Synth) -> None:
    """No role of ours trusts sagemaker or scheduler without them."""
    for lid, res in scheduled.resources("AWS::IAM::Role").items():
        for st in res["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
            service = st.get("Principal", {}).get("Service")
            if service in ("sagemaker.amazonaws.com", "scheduler.amazonaws.com"):
                assert set(st["Condition"]) == {"StringEquals", "ArnLike"}, lid
                assert set(st["Condition"]["StringEquals"]) == {"aws:SourceAccount"}, lid
                assert set(st["Condition"]["ArnLike"]) == {"aws:SourceArn"}, lid


def test_trust_conditions_render_a_concrete_environment() -> None:
    s = make_synth(env=cdk.Environment(account="123456789012", region="eu-west-1"))
    s.template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": Match.object_like(
                {
                    "Statement": [
                        Match.object_like(
                            {
                                "Principal": {"Service": "sagemaker.amazonaws.com"},
                                "Condition": {
                                    "StringEquals": {"aws:SourceAccount": "123456789012"},
                                    "ArnLike": {"aws:SourceArn": SAGEMAKER_EU_WEST_1},
                                },
                            }
                        )
                    ]
                }
            )
        },
    )


def test_the_retraining_schedule_is_deleted_before_the_cleanup_runs(scheduled: Synth) -> None:
    """On destroy CloudFormation deletes dependents first: the schedule goes
    before the cleanup custom resource, so it cannot start an execution after
    the cleanup stopped them all."""
    stack = scheduled.stack
    assert stack.retraining is not None
    cleanup = stack.get_logical_id(stack.cleanup.resource.node.default_child)
    schedule = stack.get_logical_id(stack.retraining.schedule)
    scheduled.template.has_resource(
        "AWS::Scheduler::Schedule", {"DependsOn": Match.array_with([cleanup])}
    )
    assert cleanup in scheduled.json["Resources"][schedule]["DependsOn"]
