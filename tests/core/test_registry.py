"""The model registry: CreateModelPackage's request (Stubber: the real service
model), the round trip through moto's model-package API, and what a
registered version must be before it is deployed by ARN."""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from moto import mock_aws
from pipeline_testlib import (
    BUCKET,
    IMAGE,
    REGION,
    make_run,
    sagemaker_client,
    stubbed,
    tuning_result,
    when,
)

from pipeline_core.config import DEFAULTS
from pipeline_core.errors import (
    InvalidInputError,
    ModelPackageNotApprovedError,
    ModelTestDataMissingError,
    SourceAccessDeniedError,
    TuningJobFailedError,
)
from pipeline_core.evaluate import test_object_uris as evaluated_objects
from pipeline_core.registry import (
    build_model_package_request,
    client_token,
    load_model_package,
    register_model,
    require_test_data,
)
from pipeline_core.transform import test_file_uri as transform_input

GROUP = "mnist-ll-models"
DATA = {
    "files": {"test": "s3://mnist-ll-data-bucket/runs/exec-1/data/test/test.rec"},
    "test_uri": "s3://mnist-ll-data-bucket/runs/exec-1/data/test",
}
ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mnist-ll-models/3"


def _register(sm: Any, run_input: dict[str, Any] | None = None) -> dict[str, Any]:
    return register_model(
        make_run("exec-1", run_input), DEFAULTS, tuning_result(), DATA, sm, group=GROUP,
        image_uri=IMAGE,
    )  # fmt: skip


def test_register_sends_inference_spec_metrics_and_metadata_but_no_tags() -> None:
    run = make_run("exec-1")
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_response(
            "create_model_package",
            {"ModelPackageArn": ARN},
            expected_params=build_model_package_request(
                run, DEFAULTS, tuning_result(), DATA, group=GROUP, image_uri=IMAGE
            ),
        )
        out = _register(sm)
    assert out == {
        "model_package_arn": ARN,
        "approval_status": "Approved",
        "model_package_group": GROUP,
        "version": 3,
        "source": "registered",
    }
    request = build_model_package_request(
        run, DEFAULTS, tuning_result(), DATA, group=GROUP, image_uri=IMAGE
    )
    container = request["InferenceSpecification"]["Containers"][0]
    assert container == {"Image": IMAGE, "ModelDataUrl": tuning_result()["best"]["model_artifacts"]}
    assert "text/csv" in request["InferenceSpecification"]["SupportedContentTypes"]
    assert request["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == (
        "s3://mnist-ll-data-bucket/runs/exec-1/report.json"
    )
    assert request["CustomerMetadataProperties"]["test_data"] == DATA["files"]["test"]
    # With ModelPackageGroupName the API refuses Tags: a version uses its group's.
    assert request["ModelPackageGroupName"] == GROUP
    assert "Tags" not in request
    assert request["ClientToken"] == client_token("exec-1")


def test_only_endpoint_types_of_the_allowlist_are_offered_for_real_time_inference() -> None:
    # ml.c5n.xlarge trains but serves nothing: CreateModelPackage would refuse it
    # in SupportedRealtimeInferenceInstanceTypes (its enum is the endpoint list).
    config = dataclasses.replace(
        DEFAULTS, allowed_instance_types=(*DEFAULTS.allowed_instance_types, "ml.c5n.xlarge")
    )
    request = build_model_package_request(
        make_run("exec-1", config=config), config, tuning_result(), DATA, group=GROUP,
        image_uri=IMAGE,
    )  # fmt: skip
    offered = request["InferenceSpecification"]["SupportedRealtimeInferenceInstanceTypes"]
    assert offered == sorted(DEFAULTS.allowed_instance_types)
    assert "ml.c5n.xlarge" not in offered


def test_manual_approval_registers_pending() -> None:
    request = build_model_package_request(
        make_run("exec-1", {"approval": "manual"}), DEFAULTS, tuning_result(), DATA, group=GROUP,
        image_uri=IMAGE,
    )  # fmt: skip
    assert request["ModelApprovalStatus"] == "PendingManualApproval"
    # ApprovalDecided reads it: only a manual version has an execution waiting.
    assert request["CustomerMetadataProperties"]["approval"] == "manual"
    auto = build_model_package_request(
        make_run("exec-1"), DEFAULTS, tuning_result(), DATA, group=GROUP, image_uri=IMAGE
    )
    assert auto["CustomerMetadataProperties"]["approval"] == "auto"


def test_a_retry_sends_the_same_client_token_and_distinct_runs_do_not() -> None:
    assert client_token("exec-1") == client_token("exec-1") != client_token("exec-2")
    assert len(client_token("exec-1")) <= 36


def test_register_refuses_a_tuning_without_artifacts() -> None:
    tuning = {**tuning_result(), "best": None}
    with pytest.raises(TuningJobFailedError):
        build_model_package_request(
            make_run(), DEFAULTS, tuning, DATA, group=GROUP, image_uri=IMAGE
        )


