"""The model registry: register a tuned model as a version of the stack's
Model Package Group, and load a registered version to deploy it again.

A version carries everything needed to deploy and evaluate it later without
the run that made it: the Linear Learner image and model artifacts
(``InferenceSpecification``), the run's evaluation report (``ModelMetrics``)
and, as customer metadata, the run's held-out test data and tuning results.
Deploying an earlier version by ARN is how a rollback works.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from pipeline_core.awserrors import named_error
from pipeline_core.config import PipelineConfig
from pipeline_core.errors import (
    InvalidInputError,
    ModelPackageNotApprovedError,
    TuningJobFailedError,
)
from pipeline_core.inputs import RunSpec

#: What the Linear Learner container accepts and answers (FACTS.md).
CONTENT_TYPES = ("text/csv", "application/json", "application/x-recordio-protobuf")
RESPONSE_TYPES = ("application/json", "application/jsonlines")
APPROVED = "Approved"
PENDING = "PendingManualApproval"
REJECTED = "Rejected"
#: Customer metadata keys (the version's own record of where it came from).
META_EXECUTION = "execution"
META_TEST_DATA = "test_data"
META_TARGET_DIGIT = "target_digit"
META_TUNING_JOB = "tuning_job"
META_TRAINING_JOB = "training_job"
META_OBJECTIVE_METRIC = "objective_metric"
META_OBJECTIVE_VALUE = "objective_value"
HYPERPARAMETER_PREFIX = "hp:"


def client_token(execution_name: str) -> str:
    """CreateModelPackage's idempotency token: a retry of the same execution
    gets the same version back instead of registering a second one."""
    return hashlib.sha256(f"register:{execution_name}".encode()).hexdigest()[:36]


def test_data_uri(data: dict[str, Any]) -> str:
    files = data.get("files") or {}
    return str(files.get("test") or f"{str(data['test_uri']).rstrip('/')}/test.rec")


def build_model_package_request(
    run: RunSpec,
    config: PipelineConfig,
    tuning: dict[str, Any],
    data: dict[str, Any],
    *,
    group: str,
    image_uri: str,
) -> dict[str, Any]:
    best = tuning.get("best") or {}
    artifacts = best.get("model_artifacts")
    if not artifacts:
        raise TuningJobFailedError("no best training job with model artifacts to register")
    metadata = {
        META_EXECUTION: run.execution_name,
        META_TEST_DATA: test_data_uri(data),
        META_TARGET_DIGIT: str(run.target_digit),
        META_TUNING_JOB: str(tuning.get("name") or run.names.tuning_job),
        META_TRAINING_JOB: str(best.get("training_job_name") or "unknown"),
        META_OBJECTIVE_METRIC: str(best.get("objective_metric") or run.objective_metric),
        META_OBJECTIVE_VALUE: repr(float(best.get("objective_value") or 0.0)),
    }
    for name, value in sorted((best.get("hyperparameters") or {}).items())[:40]:
        metadata[f"{HYPERPARAMETER_PREFIX}{name}"] = str(value)
    return {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": (
            f"Linear Learner, is it a {run.target_digit}? Execution {run.execution_name}, "
            f"{metadata[META_OBJECTIVE_METRIC]} {metadata[META_OBJECTIVE_VALUE]}"
        )[:1024],
        "InferenceSpecification": {
            "Containers": [{"Image": image_uri, "ModelDataUrl": str(artifacts)}],
            "SupportedContentTypes": list(CONTENT_TYPES),
            "SupportedResponseMIMETypes": list(RESPONSE_TYPES),
            "SupportedRealtimeInferenceInstanceTypes": sorted(config.allowed_instance_types),
            "SupportedTransformInstanceTypes": [run.transform_instance_type],
        },
        "ModelApprovalStatus": APPROVED if run.approval == "auto" else PENDING,
        # Written by Evaluate at this deterministic key.
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": run.s3_uri("report.json"),
                }
            }
        },
        "CustomerMetadataProperties": metadata,
        "ClientToken": client_token(run.execution_name),
    }


def registry_result(arn: str, status: str, group: str, source: str) -> dict[str, Any]:
    """``$.registry``."""
    return {
        "model_package_arn": arn,
        "approval_status": status,
        "model_package_group": group,
        "version": int(arn.rsplit("/", 1)[-1]) if arn.rsplit("/", 1)[-1].isdigit() else None,
        "source": source,
    }


def register_model(
    run: RunSpec,
    config: PipelineConfig,
    tuning: dict[str, Any],
    data: dict[str, Any],
    sm: Any,
    *,
    group: str,
    image_uri: str,
) -> dict[str, Any]:
    """CreateModelPackage; returns ``$.registry`` (source ``registered``)."""
    request = build_model_package_request(
        run, config, tuning, data, group=group, image_uri=image_uri
    )
    try:
        arn = str(sm.create_model_package(**request)["ModelPackageArn"])
    except ClientError as e:
        raise named_error(e, "CreateModelPackage") from e
    return registry_result(arn, str(request["ModelApprovalStatus"]), group, "registered")


def load_model_package(run: RunSpec, sm: Any, *, group: str) -> dict[str, Any]:
    """DescribeModelPackage of ``run.model_package_arn``: an Approved version
    becomes ``{"registry", "tuning", "data"}`` as if this run had tuned it."""
    arn = run.model_package_arn
    if not arn:
        raise InvalidInputError("model_package_arn: missing from the run spec")
    try:
        described = sm.describe_model_package(ModelPackageName=arn)
    except ClientError as e:
        raise named_error(e, "DescribeModelPackage") from e
    status = str(described.get("ModelApprovalStatus"))
    if status != APPROVED:
        raise ModelPackageNotApprovedError(
            f"model package {arn} is {status}: only an Approved version may be deployed"
        )
    containers = (described.get("InferenceSpecification") or {}).get("Containers") or []
    if not containers or not containers[0].get("ModelDataUrl"):
        raise ModelPackageNotApprovedError(f"model package {arn} has no model artifacts")
    container = containers[0]
    meta = described.get("CustomerMetadataProperties") or {}
    if META_TEST_DATA not in meta:
        raise ModelPackageNotApprovedError(
            f"model package {arn} has no '{META_TEST_DATA}' metadata: not registered by "
            "this pipeline, so it cannot be evaluated"
        )
    digit = meta.get(META_TARGET_DIGIT)
    if digit is not None and str(digit) != str(run.target_digit):
        raise InvalidInputError(
            f"target_digit: {run.target_digit}, but model package {arn} answers "
            f"'is it a {digit}?' (pass target_digit {digit})"
        )
    test = str(meta[META_TEST_DATA])
    objective = meta.get(META_OBJECTIVE_VALUE)
    tuning = {
        "name": meta.get(META_TUNING_JOB),
        "status": "Registered",
        "polls": 0,
        "best": {
            "training_job_name": meta.get(META_TRAINING_JOB),
            "objective_metric": meta.get(META_OBJECTIVE_METRIC),
            "objective_value": float(objective) if objective is not None else None,
            "hyperparameters": {
                k[len(HYPERPARAMETER_PREFIX) :]: v
                for k, v in meta.items()
                if k.startswith(HYPERPARAMETER_PREFIX)
            },
            "model_artifacts": str(container["ModelDataUrl"]),
            "image": str(container.get("Image") or ""),
        },
        "failure_reason": None,
    }
    data = {
        "files": {"test": test},
        "test_uri": test.rsplit("/", 1)[0],
        "source": arn,
        "registered_by": meta.get(META_EXECUTION),
    }
    return {
        "registry": registry_result(arn, status, group, "model_package_arn"),
        "tuning": tuning,
        "data": data,
    }


def delete_versions(sm: Any, *, group: str, log: Callable[[str], None]) -> list[str]:
    """On stack delete (removal policy destroy): the group's versions, so
    CloudFormation can delete the group. Best effort: failures are logged."""
    deleted: list[str] = []
    try:
        pages = sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group)
        arns = [s["ModelPackageArn"] for p in pages for s in p.get("ModelPackageSummaryList", [])]
    except ClientError as e:
        log(f"cannot list the versions of {group}: {e}")
        return deleted
    for arn in arns:
        try:
            sm.delete_model_package(ModelPackageName=arn)
        except ClientError as e:
            log(f"cannot delete {arn}: {e}")
            continue
        deleted.append(arn)
    return deleted
