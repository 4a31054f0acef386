"""Manual approval of a registered model version.

WaitForApproval (a ``.waitForTaskToken`` task) hands its task token to
:func:`hold`, which keeps it at ``runs/<execution>/approval.json``. When a person
approves or rejects the version (console, ``aws sagemaker update-model-package``
or ``python -m local approve``), SageMaker emits "SageMaker Model Package State
Change"; the stack's rule sends it to :func:`release`, which finds the token
through the version's ``execution`` metadata and completes the task: success
with the updated ``$.registry``, or the named error
``ModelPackageRejectedError``. A decision taken before the token was stored
is caught by :func:`hold` itself, which looks once more after storing it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from pipeline_core.awserrors import code_of, named_error, named_errors
from pipeline_core.errors import InvalidInputError, ModelPackageRejectedError
from pipeline_core.registry import APPROVED, META_APPROVAL, META_EXECUTION, REJECTED

DETAIL_TYPE = "SageMaker Model Package State Change"
EVENT_SOURCE = "aws.sagemaker"
#: SendTaskFailure's cause is at most 32768 characters.
CAUSE_MAX = 32768

#: SendTask* errors that mean nobody waits on the token any more.
STALE_TOKEN_CODES = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})

Log = Callable[[str], None]


def approval_key(execution_name: str) -> str:
    return f"runs/{execution_name}/approval.json"


def _describe(sm: Any, arn: str) -> dict[str, Any]:
    try:
        described: dict[str, Any] = sm.describe_model_package(ModelPackageName=arn)
    except ClientError as e:
        raise named_error(e, "DescribeModelPackage") from e
    return described


def _complete(
    sfn: Any, token: str, registry: Mapping[str, Any], status: str, described: Mapping[str, Any]
) -> str:
    """Send the decision; returns what was sent (``approved``/``rejected``)."""
    if status == APPROVED:
        output = {
            **registry,
            "approval_status": APPROVED,
            "approval_description": described.get("ApprovalDescription"),
        }
        with named_errors("SendTaskSuccess"):
            sfn.send_task_success(taskToken=token, output=json.dumps(output))
        return "approved"
    cause = json.dumps(
        {
            "message": f"model package {registry.get('model_package_arn')} was rejected",
            "model_package_arn": registry.get("model_package_arn"),
            "approval_description": described.get("ApprovalDescription"),
        }
    )[:CAUSE_MAX]
    with named_errors("SendTaskFailure"):
        sfn.send_task_failure(
            taskToken=token, error=ModelPackageRejectedError.__name__, cause=cause
        )
    return "rejected"


def hold(
    event: Mapping[str, Any], *, s3: Any, sm: Any, sfn: Any, bucket: str, execution_name: str
) -> dict[str, Any]:
    """WaitForApproval: keep the token; complete at once if already decided."""
    token = event.get("task_token")
    registry = event.get("registry")
    if not isinstance(token, str) or not token or not isinstance(registry, Mapping):
        raise InvalidInputError("task_token/registry: missing from the task payload")
    record = {"task_token": token, "registry": dict(registry)}
    with named_errors("S3 PutObject (approval token)"):
        s3.put_object(
            Bucket=bucket,
            Key=approval_key(execution_name),
            Body=json.dumps(record).encode(),
            ContentType="application/json",
        )
    described = _describe(sm, str(registry["model_package_arn"]))
    status = str(described.get("ModelApprovalStatus"))
    if status in (APPROVED, REJECTED):
        return {"waiting": False, "sent": _complete(sfn, token, registry, status, described)}
    return {"waiting": True, "key": approval_key(execution_name)}


def release(
    event: Mapping[str, Any],
    *,
    s3: Any,
    sm: Any,
    sfn: Any,
    bucket: str,
    group: str,
    log: Log = lambda _m: None,
) -> dict[str, Any]:
    """The rule's target: complete the waiting task of the version's execution."""
    detail = event.get("detail") or {}
    arn = detail.get("ModelPackageArn")
    status = detail.get("ModelApprovalStatus")
    if detail.get("ModelPackageGroupName") != group or not isinstance(arn, str):
        return {"sent": "ignored", "reason": "not a version of this stack's registry"}
    if status not in (APPROVED, REJECTED):
        return {"sent": "ignored", "reason": f"status {status}"}
    described = _describe(sm, arn)
    meta = described.get("CustomerMetadataProperties") or {}
    execution = meta.get(META_EXECUTION)
    if not execution:
        return {"sent": "ignored", "reason": "no execution metadata"}
    mode = meta.get(META_APPROVAL)
    if mode is not None and mode != "manual":
        # Approved at registration: its run never stored a token to read.
        return {"sent": "ignored", "reason": f"registered with approval {mode}: nobody waits"}
    try:
        body = s3.get_object(Bucket=bucket, Key=approval_key(str(execution)))["Body"].read()
    except ClientError as e:
        code = code_of(e)
        if code in ("NoSuchKey", "404", "NotFound"):
            # WaitForApproval not reached yet (it looks itself once it has
            # stored the token).
            return {"sent": "ignored", "reason": "no execution waits for this version"}
        if mode is None and code in ("AccessDenied", "403", "Forbidden"):
            # Registered before versions recorded their approval mode: without
            # s3:ListBucket a missing token (an auto run's) reads as 403.
            log(f"no readable approval token for {arn} ({code}): treated as not waiting")
            return {"sent": "ignored", "reason": "no execution waits for this version"}
        raise named_error(e, "S3 GetObject (approval token)") from e
    record = json.loads(body)
    registry = record["registry"]
    if registry.get("model_package_arn") != arn:
        return {"sent": "ignored", "reason": "the waiting execution holds another version"}
    # The event's status is what was decided; the description may be newer still.
    current = str(described.get("ModelApprovalStatus") or status)
    try:
        sent = _complete(sfn, record["task_token"], registry, current, described)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in STALE_TOKEN_CODES:
            raise
        # The execution ended (timeout, stop) or took the decision already.
        log(f"approval task of {execution} is no longer waiting: {e}")
        return {"sent": "ignored", "reason": "the execution no longer waits"}
    return {"sent": sent, "model_package_arn": arn, "execution": execution}