def _described(status: str, **meta: str) -> dict[str, Any]:
    return {
        "ModelPackageName": GROUP,
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": 3,
        "ModelPackageArn": ARN,
        "CreationTime": when(0),
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelApprovalStatus": status,
        "InferenceSpecification": {
            "Containers": [{"Image": "other-image:1", "ModelDataUrl": "s3://b/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        "CustomerMetadataProperties": {
            "execution": "exec-1",
            "test_data": DATA["files"]["test"],
            "target_digit": "0",
            **meta,
        },
    }


def test_load_turns_an_approved_version_into_tuning_and_data() -> None:
    run = make_run("rollback-1", {"model_package_arn": ARN})
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_response(
            "describe_model_package",
            _described("Approved", **{"hp:wd": "0.5"}),
            expected_params={"ModelPackageName": ARN},
        )
        out = load_model_package(run, sm, group=GROUP)
    best = out["tuning"]["best"]
    # Deployed from the version's own InferenceSpecification.
    assert best["model_artifacts"] == "s3://b/model.tar.gz"
    assert best["image"] == "other-image:1"
    assert best["hyperparameters"] == {"wd": "0.5"}
    assert out["data"]["files"]["test"] == DATA["files"]["test"]
    assert out["registry"]["approval_status"] == "Approved"
    assert out["registry"]["source"] == "model_package_arn"


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected"])
def test_load_refuses_a_version_that_is_not_approved(status: str) -> None:
    run = make_run("rollback-1", {"model_package_arn": ARN})
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_response("describe_model_package", _described(status))
        with pytest.raises(ModelPackageNotApprovedError, match=status):
            load_model_package(run, sm, group=GROUP)


def test_load_refuses_a_version_for_another_digit() -> None:
    run = make_run("rollback-1", {"model_package_arn": ARN})
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_response("describe_model_package", _described("Approved", target_digit="3"))
        with pytest.raises(InvalidInputError, match="target_digit 3"):
            load_model_package(run, sm, group=GROUP)


def test_registry_round_trip_through_moto() -> None:
    with mock_aws():
        sm = boto3.client("sagemaker", region_name="us-east-1")
        sm.create_model_package_group(ModelPackageGroupName=GROUP)
        registered = _register(sm)
        arn = registered["model_package_arn"]
        assert arn.endswith(f"model-package/{GROUP}/1")
        loaded = load_model_package(
            make_run("rollback-1", {"model_package_arn": arn}), sm, group=GROUP
        )
        assert (
            loaded["tuning"]["best"]["model_artifacts"]
            == (tuning_result()["best"]["model_artifacts"])
        )
        assert loaded["data"]["registered_by"] == "exec-1"
        pending = _register(sm, {"approval": "manual"})
        with pytest.raises(ModelPackageNotApprovedError):
            load_model_package(
                make_run("rollback-2", {"model_package_arn": pending["model_package_arn"]}),
                sm,
                group=GROUP,
            )


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"model_package_arn": "arn:aws:sagemaker:us-east-1:1:model/x"}, "model_package_arn"),
        (
            {"model_package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/x/1"},
            "model_package_arn",
        ),
        ({"model_package_arn": ARN, "max_jobs": 2}, "max_jobs"),
        ({"model_package_arn": ARN, "approval": "manual"}, "approval"),
        ({"approval": "sometimes"}, "approval"),
        ({"model_package_arn": 7}, "model_package_arn"),
    ],
)
def test_input_rejects_bad_registry_keys_naming_them(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(InvalidInputError, match=f"^{key}"):
        make_run("exec-1", raw)


def test_stack_delete_removes_every_version_so_the_group_can_go() -> None:
    from pipeline_core.registry import delete_versions

    arns = [f"{ARN[:-2]}/{n}" for n in (1, 2)]
    summaries = [
        {
            "ModelPackageName": GROUP,
            "ModelPackageGroupName": GROUP,
            "ModelPackageVersion": n,
            "ModelPackageArn": arn,
            "CreationTime": when(n),
            "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": "Approved",
        }
        for n, arn in enumerate(arns, start=1)
    ]
    sm = sagemaker_client()
    logged: list[str] = []
    with stubbed(sm) as stub:
        stub.add_response(
            "list_model_packages",
            {"ModelPackageSummaryList": summaries},
            expected_params={"ModelPackageGroupName": GROUP},
        )
        stub.add_response("delete_model_package", {}, expected_params={"ModelPackageName": arns[0]})
        stub.add_client_error(
            "delete_model_package",
            service_error_code="ConflictException",
            expected_params={"ModelPackageName": arns[1]},
        )
        assert delete_versions(sm, group=GROUP, log=logged.append) == [arns[0]]
    assert len(logged) == 1 and arns[1] in logged[0]


# -- a version registered from a sharded source (FinalizeDataset's $.data) ----

SHARDED_RUN = "runs/exec-s/data/"
SHARDED_DATA = {
    "train_uri": f"s3://{BUCKET}/{SHARDED_RUN}train/",
    "validation_uri": f"s3://{BUCKET}/{SHARDED_RUN}validation/",
    "test_uri": f"s3://{BUCKET}/{SHARDED_RUN}test/",
    "manifest_uri": f"s3://{BUCKET}/{SHARDED_RUN}manifest.json",
    "counts": {"train": 40, "validation": 10, "test": 12},
    "splits": {
        "train": {"rows": 40, "objects": 2},
        "validation": {"rows": 10, "objects": 1},
        "test": {"rows": 12, "objects": 2},
    },
    "source_sha256": "ab" * 32,
}
TEST_KEYS = [f"{SHARDED_RUN}test/part-0.npz.0000.rec", f"{SHARDED_RUN}test/part-1.npz.0000.rec"]


def _put_sharded_run(s3: Any, *, test_objects: list[str] = TEST_KEYS) -> None:
    s3.create_bucket(Bucket=BUCKET)
    manifest = {
        "source_kind": "sharded",
        "splits": SHARDED_DATA["splits"],
        "files": {"train": [], "validation": [], "test": TEST_KEYS},
    }
    s3.put_object(Bucket=BUCKET, Key=f"{SHARDED_RUN}manifest.json", Body=json.dumps(manifest))
    for key in test_objects:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"rec")


