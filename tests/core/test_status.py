from __future__ import annotations

from typing import Any

import pytest
from pipeline_testlib import (
    ENDPOINT,
    best_job,
    endpoint_description,
    make_run,
    sagemaker_client,
    stubbed,
    training_description,
    tuning_description,
    when,
)

from pipeline_core.errors import PollLimitExceededError, ThrottlingError, TuningJobFailedError
from pipeline_core.status import describe_endpoint_status, describe_tuning

ARTIFACTS = "s3://bucket/runs/exec-1/tuning/job-001/output/model.tar.gz"


def _poll(
    run: Any, responses: list[tuple[str, dict[str, Any], dict[str, Any]]], polls: int = 0
) -> dict[str, Any]:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        for op, response, expected in responses:
            stub.add_response(op, response, expected_params=expected)
        status = responses[0][1]["HyperParameterTuningJobStatus"]
        if status not in ("InProgress", "Stopping"):
            # An ended job is billed once: every training job's BillableTimeInSeconds.
            add_billing(stub, run.names.tuning_job)
        return describe_tuning(run, {"name": run.names.tuning_job, "polls": polls}, sm)


def add_billing(stub: Any, name: str) -> None:
    job = f"{name}-001-abcdef12"
    stub.add_response(
        "list_training_jobs_for_hyper_parameter_tuning_job",
        {
            "TrainingJobSummaries": [
                {
                    "TrainingJobName": job,
                    "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{job}",  # noqa: E501
                    "CreationTime": when(0),
                    "TrainingJobStatus": "Completed",
                    "TunedHyperParameters": {},
                }
            ]
        },
        expected_params={"HyperParameterTuningJobName": name},
    )
    described = training_description(job, ARTIFACTS)
    described.update({"BillableTimeInSeconds": 90, "TrainingTimeInSeconds": 120})
    stub.add_response("describe_training_job", described, expected_params={"TrainingJobName": job})


def test_describe_tuning_in_progress_counts_the_poll() -> None:
    run = make_run("exec-1")
    name = run.names.tuning_job
    out = _poll(
        run,
        [
            (
                "describe_hyper_parameter_tuning_job",
                tuning_description(name, "InProgress"),
                {"HyperParameterTuningJobName": name},
            )
        ],
        polls=4,
    )
    assert out["status"] == "InProgress" and out["polls"] == 5
    assert out["best"] is None
    assert out["gate"]["passed"] is False


def test_describe_tuning_completed_reports_best_job_and_passes_the_gate() -> None:
    run = make_run("exec-1")
    name = run.names.tuning_job
    best = best_job(f"{name}-002-abcdef12", 0.93)
    out = _poll(
        run,
        [
            (
                "describe_hyper_parameter_tuning_job",
                tuning_description(name, "Completed", best=best),
                {"HyperParameterTuningJobName": name},
            ),
            (
                "describe_training_job",
                training_description(best["TrainingJobName"], ARTIFACTS),
                {"TrainingJobName": best["TrainingJobName"]},
            ),
        ],
    )
    assert out == {
        "name": name,
        "status": "Completed",
        "polls": 1,
        "best": {
            "training_job_name": best["TrainingJobName"],
            "objective_metric": "validation:binary_f_beta",
            "objective_value": 0.93,
            "hyperparameters": {"wd": "0.001", "learning_rate": "0.1", "mini_batch_size": "200"},
            "model_artifacts": ARTIFACTS,
            "instance_count": 1,
        },
        "gate": {"passed": True, "objective": 0.93, "threshold": 0.9, "objective_type": "Maximize"},
        "failure_reason": None,
        "billing": {
            "training_jobs": 1,
            "billable_seconds": 90,
            "training_seconds": 120,
            "spot_savings_percent": 25.0,
        },
    }


def test_best_job_reports_its_instance_count_from_the_training_job() -> None:
    run = make_run("exec-1", {"training_instance_count": 3})
    name = run.names.tuning_job
    best = best_job(f"{name}-001-abcdef12", 0.95)
    described = training_description(best["TrainingJobName"], ARTIFACTS)
    described["ResourceConfig"]["InstanceCount"] = 3
    out = _poll(
        run,
        [
            (
                "describe_hyper_parameter_tuning_job",
                tuning_description(name, "Completed", best=best),
                {"HyperParameterTuningJobName": name},
            ),
            ("describe_training_job", described, {"TrainingJobName": best["TrainingJobName"]}),
        ],
    )
    assert out["best"]["instance_count"] == 3


@pytest.mark.parametrize(
    ("raw", "value", "passed"),
    [
        ({}, 0.89, False),
        ({}, 0.9, True),
        ({"min_objective": 0.5}, 0.6, True),
        ({"objective_metric": "validation:objective_loss", "min_objective": 0.1}, 0.05, True),
        ({"objective_metric": "validation:objective_loss", "min_objective": 0.1}, 0.2, False),
    ],
)
def test_quality_gate_respects_threshold_and_direction(
    raw: dict[str, Any], value: float, passed: bool
) -> None:
    run = make_run("exec-1", raw)
    name = run.names.tuning_job
    best = best_job(f"{name}-001-x", value, run.objective_metric)
    out = _poll(
        run,
        [
            (
                "describe_hyper_parameter_tuning_job",
                tuning_description(name, "Completed", best=best),
                {"HyperParameterTuningJobName": name},
            ),
            (
                "describe_training_job",
                training_description(best["TrainingJobName"], ARTIFACTS),
                {"TrainingJobName": best["TrainingJobName"]},
            ),
        ],
    )
    assert out["gate"]["passed"] is passed
    assert out["gate"]["objective_type"] == run.objective_type


