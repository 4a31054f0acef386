from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pipeline_testlib import REGION, ROLE, STACK_TAG, sagemaker_client, stubbed, when

from pipeline_core.cleanup import cleanup_stack_resources

OURS = [{"Key": "mnist-ll:stack", "Value": STACK_TAG}]
OTHER_STACK = [{"Key": "mnist-ll:stack", "Value": "SomeOtherStack"}]


@pytest.fixture
def sm() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sagemaker", region_name=REGION)


def _seed(sm: Any, name: str, tags: list[dict[str, str]]) -> None:
    sm.create_model(
        ModelName=f"{name}-model",
        PrimaryContainer={"Image": "img"},
        ExecutionRoleArn=ROLE,
        Tags=tags,
    )
    sm.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {
                "VariantName": "v",
                "ModelName": f"{name}-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m4.xlarge",
            }
        ],
        Tags=tags,
    )
    sm.create_endpoint(EndpointName=f"{name}-ep", EndpointConfigName=f"{name}-config", Tags=tags)


def _names(sm: Any) -> set[str]:
    return (
        {e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]}
        | {c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]}
        | {m["ModelName"] for m in sm.list_models()["Models"]}
    )


def test_cleanup_removes_only_resources_tagged_with_our_stack(sm: Any) -> None:
    _seed(sm, "mine-a", OURS)
    _seed(sm, "mine-b", [*OURS, {"Key": "mnist-ll:execution", "Value": "e"}])
    _seed(sm, "untagged", [])
    _seed(sm, "other", OTHER_STACK)
    summary = cleanup_stack_resources(sm, stack_tag=STACK_TAG, remaining_seconds=lambda: 600.0)
    assert _names(sm) == {
        "untagged-ep",
        "untagged-config",
        "untagged-model",
        "other-ep",
        "other-config",
        "other-model",
    }
    assert sorted(summary["deleted"]["endpoint"]) == ["mine-a-ep", "mine-b-ep"]
    assert sorted(summary["deleted"]["model"]) == ["mine-a-model", "mine-b-model"]
    assert summary["failed"] == [] and summary["skipped_foreign"] == 6


def test_cleanup_failing_delete_is_logged_and_the_rest_continues(sm: Any) -> None:
    _seed(sm, "mine-a", OURS)
    _seed(sm, "mine-b", OURS)
    real = sm.delete_endpoint

    def flaky(**kwargs: Any) -> Any:
        if kwargs["EndpointName"] == "mine-a-ep":
            raise RuntimeError("network down")
        return real(**kwargs)

    sm.delete_endpoint = flaky
    logged: list[str] = []
    summary = cleanup_stack_resources(
        sm, stack_tag=STACK_TAG, remaining_seconds=lambda: 600.0, log=logged.append
    )
    assert _names(sm) == {"mine-a-ep"}
    assert [f["name"] for f in summary["failed"]] == ["mine-a-ep"]
    assert any("mine-a-ep" in line for line in logged)


def test_cleanup_stops_when_the_time_budget_runs_out(sm: Any) -> None:
    _seed(sm, "mine-a", OURS)
    budget = iter([600.0, 600.0, 1.0])
    summary = cleanup_stack_resources(
        sm, stack_tag=STACK_TAG, remaining_seconds=lambda: next(budget, 0.0), margin_seconds=10
    )
    assert summary["out_of_time"] is True
    assert "mine-a-model" in _names(sm)


def test_cleanup_stops_our_running_tuning_jobs_and_survives_errors() -> None:
    sm = sagemaker_client()
    arn = "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/"
    summary_row = {
        "HyperParameterTuningJobStatus": "InProgress",
        "Strategy": "Bayesian",
        "CreationTime": when(0),
        "TrainingJobStatusCounters": {},
        "ObjectiveStatusCounters": {},
    }
    with stubbed(sm) as stub:
        stub.add_response(
            "list_endpoints",
            {
                "Endpoints": [
                    {
                        "EndpointName": "mine-ep",
                        "EndpointArn": f"{arn[:-27]}endpoint/mine-ep",
                        "CreationTime": when(0),
                        "LastModifiedTime": when(0),
                        "EndpointStatus": "Failed",
                    },
                ]
            },
            expected_params={},
        )
        stub.add_response(
            "list_tags",
            {"Tags": OURS},
            expected_params={"ResourceArn": f"{arn[:-27]}endpoint/mine-ep"},
        )
        stub.add_client_error(
            "delete_endpoint",
            service_error_code="ThrottlingException",
            expected_params={"EndpointName": "mine-ep"},
        )
        stub.add_response("list_endpoint_configs", {"EndpointConfigs": []}, expected_params={})
        stub.add_response("list_models", {"Models": []}, expected_params={})
        stub.add_response(
            "list_hyper_parameter_tuning_jobs",
            {
                "HyperParameterTuningJobSummaries": [
                    {
                        **summary_row,
                        "HyperParameterTuningJobName": "mnist-ll-a",
                        "HyperParameterTuningJobArn": f"{arn}mnist-ll-a",
                    },
                    {
                        **summary_row,
                        "HyperParameterTuningJobName": "theirs",
                        "HyperParameterTuningJobArn": f"{arn}theirs",
                    },
                ]
            },
            expected_params={"StatusEquals": "InProgress"},
        )
        stub.add_response(
            "list_tags", {"Tags": OURS}, expected_params={"ResourceArn": f"{arn}mnist-ll-a"}
        )
        stub.add_response(
            "stop_hyper_parameter_tuning_job",
            {},
            expected_params={"HyperParameterTuningJobName": "mnist-ll-a"},
        )
        stub.add_response(
            "list_tags", {"Tags": []}, expected_params={"ResourceArn": f"{arn}theirs"}
        )
        summary = cleanup_stack_resources(sm, stack_tag=STACK_TAG, remaining_seconds=lambda: 600.0)
    assert summary["deleted"]["tuning_job"] == ["mnist-ll-a"]
    assert summary["failed"][0]["name"] == "mine-ep"