def _register_and_load(sm: Any, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    sm.create_model_package_group(ModelPackageGroupName=GROUP)
    arn = register_model(
        make_run("exec-s"), DEFAULTS, tuning_result(), data, sm, group=GROUP, image_uri=IMAGE
    )["model_package_arn"]
    return arn, load_model_package(
        make_run("redeploy-1", {"model_package_arn": arn}), sm, group=GROUP
    )


def test_a_version_from_a_sharded_source_records_its_manifest_and_evaluates_again() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sm = boto3.client("sagemaker", region_name=REGION)
        _put_sharded_run(s3)
        arn, loaded = _register_and_load(sm, SHARDED_DATA)
        meta = sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
        assert meta["test_data"] == SHARDED_DATA["test_uri"]
        assert meta["test_manifest"] == SHARDED_DATA["manifest_uri"]
        data = require_test_data(s3, loaded["data"], arn=arn)
        # What Evaluate and StartTransform read: every test object of the run.
        assert evaluated_objects(s3, data) == [f"s3://{BUCKET}/{k}" for k in TEST_KEYS]
        assert transform_input(data) == SHARDED_DATA["test_uri"]
        assert data["splits"] == SHARDED_DATA["splits"]


def test_a_version_registered_before_the_manifest_metadata_finds_its_manifest() -> None:
    """Earlier sharded versions recorded ``<run>/data/test/test.rec``, which a
    sharded run never writes; the run's manifest next to it lists the objects."""
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        _put_sharded_run(s3)
        legacy = {
            "files": {"test": f"s3://{BUCKET}/{SHARDED_RUN}test/test.rec"},
            "test_uri": f"s3://{BUCKET}/{SHARDED_RUN}test",
        }
        data = require_test_data(s3, legacy, arn=ARN)
        assert evaluated_objects(s3, data) == [f"s3://{BUCKET}/{k}" for k in TEST_KEYS]


@pytest.mark.parametrize("missing", ["manifest", "test object", "single file"])
def test_load_fails_naming_the_missing_test_data_before_anything_is_deployed(
    missing: str,
) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        if missing == "manifest":
            s3.create_bucket(Bucket=BUCKET)
            data = {**SHARDED_DATA}
        elif missing == "test object":
            _put_sharded_run(s3, test_objects=TEST_KEYS[:1])
            data = {**SHARDED_DATA}
        else:
            s3.create_bucket(Bucket=BUCKET)
            data = {**DATA, "files": {"test": f"s3://{BUCKET}/runs/exec-1/data/test/test.rec"}}
        with pytest.raises(ModelTestDataMissingError, match="register a new version") as caught:
            require_test_data(s3, data, arn=ARN)
        assert ARN in str(caught.value)
        assert f"s3://{BUCKET}/runs/" in str(caught.value)


def test_the_test_data_check_calls_match_the_s3_service_model() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    manifest = json.dumps({"splits": SHARDED_DATA["splits"], "files": {"test": TEST_KEYS}})
    with stubbed(s3) as stub:
        stub.add_response(
            "get_object",
            {"Body": StreamingBody(io.BytesIO(manifest.encode()), len(manifest))},
            expected_params={"Bucket": BUCKET, "Key": f"{SHARDED_RUN}manifest.json"},
        )
        for key in TEST_KEYS:
            stub.add_response(
                "head_object", {"ContentLength": 3}, expected_params={"Bucket": BUCKET, "Key": key}
            )
        require_test_data(s3, {**SHARDED_DATA}, arn=ARN)
    with stubbed(s3) as stub:  # the file, then a sharded run's manifest next to it
        stub.add_client_error("head_object", service_error_code="404", http_status_code=404)
        stub.add_client_error("head_object", service_error_code="404", http_status_code=404)
        with pytest.raises(ModelTestDataMissingError):
            require_test_data(s3, DATA, arn=ARN)
    with stubbed(s3) as stub:  # not ours to read: a different, named error
        stub.add_client_error("head_object", service_error_code="403", http_status_code=403)
        with pytest.raises(SourceAccessDeniedError):
            require_test_data(s3, DATA, arn=ARN)
