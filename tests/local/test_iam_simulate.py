"""``iam:SimulatePrincipalPolicy`` on the local account (moto 5.2.5 has no
handler: local/account/moto_fixes/iam.py), and the env file's role, which the
SageMaker SDK v3 validates with it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local.account import moto_fixes
from local.account.example_role import ROLE_NAME, TRUST_POLICY, ensure_example_role

ACCOUNT = "123456789012"

POLICY = """{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "ReadData",
      "Effect": "Allow",
      "Action": ["s3:Get*", "s3:ListBucket"],
      "Resource": ["arn:aws:s3:::data", "arn:aws:s3:::data/*"]
    },
    {
      "Sid": "NoSecrets",
      "Effect": "Deny",
      "Action": "s3:GetObject",
      "Resource": "arn:aws:s3:::data/secret/*"
    },
    {
      "Sid": "Metrics",
      "Effect": "Allow",
      "Action": "cloudwatch:PutMetric?ata",
      "Resource": "*"
    },
    {
      "Sid": "OnlyFromTags",
      "Effect": "Allow",
      "Action": "sqs:SendMessage",
      "Resource": "*",
      "Condition": {"StringEquals": {"aws:ResourceTag/team": "ml"}}
    }
  ]
}"""


@pytest.fixture
def iam(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    moto_fixes.install()
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("iam", region_name="us-east-1")
        client.create_role(RoleName="worker", AssumeRolePolicyDocument=json.dumps(TRUST_POLICY))
        client.put_role_policy(RoleName="worker", PolicyName="inline", PolicyDocument=POLICY)
        yield client


def _simulate(iam: Any, principal: str = "role/worker", **kwargs: Any) -> list[dict[str, Any]]:
    answer = iam.simulate_principal_policy(
        PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:{principal}", **kwargs
    )
    return list(answer["EvaluationResults"])


def test_allowed_action_names_the_matching_statement_and_where_it_is(iam: Any) -> None:
    (result,) = _simulate(
        iam, ActionNames=["s3:GetObject"], ResourceArns=["arn:aws:s3:::data/train.csv"]
    )
    assert result["EvalDecision"] == "allowed"
    assert result["EvalActionName"] == "s3:GetObject"
    (statement,) = result["MatchedStatements"]
    assert statement["SourcePolicyId"] == "inline"
    assert statement["SourcePolicyType"] == "role"
    # the first statement's braces: line 4, column 5 to line 9
    assert statement["StartPosition"] == {"Line": 4, "Column": 5}
    assert statement["EndPosition"]["Line"] == 9
    (specific,) = result["ResourceSpecificResults"]
    assert specific["EvalResourceName"] == "arn:aws:s3:::data/train.csv"
    assert specific["EvalResourceDecision"] == "allowed"


def test_unlisted_action_or_resource_is_an_implicit_deny(iam: Any) -> None:
    results = _simulate(
        iam,
        ActionNames=["s3:PutObject", "s3:GetObject"],
        ResourceArns=["arn:aws:s3:::other/key"],
    )
    assert [r["EvalDecision"] for r in results] == ["implicitDeny", "implicitDeny"]
    assert all(r["MatchedStatements"] == [] for r in results)
    # without ResourceArns the resource is "*": a bucket-scoped Allow does not cover it
    (star,) = _simulate(iam, ActionNames=["s3:GetObject"])
    assert star["EvalResourceName"] == "*" and star["EvalDecision"] == "implicitDeny"
    assert "ResourceSpecificResults" not in star


def test_explicit_deny_wins_over_an_allow(iam: Any) -> None:
    (result,) = _simulate(
        iam,
        ActionNames=["s3:GetObject"],
        ResourceArns=["arn:aws:s3:::data/ok.csv", "arn:aws:s3:::data/secret/key"],
    )
    assert result["EvalDecision"] == "explicitDeny"
    decisions = {
        r["EvalResourceName"]: r["EvalResourceDecision"] for r in result["ResourceSpecificResults"]
    }
    assert decisions == {
        "arn:aws:s3:::data/ok.csv": "allowed",
        "arn:aws:s3:::data/secret/key": "explicitDeny",
    }
    denied = result["ResourceSpecificResults"][1]["MatchedStatements"]
    assert [s["StartPosition"]["Line"] for s in denied] == [10]  # only the Deny statement


def test_wildcards_match_actions_case_insensitively(iam: Any) -> None:
    results = _simulate(
        iam,
        ActionNames=[
            "S3:GETBUCKETLOCATION",
            "cloudwatch:PutMetricData",
            "cloudwatch:PutMetricAlarm",
        ],
        ResourceArns=["arn:aws:s3:::data"],
    )
    decisions = [r["EvalDecision"] for r in results]
    # "PutMetric?ata" takes one character, and its "*" Resource covers any resource
    assert decisions == ["allowed", "allowed", "implicitDeny"]


def test_a_condition_without_its_context_key_does_not_apply_and_is_reported(iam: Any) -> None:
    (missing,) = _simulate(iam, ActionNames=["sqs:SendMessage"])
    assert missing["EvalDecision"] == "implicitDeny"
    assert missing["MissingContextValues"] == ["aws:ResourceTag/team"]

    def with_team(team: str) -> str:
        entry = {"ContextKeyName": "aws:ResourceTag/team", "ContextKeyValues": [team],
                 "ContextKeyType": "string"}  # fmt: skip
        (result,) = _simulate(iam, ActionNames=["sqs:SendMessage"], ContextEntries=[entry])
        assert result["MissingContextValues"] == []
        return str(result["EvalDecision"])

    assert with_team("ml") == "allowed"
    assert with_team("web") == "implicitDeny"


def test_results_page_with_max_items_and_marker(iam: Any) -> None:
    actions = [f"cloudwatch:Action{i}" for i in range(5)]
    principal = f"arn:aws:iam::{ACCOUNT}:role/worker"
    first = iam.simulate_principal_policy(
        PolicySourceArn=principal, ActionNames=actions, MaxItems=2
    )
    assert first["IsTruncated"] is True and len(first["EvaluationResults"]) == 2
    second = iam.simulate_principal_policy(
        PolicySourceArn=principal, ActionNames=actions, MaxItems=2, Marker=first["Marker"]
    )
    assert [r["EvalActionName"] for r in second["EvaluationResults"]] == actions[2:4]
    pages = iam.get_paginator("simulate_principal_policy").paginate(
        PolicySourceArn=principal, ActionNames=actions, PaginationConfig={"PageSize": 2}
    )
    names = [r["EvalActionName"] for page in pages for r in page["EvaluationResults"]]
    assert names == actions
    last = iam.simulate_principal_policy(PolicySourceArn=principal, ActionNames=actions)
    assert last["IsTruncated"] is False and "Marker" not in last


def test_user_policies_include_attached_managed_and_group_policies(iam: Any) -> None:
    managed = iam.create_policy(
        PolicyName="queues",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}],
            }
        ),
    )["Policy"]["Arn"]
    iam.create_user(UserName="ada")
    iam.create_group(GroupName="readers")
    iam.add_user_to_group(GroupName="readers", UserName="ada")
    iam.attach_group_policy(GroupName="readers", PolicyArn=managed)
    (result,) = _simulate(iam, "user/ada", ActionNames=["sqs:ReceiveMessage"])
    assert result["EvalDecision"] == "allowed"
    assert result["MatchedStatements"][0]["SourcePolicyId"] == "queues"
    assert result["MatchedStatements"][0]["SourcePolicyType"] == "user-managed"


def test_a_missing_principal_is_no_such_entity_as_aws_words_it(iam: Any) -> None:
    with pytest.raises(ClientError) as raised:
        _simulate(iam, "role/ghost", ActionNames=["s3:GetObject"])
    error = raised.value.response["Error"]
    assert error["Code"] == "NoSuchEntity"
    assert error["Message"] == "The role with name ghost cannot be found."
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError, match="Invalid Entity Arn"):
        iam.simulate_principal_policy(
            PolicySourceArn=f"arn:aws:sts::{ACCOUNT}:assumed-role/x/y", ActionNames=["s3:GetObject"]
        )


def test_the_env_file_role_passes_the_sdk_v3_checks_and_twice_is_fine(iam: Any) -> None:
    arn = ensure_example_role(iam)
    assert ensure_example_role(iam) == arn == f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}"
    # what sagemaker.core.helper.iam_role_resolver simulates for training and serving
    smoke = [
        "ecr:GetAuthorizationToken",
        "cloudwatch:PutMetricData",
        "ec2:CreateNetworkInterface",
        "ec2:CreateNetworkInterfacePermission",
        "ec2:DeleteNetworkInterface",
        "ec2:DeleteNetworkInterfacePermission",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeVpcs",
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
    ]
    results = _simulate(iam, f"role/{ROLE_NAME}", ActionNames=smoke)
    assert {r["EvalActionName"]: r["EvalDecision"] for r in results} == dict.fromkeys(
        smoke, "allowed"
    )
    (denied,) = _simulate(iam, f"role/{ROLE_NAME}", ActionNames=["iam:CreateUser"])
    assert denied["EvalDecision"] == "implicitDeny"
    trust = iam.get_role(RoleName=ROLE_NAME)["Role"]["AssumeRolePolicyDocument"]
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
