"""Manual approval: WaitForApproval keeps the task token, the state-change
rule's Lambda releases it (events built by hand: moto emits none). Every
call is checked by the Stubber against the real service models."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from pipeline_testlib import BUCKET, REGION, sagemaker_client, stubbed, when

from pipeline_core.approval import approval_key, hold, release
from pipeline_core.errors import InvalidInputError, ModelPackageRejectedError

GROUP = "mnist-ll-models"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mnist-ll-models/4"
TOKEN = "AQB8AAAAKgAAAAMAAAAAAAAAAT" * 4
REGISTRY = {
    "model_package_arn": ARN,
    "approval_status": "PendingManualApproval",
    "model_package_group": GROUP,
    "version": 4,
    "source": "registered",
}


def _clients() -> tuple[Any, Any, Any]:
    return (
        boto3.client("s3", region_name=REGION),
        sagemaker_client(),
        boto3.client("stepfunctions", region_name=REGION),
    )


def _described(
    status: str, description: str | None = None, approval: str | None = "manual"
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ModelPackageName": GROUP,
        "ModelPackageGroupName": GROUP,
        "ModelPackageArn": ARN,
        "CreationTime": when(0),
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelApprovalStatus": status,
        "CustomerMetadataProperties": {"execution": "exec-9"},
    }
    if approval is not None:
        out["CustomerMetadataProperties"]["approval"] = approval
    if description:
        out["ApprovalDescription"] = description
    return out


def _event(status: str, group: str = GROUP) -> dict[str, Any]:
    """What EventBridge delivers for "SageMaker Model Package State Change"."""
    return {
        "version": "0",
        "id": "0f0e0d0c",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2026-11-30T12:00:00Z",
        "region": REGION,
        "resources": [ARN],
        "detail": {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": 4,
            "ModelPackageArn": ARN,
            "ModelApprovalStatus": status,
            "ModelPackageStatus": "Completed",
        },
    }


def _stored_record() -> dict[str, Any]:
    body = json.dumps({"task_token": TOKEN, "registry": REGISTRY}).encode()
    return {"Body": StreamingBody(io.BytesIO(body), len(body))}


def test_hold_stores_the_token_and_keeps_waiting_while_pending() -> None:
    s3, sm, sfn = _clients()
    with stubbed(s3) as s3_stub, stubbed(sm) as sm_stub, stubbed(sfn):
        s3_stub.add_response(
            "put_object",
            {},
            expected_params={
                "Bucket": BUCKET,
                "Key": "runs/exec-9/approval.json",
                "Body": json.dumps({"task_token": TOKEN, "registry": REGISTRY}).encode(),
                "ContentType": "application/json",
            },
        )
        sm_stub.add_response(
            "describe_model_package",
            _described("PendingManualApproval"),
            expected_params={"ModelPackageName": ARN},
        )
        out = hold(
            {"task_token": TOKEN, "registry": REGISTRY}, s3=s3, sm=sm, sfn=sfn, bucket=BUCKET,
            execution_name="exec-9",
        )  # fmt: skip
    assert out == {"waiting": True, "key": approval_key("exec-9")}


def test_hold_completes_at_once_if_the_version_was_approved_before_it_stored_the_token() -> None:
    s3, sm, sfn = _clients()
    with stubbed(s3) as s3_stub, stubbed(sm) as sm_stub, stubbed(sfn) as sfn_stub:
        s3_stub.add_response("put_object", {})
        sm_stub.add_response("describe_model_package", _described("Approved", "ok"))
        sfn_stub.add_response(
            "send_task_success",
            {},
            expected_params={
                "taskToken": TOKEN,
                "output": json.dumps(
                    {**REGISTRY, "approval_status": "Approved", "approval_description": "ok"}
                ),
            },
        )
        out = hold(
            {"task_token": TOKEN, "registry": REGISTRY}, s3=s3, sm=sm, sfn=sfn, bucket=BUCKET,
            execution_name="exec-9",
        )  # fmt: skip
    assert out == {"waiting": False, "sent": "approved"}


def test_hold_needs_a_token() -> None:
    s3, sm, sfn = _clients()
    with pytest.raises(InvalidInputError):
        hold({"registry": REGISTRY}, s3=s3, sm=sm, sfn=sfn, bucket=BUCKET, execution_name="e")


def test_approved_event_sends_task_success_with_the_registry_block() -> None:
    s3, sm, sfn = _clients()
    with stubbed(s3) as s3_stub, stubbed(sm) as sm_stub, stubbed(sfn) as sfn_stub:
        sm_stub.add_response(
            "describe_model_package",
            _described("Approved"),
            expected_params={"ModelPackageName": ARN},
        )
        s3_stub.add_response(
            "get_object",
            _stored_record(),
            expected_params={"Bucket": BUCKET, "Key": "runs/exec-9/approval.json"},
        )
        sfn_stub.add_response(
            "send_task_success",
            {},
            expected_params={
                "taskToken": TOKEN,
                "output": json.dumps(
                    {**REGISTRY, "approval_status": "Approved", "approval_description": None}
                ),
            },
        )
        out = release(_event("Approved"), s3=s3, sm=sm, sfn=sfn, bucket=BUCKET, group=GROUP)
    assert out["sent"] == "approved" and out["execution"] == "exec-9"


def test_rejected_event_fails_the_task_with_the_named_error() -> None:
    s3, sm, sfn = _clients()
    with stubbed(s3) as s3_stub, stubbed(sm) as sm_stub, stubbed(sfn) as sfn_stub:
        sm_stub.add_response("describe_model_package", _described("Rejected", "too many FPs"))
        s3_stub.add_response("get_object", _stored_record())
        sfn_stub.add_response(
            "send_task_failure",
            {},
            expected_params={
                "taskToken": TOKEN,
                "error": ModelPackageRejectedError.__name__,
                "cause": json.dumps(
                    {
                        "message": f"model package {ARN} was rejected",
                        "model_package_arn": ARN,
                        "approval_description": "too many FPs",
                    }
                ),
            },
        )
        out = release(_event("Rejected"), s3=s3, sm=sm, sfn=sfn, bucket=BUCKET, group=GROUP)
    assert out["sent"] == "rejected"


@pytest.mark.parametrize(
    "event",
    [_event("Approved", group="someone-elses-models"), _event("PendingManualApproval")],
)
def test_events_of_other_groups_or_undecided_versions_are_ignored(event: dict[str, Any]) -> None:
    s3, sm, sfn = _clients()
    with stubbed(s3), stubbed(sm), stubbed(sfn):  # no call at all
        out = release(event, s3=s3, sm=sm, sfn=sfn, bucket=BUCKET, group=GROUP)
    assert out["sent"] == "ignored"


def test_a_version_nobody_waits_for_is_ignored() -> None:
    s3, sm, sfn = _clients()
    with stubbed(s3) as s3_stub, stubbed(sm) as sm_stub, stubbed(sfn):
        sm_stub.add_response("describe_model_package", _described("Approved"))
        s3_stub.add_client_error("get_object", service_error_code="NoSuchKey", http_status_code=404)
        out = release(_event("Approved"), s3=s3, sm=sm, sfn=sfn, bucket=BUCKET, group=GROUP)
    assert out == {"sent": "ignored", "reason": "no execution waits for this version"}


def test_a_token_that_timed_out_is_ignored() -> None:
    s3, sm, sfn = _clients()
    with stubbed(s3) as s3_stub, stubbed(sm) as sm_stub, stubbed(sfn) as sfn_stub:
        sm_stub.add_response("describe_model_package", _described("Approved"))
        s3_stub.add_response("get_object", _stored_record())
        sfn_stub.add_client_error("send_task_success", service_error_code="TaskTimedOut")
        out = release(_event("Approved"), s3=s3, sm=sm, sfn=sfn, bucket=BUCKET, group=GROUP)
    assert out["sent"] == "ignored"


def test_an_auto_approved_version_is_ignored_without_reading_a_token() -> None:
    """Its run never waited: there is no approval.json, and without
    s3:ListBucket S3 answers that missing key with 403 AccessDenied, not 404."""
    s3, sm, sfn = _clients()
    with stubbed(s3), stubbed(sm) as sm_stub, stubbed(sfn):  # no S3 or SFN call
        sm_stub.add_response(
            "describe_model_package",
            _described("Approved", approval="auto"),
            expected_params={"ModelPackageName": ARN},
        )
        out = release(_event("Approved"), s3=s3, sm=sm, sfn=sfn, bucket=BUCKET, group=GROUP)
    assert out == {"sent": "ignored", "reason": "registered with approval auto: nobody waits"}


def test_a_version_registered_before_the_approval_metadata_is_ignored_on_access_denied() -> None:
    """Versions without ``approval`` metadata: a 403 on the token is the
    missing key of an auto-approved run (no s3:ListBucket)."""
    s3, sm, sfn = _clients()
    with stubbed(s3) as s3_stub, stubbed(sm) as sm_stub, stubbed(sfn):
        sm_stub.add_response("describe_model_package", _described("Approved", approval=None))
        s3_stub.add_client_error(
            "get_object", service_error_code="AccessDenied", http_status_code=403
        )
        out = release(_event("Approved"), s3=s3, sm=sm, sfn=sfn, bucket=BUCKET, group=GROUP)
    assert out["sent"] == "ignored"


def test_a_manual_version_whose_token_cannot_be_read_still_fails_loudly() -> None:
    s3, sm, sfn = _clients()
    with stubbed(s3) as s3_stub, stubbed(sm) as sm_stub, stubbed(sfn):
        sm_stub.add_response("describe_model_package", _described("Approved"))
        s3_stub.add_client_error(
            "get_object", service_error_code="AccessDenied", http_status_code=403
        )
        with pytest.raises(ClientError, match="AccessDenied"):
            release(_event("Approved"), s3=s3, sm=sm, sfn=sfn, bucket=BUCKET, group=GROUP)
