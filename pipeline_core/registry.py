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
import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from pipeline_core.awserrors import named_error
from pipeline_core.config import PipelineConfig
from pipeline_core.errors import (
    InvalidInputError,
    ModelPackageNotApprovedError,
    ModelTestDataMissingError,
    SourceNotFoundError,
    TuningJobFailedError,
)
from pipeline_core.inputs import RunSpec
from pipeline_core.instance_types import refusal
from pipeline_core.s3io import read_bytes, split_s3_uri, translate_read_error

#: What the Linear Learner container accepts and answers (docs/FORMATS.md).
CONTENT_TYPES = ("text/csv", "application/json", "application/x-recordio-protobuf")
RESPONSE_TYPES = ("application/json", "application/jsonlines")
APPROVED = "Approved"
PENDING = "PendingManualApproval"
REJECTED = "Rejected"
#: Customer metadata keys (the version's own record of where it came from).
META_EXECUTION = "execution"
META_TEST_DATA = "test_data"
#: A sharded run's manifest (its test split is many objects, listed there).
META_TEST_MANIFEST = "test_manifest"
META_TARGET_DIGIT = "target_digit"
META_TUNING_JOB = "tuning_job"
META_TRAINING_JOB = "training_job"
META_OBJECTIVE_METRIC = "objective_metric"
META_OBJECTIVE_VALUE = "objective_value"
#: ``auto`` or ``manual``: whether the registering run waits for a decision.
META_APPROVAL = "approval"
#: The converted dataset's source sha256 (report lineage of a later rollback).
META_DATASET_SHA256 = "dataset_sha256"
HYPERPARAMETER_PREFIX = "hp:"
#: What versions of sharded runs recorded as ``test_data`` before ``test_manifest``.
LEGACY_SHARDED_TEST = "/test/test.rec"


def client_token(execution_name: str) -> str:
    """CreateModelPackage's idempotency token: a retry of the same execution
    gets the same version back instead of registering a second one."""
    return hashlib.sha256(f"register:{execution_name}".encode()).hexdigest()[:36]


def _is_sharded(data: dict[str, Any]) -> bool:
    """FinalizeDataset's ``$.data``: object lists in the manifest, no ``files``."""
    return not (data.get("files") or {}).get("test") and bool(
        "splits" in data and data.get("manifest_uri")
    )


def test_data_uri(data: dict[str, Any]) -> str:
    """The test split: the pickle path's one file, or a sharded run's test prefix."""
    if _is_sharded(data):
        return f"{str(data['test_uri']).rstrip('/')}/"
    files = data.get("files") or {}
    return str(files.get("test") or f"{str(data['test_uri']).rstrip('/')}/test.rec")


def _test_metadata(data: dict[str, Any]) -> dict[str, str]:
    meta = {META_TEST_DATA: test_data_uri(data)}
    if _is_sharded(data):
        meta[META_TEST_MANIFEST] = str(data["manifest_uri"])
    return meta


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
        **_test_metadata(data),
        META_TARGET_DIGIT: str(run.target_digit),
        META_APPROVAL: run.approval,
        META_TUNING_JOB: str(tuning.get("name") or run.names.tuning_job),
        META_TRAINING_JOB: str(best.get("training_job_name") or "unknown"),
        META_OBJECTIVE_METRIC: str(best.get("objective_metric") or run.objective_metric),
        META_OBJECTIVE_VALUE: repr(float(best.get("objective_value") or 0.0)),
    }
    if data.get("source_sha256"):
        metadata[META_DATASET_SHA256] = str(data["source_sha256"])
    # 50 entries at most; Evaluate adds 3 (pipeline_core.run_report).
    for name, value in sorted((best.get("hyperparameters") or {}).items())[:36]:
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
            # Only endpoint types: a training-only type in the allowlist would
            # make CreateModelPackage refuse the version.
            "SupportedRealtimeInferenceInstanceTypes": sorted(
                t for t in config.allowed_instance_types if refusal("endpoint", t) is None
            ),
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
    data: dict[str, Any] = {"source": arn, "registered_by": meta.get(META_EXECUTION)}
    if meta.get(META_DATASET_SHA256):
        data["source_sha256"] = meta[META_DATASET_SHA256]
    manifest = meta.get(META_TEST_MANIFEST)
    if manifest:  # a sharded run: Evaluate lists the test objects from its manifest
        data.update(test_uri=test, manifest_uri=str(manifest), splits={})
    else:
        data.update(files={"test": test}, test_uri=test.rsplit("/", 1)[0])
    return {
        "registry": registry_result(arn, status, group, "model_package_arn"),
        "tuning": tuning,
        "data": data,
    }


def _missing(arn: str | None, uri: str, what: str) -> ModelTestDataMissingError:
    return ModelTestDataMissingError(
        f"model package {arn}: its {what} {uri} does not exist (deleted with its run's "
        "data?), so the version cannot be evaluated; restore it, or register a new version "
        "from a new run"
    )


def _exists(s3: Any, uri: str) -> bool:
    bucket, key = split_s3_uri(uri)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        named = translate_read_error(e, uri)
        if isinstance(named, SourceNotFoundError):
            return False
        raise named from e
    return True


def _manifest_test_data(
    s3: Any, manifest_uri: str, data: dict[str, Any], arn: str | None
) -> dict[str, Any]:
    try:
        manifest = json.loads(read_bytes(s3, manifest_uri))
    except SourceNotFoundError as e:
        raise _missing(arn, manifest_uri, "test data manifest") from e
    bucket = split_s3_uri(manifest_uri)[0]
    keys = (manifest.get("files") or {}).get("test") or []
    if not keys:
        raise _missing(arn, manifest_uri, "manifest's list of test objects in")
    for key in keys:
        if not _exists(s3, f"s3://{bucket}/{key}"):
            raise _missing(arn, f"s3://{bucket}/{key}", "test object")
    test_uri = f"{manifest_uri.rsplit('/', 1)[0]}/test/"
    return {
        **{k: v for k, v in data.items() if k != "files"},
        "test_uri": str(data.get("test_uri") or test_uri).rstrip("/") + "/",
        "manifest_uri": manifest_uri,
        "splits": manifest.get("splits") or {},
    }


def require_test_data(s3: Any, data: dict[str, Any], *, arn: str | None) -> dict[str, Any]:
    """LoadModelPackage, before Deploy touches the endpoint: the version's
    test data must still exist (Evaluate reads it). Returns ``data`` as
    Evaluate and StartTransform read it; raises ModelTestDataMissingError.

    A sharded run's version names its manifest: every test object it lists
    must exist. A version registered before versions recorded the manifest
    names ``<run>/data/test/test.rec``, which a sharded run never wrote: the
    run's manifest next to it is used instead."""
    if _is_sharded(data):
        return _manifest_test_data(s3, str(data["manifest_uri"]), data, arn)
    test = str((data.get("files") or {}).get("test") or "")
    if not test:
        raise _missing(arn, "(none recorded)", "test data")
    if _exists(s3, test):
        return data
    if test.endswith(LEGACY_SHARDED_TEST):
        manifest_uri = test[: -len(LEGACY_SHARDED_TEST)] + "/manifest.json"
        if _exists(s3, manifest_uri) and _is_sharded_manifest(s3, manifest_uri):
            return _manifest_test_data(s3, manifest_uri, {**data, "test_uri": None}, arn)
    raise _missing(arn, test, "test data")


def _is_sharded_manifest(s3: Any, manifest_uri: str) -> bool:
    manifest = json.loads(read_bytes(s3, manifest_uri))
    return bool(manifest.get("source_kind") == "sharded")


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
