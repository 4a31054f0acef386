"""The model registry: CreateModelPackage's request (Stubber: the real service
model), the round trip through moto's model-package API, and what a
registered version must be before it is deployed by ARN."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws
from pipeline_testlib import IMAGE, make_run, sagemaker_client, stubbed, tuning_result, when

from pipeline_core.config import DEFAULTS
from pipeline_core.errors import (
    InvalidInputError,
    ModelPackageNotApprovedError,
    TuningJobFailedError,
)
from pipeline_core.registry import (
    build_model_package_request,
    client_token,
    load_model_package,
    register_model,
)

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


def test_register_sends_inference_spec_metrics_metadata_and_tags() -> None:
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
    assert "Tags" not in request  # a version uses its group's tags (AWS refuses its own)
    assert request["ClientToken"] == client_token("exec-1")


def test_manual_approval_registers_pending() -> None:
    request = build_model_package_request(
        make_run("exec-1", {"approval": "manual"}), DEFAULTS, tuning_result(), DATA, group=GROUP,
        image_uri=IMAGE,
    )  # fmt: skip
    assert request["ModelApprovalStatus"] == "PendingManualApproval"


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
