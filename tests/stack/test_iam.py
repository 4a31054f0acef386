"""Least privilege: PassRole, no wildcard actions, SageMaker scoped to our names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline_core.names import model_package_group_name
from tests.stack.conftest import Synth

PREFIX_ARN = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:{kind}/mnist-ll-*"
AUTO_DELETE_ROLE = "CustomS3AutoDeleteObjectsCustomResourceProviderRole"

#: The default stack's own registry (per stack: see test_many_stacks).
STACK_GROUP = model_package_group_name("mnist-ll", "MnistLinearLearnerPipeline").lower()


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _render(value: Any) -> str:
    """An ARN token as a readable ${...} string (Fn::Join of Refs/strings)."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    if "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(_render(p) for p in parts)
    return repr(value)


def statements(s: Synth) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every statement of every identity and resource policy, with its owner.

    Not included: the KMS key policy (CDK's default gives the account root
    ``kms:*`` so the key stays manageable) and CDK's own auto-delete handler's
    bucket-policy statement.
    """
    for lid, res in s.json["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Policy":
            for st in props["PolicyDocument"]["Statement"]:
                yield lid, st
        elif res["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                for st in policy["PolicyDocument"]["Statement"]:
                    yield lid, st
        elif "PolicyDocument" in props:
            for st in props["PolicyDocument"]["Statement"]:
                principal = st.get("Principal", "")
                principal = _render(
                    principal.get("AWS", "") if isinstance(principal, dict) else principal
                )
                # CDK's own auto-delete handler (bucket policy); not ours to shape.
                if AUTO_DELETE_ROLE not in principal:
                    yield lid, st


def role_statements(s: Synth, role: Any) -> list[dict[str, Any]]:
    role_lid = s.stack.get_logical_id(role.node.default_child)
    out = []
    for res in s.resources("AWS::IAM::Policy").values():
        if {"Ref": role_lid} in res["Properties"]["Roles"]:
            out.extend(res["Properties"]["PolicyDocument"]["Statement"])
    return out


def actions_of(statements_: list[dict[str, Any]]) -> set[str]:
    return {a for st in statements_ for a in _as_list(st["Action"])}


@pytest.fixture(params=["default", "kms"])
def variant(request: pytest.FixtureRequest, synthesized: Synth, synthesized_kms: Synth) -> Synth:
    return synthesized if request.param == "default" else synthesized_kms


def test_no_allow_statement_has_a_wildcard_action(variant: Synth) -> None:
    offenders = [
        (lid, action)
        for lid, st in statements(variant)
        if st["Effect"] == "Allow"
        for action in _as_list(st["Action"])
        if "*" in action
    ]
    assert offenders == []


def test_pass_role_only_to_the_sagemaker_role_and_only_to_sagemaker(variant: Synth) -> None:
    sm_lid = variant.stack.get_logical_id(variant.stack.sagemaker_role.node.default_child)
    pass_role = [
        st
        for _, st in statements(variant)
        if "iam:PassRole" in _as_list(st["Action"])
        and "sagemaker.amazonaws.com" in json.dumps(st.get("Condition"))
    ]
    assert len(pass_role) == 3  # StartTuning, Deploy and StartTransform
    for st in pass_role:
        assert st["Action"] == "iam:PassRole"
        assert st["Resource"] == {"Fn::GetAtt": [sm_lid, "Arn"]}
        assert st["Condition"] == {
            "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
        }


def test_sagemaker_actions_are_scoped_to_our_name_prefix(synthesized: Synth) -> None:
    allowed = {
        PREFIX_ARN.replace("{kind}", k)
        for k in (
            "hyper-parameter-tuning-job",
            "training-job",
            "model",
            "endpoint-config",
            "endpoint",
            "transform-job",
        )
    }
    # The registry: the stack's one Model Package Group and its versions.
    allowed |= {
        PREFIX_ARN.replace("{kind}/mnist-ll-*", f"model-package-group/{STACK_GROUP}"),
        PREFIX_ARN.replace("{kind}/mnist-ll-*", f"model-package/{STACK_GROUP}/*"),
    }
    list_only = {
        "sagemaker:ListEndpointConfigs",
        "sagemaker:ListEndpoints",
        "sagemaker:ListHyperParameterTuningJobs",
        "sagemaker:ListModels",
        "sagemaker:ListTransformJobs",
        "sagemaker:ListModelPackages",
    }
    seen = 0
    for _, st in statements(synthesized):
        actions = [a for a in _as_list(st["Action"]) if a.startswith("sagemaker:")]
        if not actions:
            continue
        seen += 1
        resources = [_render(r) for r in _as_list(st["Resource"])]
        if resources == ["*"]:
            assert set(actions) <= list_only, actions
        else:
            assert set(resources) <= allowed, resources
    assert seen > 5


def test_destructive_sagemaker_calls_require_the_stack_tag(synthesized: Synth) -> None:
    destructive = {
        "sagemaker:DeleteEndpoint",
        "sagemaker:DeleteEndpointConfig",
        "sagemaker:DeleteModel",
        "sagemaker:StopHyperParameterTuningJob",
        "sagemaker:StopTransformJob",
    }
    stack_tag = synthesized.stack.stack_tag
    found = 0
    for _, st in statements(synthesized):
        if destructive & set(_as_list(st["Action"])):
            found += 1
            assert st["Condition"] == {
                "StringEquals": {"aws:ResourceTag/mnist-ll:stack": stack_tag}
            }
    # Deploy, DescribeEndpoint, DescribeTransform, Cleanup (2), CleanupComplete,
    # EndpointTtl, ExecutionEnded
    assert found == 8


def test_sagemaker_role_is_trusted_by_sagemaker_only_and_has_no_managed_policies(
    synthesized: Synth,
) -> None:
    lid = synthesized.stack.get_logical_id(synthesized.stack.sagemaker_role.node.default_child)
    role = synthesized.json["Resources"][lid]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert {k: trust[k] for k in ("Action", "Effect", "Principal")} == {
        "Action": "sts:AssumeRole",
        "Effect": "Allow",
        "Principal": {"Service": "sagemaker.amazonaws.com"},
    }
    # aws:SourceAccount / aws:SourceArn: tests/stack/test_service_roles.py
    assert set(trust["Condition"]) == {"StringEquals", "ArnLike"}
    assert "ManagedPolicyArns" not in role


def test_sagemaker_role_touches_only_the_runs_prefix(
    synthesized: Synth,
) -> None:
    sts = role_statements(synthesized, synthesized.stack.sagemaker_role)
    s3 = [st for st in sts if any(a.startswith("s3:") for a in _as_list(st["Action"]))]
    rendered = {
        (a, _render(r))
        for st in s3
        for a in _as_list(st["Action"])
        for r in _as_list(st["Resource"])
    }
    bucket = synthesized.stack.get_logical_id(synthesized.stack.storage.bucket.node.default_child)
    # Training reads the channels Convert wrote under runs/, never the tutorial object.
    assert rendered == {
        ("s3:GetObject", "${" + bucket + ".Arn}/runs/*"),
        ("s3:PutObject", "${" + bucket + ".Arn}/runs/*"),
        ("s3:ListBucket", "${" + bucket + ".Arn}"),
        ("s3:GetBucketLocation", "${" + bucket + ".Arn}"),
    }
    listing = next(st for st in s3 if st["Action"] == "s3:ListBucket")
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["runs/*"]}}
    ecr = next(st for st in sts if "ecr:BatchGetImage" in _as_list(st["Action"]))
    assert ":repository/linear-learner" in _render(ecr["Resource"])


def test_evaluate_may_invoke_only_our_endpoints(synthesized: Synth) -> None:
    sts = role_statements(synthesized, synthesized.stack.functions["Evaluate"].role)
    invoke = [st for st in sts if "sagemaker:InvokeEndpoint" in _as_list(st["Action"])]
    assert [_render(st["Resource"]) for st in invoke] == [PREFIX_ARN.replace("{kind}", "endpoint")]


def test_convert_reads_the_tutorial_object_and_writes_only_runs(synthesized: Synth) -> None:
    sts = role_statements(synthesized, synthesized.stack.functions["Convert"].role)
    puts = {
        _render(r)
        for st in sts
        if "s3:PutObject" in _as_list(st["Action"])
        for r in _as_list(st["Resource"])
    }
    assert all(r.endswith("/runs/*") for r in puts) and puts
    gets = {
        _render(r)
        for st in sts
        if "s3:GetObject" in _as_list(st["Action"])
        for r in _as_list(st["Resource"])
    }
    assert any("sagemaker-example-files-prod-" in r for r in gets)


def test_validate_input_only_reads_the_endpoint_besides_logs_and_xray(synthesized: Synth) -> None:
    sts = role_statements(synthesized, synthesized.stack.functions["ValidateInput"].role)
    assert actions_of(sts) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
        "sagemaker:DescribeEndpoint",
        "sagemaker:DescribeEndpointConfig",
    }


def test_each_lambda_has_its_own_role_without_managed_policies(synthesized: Synth) -> None:
    roles = [f.role for f in synthesized.stack.functions.values()]
    assert len({id(r) for r in roles}) == len(roles)
    for function in synthesized.stack.functions.values():
        lid = synthesized.stack.get_logical_id(function.role.node.default_child)
        assert "ManagedPolicyArns" not in synthesized.json["Resources"][lid]["Properties"]


def test_kms_key_is_granted_without_wildcard_actions(synthesized_kms: Synth) -> None:
    sm_actions = actions_of(role_statements(synthesized_kms, synthesized_kms.stack.sagemaker_role))
    assert {"kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant"} <= sm_actions
    sfn_role = synthesized_kms.stack.pipeline.state_machine.role
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= actions_of(
        role_statements(synthesized_kms, sfn_role)
    )