def test_completed_tuning_without_best_job_raises_tuning_failed() -> None:
    run = make_run("exec-1")
    name = run.names.tuning_job
    with pytest.raises(TuningJobFailedError, match="without a best training job"):
        _poll(
            run,
            [
                (
                    "describe_hyper_parameter_tuning_job",
                    tuning_description(name, "Completed"),
                    {"HyperParameterTuningJobName": name},
                )
            ],
        )


def test_best_job_without_objective_metric_raises_tuning_failed() -> None:
    run = make_run("exec-1")
    name = run.names.tuning_job
    best = best_job(f"{name}-001-x", None)
    with pytest.raises(TuningJobFailedError, match="no objective metric"):
        _poll(
            run,
            [
                (
                    "describe_hyper_parameter_tuning_job",
                    tuning_description(name, "Completed", best=best),
                    {"HyperParameterTuningJobName": name},
                ),
                (
                    "describe_training_job",
                    training_description(best["TrainingJobName"], ARTIFACTS),
                    {"TrainingJobName": best["TrainingJobName"]},
                ),
            ],
        )


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_failed_tuning_is_reported_with_its_reason(status: str) -> None:
    run = make_run("exec-1")
    name = run.names.tuning_job
    out = _poll(
        run,
        [
            (
                "describe_hyper_parameter_tuning_job",
                tuning_description(name, status, reason="boom"),
                {"HyperParameterTuningJobName": name},
            )
        ],
    )
    assert out["status"] == status
    assert out["failure_reason"] == "boom"
    assert out["gate"]["passed"] is False


def test_tuning_poll_limit_raises() -> None:
    run = make_run("exec-1")
    name = run.names.tuning_job
    with pytest.raises(PollLimitExceededError):
        _poll(
            run,
            [
                (
                    "describe_hyper_parameter_tuning_job",
                    tuning_description(name, "InProgress"),
                    {"HyperParameterTuningJobName": name},
                )
            ],
            polls=run.max_polls,
        )


def test_describe_tuning_throttled_raises_throttling_error() -> None:
    run = make_run("exec-1")
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_client_error(
            "describe_hyper_parameter_tuning_job",
            service_error_code="ThrottlingException",
            expected_params={"HyperParameterTuningJobName": run.names.tuning_job},
        )
        with pytest.raises(ThrottlingError):
            describe_tuning(run, {"name": run.names.tuning_job}, sm)


# -- endpoint ------------------------------------------------


def _endpoint(
    run: Any, response: dict[str, Any] | None, polls: int = 0, *, code: str = ""
) -> dict[str, Any]:
    sm = sagemaker_client()
    deploy = {"endpoint_name": ENDPOINT, "endpoint_config_name": run.names.endpoint_config}
    with stubbed(sm) as stub:
        if response is None:
            stub.add_client_error(
                "describe_endpoint",
                service_error_code=code or "ValidationException",
                service_message=f'Could not find endpoint "{ENDPOINT}".',
                expected_params={"EndpointName": ENDPOINT},
            )
        else:
            stub.add_response(
                "describe_endpoint", response, expected_params={"EndpointName": ENDPOINT}
            )
        return describe_endpoint_status(run, deploy, {"status": "Pending", "polls": polls}, sm)


def test_endpoint_in_service_on_our_config() -> None:
    run = make_run("exec-1")
    out = _endpoint(run, endpoint_description(ENDPOINT, "InService", run.names.endpoint_config), 2)
    assert out == {
        "status": "InService",
        "polls": 3,
        "failure_reason": None,
        "endpoint_config_name": run.names.endpoint_config,
    }


@pytest.mark.parametrize("raw", ["Creating", "Updating", "SystemUpdating", "RollingBack"])
def test_endpoint_transitions_are_in_progress(raw: str) -> None:
    run = make_run("exec-1")
    assert (
        _endpoint(run, endpoint_description(ENDPOINT, raw, "old-config"))["status"] == "InProgress"
    )


def test_endpoint_serving_old_config_after_update_is_update_failed() -> None:
    run = make_run("exec-1")
    out = _endpoint(
        run, endpoint_description(ENDPOINT, "InService", "old-config", reason="bad model")
    )
    assert out["status"] == "UpdateFailed"
    assert out["failure_reason"] == "bad model"
    assert out["endpoint_config_name"] == "old-config"


@pytest.mark.parametrize("raw", ["Failed", "OutOfService", "Deleting"])
def test_endpoint_failed_states(raw: str) -> None:
    run = make_run("exec-1")
    out = _endpoint(run, endpoint_description(ENDPOINT, raw, run.names.endpoint_config, reason="x"))
    assert out["status"] == "Failed" and out["failure_reason"]


def test_missing_endpoint_is_failed() -> None:
    out = _endpoint(make_run("exec-1"), None)
    assert out["status"] == "Failed" and "does not exist" in out["failure_reason"]


def test_endpoint_poll_limit_raises() -> None:
    run = make_run("exec-1")
    with pytest.raises(PollLimitExceededError):
        _endpoint(
            run,
            endpoint_description(ENDPOINT, "Creating", run.names.endpoint_config),
            run.max_polls,
        )


def test_describe_endpoint_throttled_raises_throttling_error() -> None:
    with pytest.raises(ThrottlingError):
        _endpoint(make_run("exec-1"), None, code="ThrottlingException")
