"""enable_kms: one stack key, granted per role on that key only, CreateGrant for AWS resources."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from tests.stack.conftest import Synth
from tests.stack.test_iam import actions_of, role_statements, statements

GRANT_CONDITION = {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def _key_arn(s: Synth) -> dict[str, Any]:
    assert s.stack.key is not None
    return {"Fn::GetAtt": [s.stack.get_logical_id(s.stack.key.node.default_child), "Arn"]}


def _kms(sts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        st
        for st in sts
        if any(a.startswith("kms:") for a in (st["Action"] if isinstance(st["Action"], list)
                                             else [st["Action"]]))
    ]  # fmt: skip


def test_without_kms_nothing_is_granted_on_any_key(synthesized: Synth) -> None:
    assert synthesized.stack.key is None
    assert _kms([st for _, st in statements(synthesized)]) == []
    assert synthesized.resources("AWS::KMS::Key") == {}


def test_every_kms_statement_is_scoped_to_the_stack_key(synthesized_kms: Synth) -> None:
    kms = _kms([st for _, st in statements(synthesized_kms)])
    assert kms
    for st in kms:
        if "Principal" in st:  # the key policy's own admin statement
            continue
        assert st["Resource"] == _key_arn(synthesized_kms), st


def test_create_grant_is_only_for_aws_resources(synthesized_kms: Synth) -> None:
    grants = [
        st
        for _, st in statements(synthesized_kms)
        if "Principal" not in st and "kms:CreateGrant" in actions_of([st])
    ]
    assert len(grants) == 4  # SageMaker role, StartTuning, Deploy, StartTransform
    for st in grants:
        assert st["Action"] == "kms:CreateGrant"
        assert st["Condition"] == GRANT_CONDITION


def test_sagemaker_role_may_use_the_key_for_artifacts_and_volumes(synthesized_kms: Synth) -> None:
    sts = _kms(role_statements(synthesized_kms, synthesized_kms.stack.sagemaker_role))
    assert actions_of(sts) == {
        "kms:CreateGrant",
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:Encrypt",
        "kms:GenerateDataKey",
    }


def test_sagemaker_role_may_encrypt_the_output_with_the_key(synthesized_kms: Synth) -> None:
    """OutputDataConfig.KmsKeyId: the API reference requires kms:Encrypt on the
    key for the role the job runs as (model artifacts are written encrypted)."""
    role = synthesized_kms.stack.sagemaker_role
    role_lid = synthesized_kms.stack.get_logical_id(role.node.default_child)
    synthesized_kms.template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": Match.array_with([{"Ref": role_lid}]),
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Action": Match.array_with(["kms:Encrypt"]),
                                "Resource": _key_arn(synthesized_kms),
                            }
                        )
                    ]
                ),
                "Version": "2012-10-17",
            },
        },
    )


def test_only_the_sagemaker_role_may_encrypt_directly(synthesized_kms: Synth) -> None:
    """SSE-KMS writes of the Lambdas need GenerateDataKey, not Encrypt."""
    encrypting = {
        lid
        for lid, st in statements(synthesized_kms)
        if "Principal" not in st and "kms:Encrypt" in actions_of([st])
    }
    role = synthesized_kms.stack.sagemaker_role
    policies = {
        lid
        for lid, res in synthesized_kms.resources("AWS::IAM::Policy").items()
        if {"Ref": synthesized_kms.stack.get_logical_id(role.node.default_child)}
        in res["Properties"]["Roles"]
    }
    assert encrypting and encrypting <= policies


def test_lambdas_get_only_what_their_calls_need(synthesized_kms: Synth) -> None:
    fns = synthesized_kms.stack.functions
    expected = {
        "ValidateInput": set(),
        "Convert": {"kms:Decrypt", "kms:GenerateDataKey"},
        "ConvertShard": {"kms:Decrypt", "kms:GenerateDataKey"},
        "FinalizeDataset": {"kms:Decrypt", "kms:GenerateDataKey"},
        "StartTuning": {"kms:DescribeKey", "kms:CreateGrant"},
        "DescribeTuning": set(),
        "Deploy": {"kms:DescribeKey", "kms:CreateGrant"},
        "DescribeEndpoint": set(),
        "Evaluate": {"kms:Decrypt", "kms:GenerateDataKey"},
        "Cleanup": set(),
        "CleanupComplete": set(),
        "ScheduleEndpointTtl": set(),
        # Transform output and volumes name the key: SageMaker creates grants on it.
        "StartTransform": {"kms:DescribeKey", "kms:CreateGrant"},
        "DescribeTransform": set(),
        # They publish to the topic, which the key encrypts.
        "EndpointTtl": {"kms:Decrypt", "kms:GenerateDataKey"},
        "ExecutionEnded": {"kms:Decrypt", "kms:GenerateDataKey"},
        "RegisterModel": set(),
        "LoadModelPackage": {"kms:Decrypt"},  # reads its run's manifest
        # The approval task token under runs/<execution>/ (SSE-KMS).
        "WaitForApproval": {"kms:Decrypt", "kms:GenerateDataKey"},
        # Reads the task token; its on-failure destination publishes to the encrypted topic.
        "ApprovalDecided": {"kms:Decrypt", "kms:GenerateDataKey"},
    }
    got = {
        name: actions_of(_kms(role_statements(synthesized_kms, fn.role)))
        for name, fn in fns.items()
    }
    assert got == expected


def test_state_machine_may_publish_to_the_encrypted_topic(synthesized_kms: Synth) -> None:
    role = synthesized_kms.stack.pipeline.state_machine.role
    assert actions_of(_kms(role_statements(synthesized_kms, role))) == {
        "kms:Decrypt",
        "kms:GenerateDataKey",
    }


def test_the_lambdas_receive_the_key_arn(synthesized_kms: Synth) -> None:
    for res in synthesized_kms.resources("AWS::Lambda::Function").values():
        env = res["Properties"].get("Environment", {}).get("Variables", {})
        if "STACK_TAG" in env:
            assert env["KMS_KEY_ARN"] == _key_arn(synthesized_kms)


def test_key_rotates(synthesized_kms: Synth) -> None:
    (key,) = synthesized_kms.resources("AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
