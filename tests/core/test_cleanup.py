"""Cleanup against moto SageMaker, seeded the way executions create resources."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends
from pipeline_testlib import (
    IMAGE,
    REGION,
    ROLE,
    STACK_TAG,
    make_run,
    sagemaker_client,
    stubbed,
    tuning_result,
    when,
)

from pipeline_core.cleanup import cleanup_stack_resources
from pipeline_core.config import DEFAULTS
from pipeline_core.deploy import build_endpoint_config_request, build_model_request
from pipeline_core.inputs import RunSpec
from pipeline_core.names import STACK_TAG_KEY
from pipeline_core.tuning import build_tuning_request

PREFIX = DEFAULTS.name_prefix
OTHER_STACK = "SomeOtherStack"
ENDPOINT_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/"


@pytest.fixture
def sm() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sagemaker", region_name=REGION)


def _run(execution: str, endpoint: str, stack_tag: str = STACK_TAG) -> RunSpec:
    return make_run(execution, {"endpoint_name": endpoint}, stack_tag=stack_tag)


def make_run_tagged(execution: str, endpoint: str, tags: list[dict[str, str]] | None) -> RunSpec:
    run = _run(execution, endpoint)
    if tags is None:
        return run
    from dataclasses import replace

    return replace(run, tags=tuple((t["Key"], t["Value"]) for t in tags))


def _deploy_like_a_run(sm: Any, run: RunSpec) -> None:
    """Model, endpoint config and endpoint exactly as the Deploy Lambda builds them."""
    model = build_model_request(run, tuning_result(), image_uri=IMAGE, role_arn=ROLE)
    model.pop("EnableNetworkIsolation")  # moto's CreateModel does not know it
    sm.create_model(**model)
    sm.create_endpoint_config(**build_endpoint_config_request(run, DEFAULTS))
    sm.create_endpoint(
        EndpointName=run.endpoint_name,
        EndpointConfigName=run.names.endpoint_config,
        Tags=run.tag_list(),
    )


def _tune_like_a_run(sm: Any, run: RunSpec, *, status: str = "InProgress") -> str:
    request = build_tuning_request(
        run,
        DEFAULTS,
        image_uri=IMAGE,
        role_arn=ROLE,
        train_uri=run.s3_uri("data/train/"),
        validation_uri=run.s3_uri("data/validation/"),
        output_uri=run.s3_uri("tuning/"),
    )
    sm.create_hyper_parameter_tuning_job(**request)
    # moto completes tuning jobs at once; a real one runs for a while.
    job = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].hyper_parameter_tuning_jobs[
        run.names.tuning_job
    ]
    job.hyper_parameter_tuning_job_status = status
    return run.names.tuning_job


def _names(sm: Any) -> set[str]:
    return (
        {e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]}
        | {c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]}
        | {m["ModelName"] for m in sm.list_models()["Models"]}
    )


def _spy(sm: Any, op: str) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    real = getattr(sm, op)

    def spy(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(**kwargs)

    setattr(sm, op, spy)
    return calls


def _cleanup(sm: Any, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("remaining_seconds", lambda: 600.0)
    return cleanup_stack_resources(sm, stack_tag=STACK_TAG, name_prefix=PREFIX, **kwargs)


@pytest.fixture
def seeded(sm: Any) -> dict[str, Any]:
    """Two of our executions (two endpoints), and foreign look-alikes."""
    ours = [_run("exec-a", "mnist-ll-endpoint"), _run("exec-b", "mnist-ll-blue")]
    for run in ours:
        _deploy_like_a_run(sm, run)
    untagged = make_run_tagged("exec-untagged", "mnist-ll-untagged", [])
    other_stack = _run("exec-other", "mnist-ll-other", stack_tag=OTHER_STACK)
    for run in (untagged, other_stack):
        _deploy_like_a_run(sm, run)
    # Another project's resources carrying our stack tag by mistake: not ours by name.
    stray = make_run("exec-stray", {})
    sm.create_model(
        ModelName="someone-else-model",
        PrimaryContainer={"Image": IMAGE},
        ExecutionRoleArn=ROLE,
        Tags=stray.tag_list(),
    )
    stops: list[str] = []
    backend = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION]

    def stop(**kwargs: Any) -> dict[str, Any]:  # moto has no StopHyperParameterTuningJob
        stops.append(kwargs["HyperParameterTuningJobName"])
        job = backend.hyper_parameter_tuning_jobs[kwargs["HyperParameterTuningJobName"]]
        job.hyper_parameter_tuning_job_status = "Stopping"
        return {}

    sm.stop_hyper_parameter_tuning_job = stop
    running = _tune_like_a_run(sm, ours[0])
    finished = _tune_like_a_run(sm, ours[1], status="Completed")
    theirs = _tune_like_a_run(sm, _run("exec-theirs", "mnist-ll-x", stack_tag=OTHER_STACK))
    return {
        "ours": {
            n for r in ours for n in (r.endpoint_name, r.names.endpoint_config, r.names.model)
        },
        "kept": {
            n
            for r in (untagged, other_stack)
            for n in (r.endpoint_name, r.names.endpoint_config, r.names.model)
        }
        | {"someone-else-model"},
        "jobs": {running, finished, theirs},
        "running": {running},
        "stops": stops,
    }


def test_cleanup_deletes_exactly_our_endpoints_configs_and_models(
    sm: Any, seeded: dict[str, Any]
) -> None:
    assert seeded["ours"] | seeded["kept"] == _names(sm)
    summary = _cleanup(sm)
    assert _names(sm) == seeded["kept"]
    removed = {
        n for kind in ("endpoint", "endpoint_config", "model") for n in summary["deleted"][kind]
    }
    assert removed == seeded["ours"]
    assert summary["failed"] == [] and summary["out_of_time"] is False
    assert summary["skipped_foreign"] == 6 + 1  # untagged + other stack, + their running job


def test_cleanup_stops_only_our_in_progress_tuning_jobs(sm: Any, seeded: dict[str, Any]) -> None:
    summary = _cleanup(sm)
    assert seeded["stops"] == sorted(seeded["running"])
    assert summary["deleted"]["tuning_job"] == seeded["stops"]
    jobs = sm.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
    status = {j["HyperParameterTuningJobName"]: j["HyperParameterTuningJobStatus"] for j in jobs}
    theirs = _run("exec-theirs", "mnist-ll-x", stack_tag=OTHER_STACK).names.tuning_job
    assert [n for n, st in status.items() if st == "InProgress"] == [theirs]


def test_cleanup_lists_by_name_prefix_and_never_reads_tags_of_foreign_names(
    sm: Any, seeded: dict[str, Any]
) -> None:
    paginated: list[tuple[str, dict[str, Any]]] = []
    real_paginator = sm.get_paginator

    def get_paginator(op: str) -> Any:
        paginator = real_paginator(op)
        real_paginate = paginator.paginate

        def paginate(**kwargs: Any) -> Any:
            paginated.append((op, kwargs))
            return real_paginate(**kwargs)

        paginator.paginate = paginate
        return paginator

    sm.get_paginator = get_paginator
    tag_reads = _spy(sm, "list_tags")
    _cleanup(sm)
    assert paginated == [
        ("list_endpoints", {"NameContains": PREFIX}),
        ("list_endpoint_configs", {"NameContains": PREFIX}),
        ("list_models", {"NameContains": PREFIX}),
        (
            "list_hyper_parameter_tuning_jobs",
            {"NameContains": PREFIX, "StatusEquals": "InProgress"},
        ),
    ]
    read = [c["ResourceArn"] for c in tag_reads]
    assert read and all(f"/{PREFIX}-" in arn for arn in read), read
    assert not any("someone-else" in arn for arn in read)


def test_a_failing_delete_does_not_raise_and_the_rest_is_still_removed(
    sm: Any, seeded: dict[str, Any]
) -> None:
    real = sm.delete_endpoint

    def flaky(**kwargs: Any) -> Any:
        if kwargs["EndpointName"] == "mnist-ll-endpoint":
            raise RuntimeError("network down")
        return real(**kwargs)

    sm.delete_endpoint = flaky
    real_tags = sm.list_tags

    def tags(**kwargs: Any) -> Any:
        if "mnist-ll-blue" in kwargs["ResourceArn"] and ":endpoint/" in kwargs["ResourceArn"]:
            raise ConnectionError("reset")
        return real_tags(**kwargs)

    sm.list_tags = tags
    logged: list[str] = []
    summary = _cleanup(sm, log=logged.append)
    assert _names(sm) == seeded["kept"] | {"mnist-ll-endpoint", "mnist-ll-blue"}
    assert sorted(f["name"] for f in summary["failed"]) == ["mnist-ll-blue", "mnist-ll-endpoint"]
    assert any("network down" in line for line in logged)


def test_a_failing_listing_does_not_raise_and_other_kinds_are_still_cleaned(
    sm: Any, seeded: dict[str, Any]
) -> None:
    real_paginator = sm.get_paginator

    def get_paginator(op: str) -> Any:
        if op == "list_endpoints":
            raise RuntimeError("throttled for good")
        return real_paginator(op)

    sm.get_paginator = get_paginator
    summary = _cleanup(sm)
    assert summary["failed"] == [
        {
            "kind": "endpoint",
            "name": "*",
            "error": "RuntimeError('throttled for good')",
            "transient": False,  # not an AWS error: trying again will not help
        }
    ]
    assert seeded["ours"] & _names(sm) == {"mnist-ll-endpoint", "mnist-ll-blue"}


def test_slow_deletes_stop_within_the_time_budget(sm: Any, seeded: dict[str, Any]) -> None:
    """Each delete takes 'minutes': cleanup gives up before the Lambda would time out."""
    clock = {"left": 600.0}
    real = sm.delete_endpoint

    def slow(**kwargs: Any) -> Any:
        clock["left"] -= 290.0
        return real(**kwargs)

    sm.delete_endpoint = slow
    started = time.monotonic()
    summary = _cleanup(sm, remaining_seconds=lambda: clock["left"], margin_seconds=30.0)
    assert time.monotonic() - started < 5.0
    assert summary["out_of_time"] is True
    assert clock["left"] >= 0.0
    assert len(summary["deleted"]["endpoint"]) == 2 and summary["deleted"]["model"] == []


def test_cleanup_stops_our_running_tuning_jobs_with_the_exact_calls() -> None:
    """Stubber: request shapes checked against the real service model."""
    sm = sagemaker_client()
    arn = "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/"
    summary_row = {
        "HyperParameterTuningJobStatus": "InProgress",
        "Strategy": "Bayesian",
        "CreationTime": when(0),
        "TrainingJobStatusCounters": {},
        "ObjectiveStatusCounters": {},
    }
    ours = [{"Key": STACK_TAG_KEY, "Value": STACK_TAG}]
    by_prefix = {"NameContains": PREFIX}
    with stubbed(sm) as stub:
        stub.add_response(
            "list_endpoints",
            {
                "Endpoints": [
                    {
                        "EndpointName": "mnist-ll-ep",
                        "EndpointArn": f"{ENDPOINT_ARN}mnist-ll-ep",
                        "CreationTime": when(0),
                        "LastModifiedTime": when(0),
                        "EndpointStatus": "Failed",
                    },
                ]
            },
            expected_params=by_prefix,
        )
        stub.add_response(
            "list_tags",
            {"Tags": ours},
            expected_params={"ResourceArn": f"{ENDPOINT_ARN}mnist-ll-ep"},
        )
        stub.add_client_error(
            "delete_endpoint",
            service_error_code="ThrottlingException",
            expected_params={"EndpointName": "mnist-ll-ep"},
        )
        stub.add_response(
            "list_endpoint_configs", {"EndpointConfigs": []}, expected_params=by_prefix
        )
        stub.add_response("list_models", {"Models": []}, expected_params=by_prefix)
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
                        "HyperParameterTuningJobName": "mnist-ll-theirs",
                        "HyperParameterTuningJobArn": f"{arn}mnist-ll-theirs",
                    },
                    {  # NameContains matched mid-name: never even tag-checked
                        **summary_row,
                        "HyperParameterTuningJobName": "x-mnist-ll-b",
                        "HyperParameterTuningJobArn": f"{arn}x-mnist-ll-b",
                    },
                ]
            },
            expected_params={**by_prefix, "StatusEquals": "InProgress"},
        )
        stub.add_response(
            "list_tags", {"Tags": ours}, expected_params={"ResourceArn": f"{arn}mnist-ll-a"}
        )
        stub.add_response(
            "stop_hyper_parameter_tuning_job",
            {},
            expected_params={"HyperParameterTuningJobName": "mnist-ll-a"},
        )
        stub.add_response(
            "list_tags", {"Tags": []}, expected_params={"ResourceArn": f"{arn}mnist-ll-theirs"}
        )
        summary = _cleanup(sm)
    assert summary["deleted"]["tuning_job"] == ["mnist-ll-a"]
    assert summary["failed"][0]["name"] == "mnist-ll-ep"
    assert summary["skipped_foreign"] == 1
