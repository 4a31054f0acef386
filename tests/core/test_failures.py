"""Every way an execution fails reads as one sentence with the next step."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline_core.costs import cost_block, cost_line, endpoint_block
from pipeline_core.errors import InvalidInputError
from pipeline_core.failures import failure_message
from pipeline_core.inputs import resolve_run
from pipeline_core.status import summarize_tuning


def _lambda_cause(error: str, message: str) -> str:
    return json.dumps({"errorType": error, "errorMessage": message, "stackTrace": ["..."]})


def _one_sentence(message: str) -> None:
    assert "\n" not in message and "{" not in message.split(";")[0]
    assert "stackTrace" not in message and "errorType" not in message


def _tuning_block(value: float, threshold: float, objective_type: str = "Maximize") -> str:
    described: dict[str, Any] = {
        "HyperParameterTuningJobName": "mnist-ll-t",
        "HyperParameterTuningJobStatus": "Completed",
        "BestTrainingJob": {
            "TrainingJobName": "mnist-ll-t-001",
            "FinalHyperParameterTuningJobObjectiveMetric": {
                "MetricName": "validation:binary_f_beta",
                "Value": value,
            },
            "TunedHyperParameters": {"wd": "0.01"},
        },
    }
    best = {"ModelArtifacts": {"S3ModelArtifacts": "s3://b/model.tar.gz"}}
    block = summarize_tuning(
        described, best, polls=3, min_objective=threshold, objective_type=objective_type
    )
    return json.dumps(block)


def test_the_quality_gate_says_the_objective_the_gate_and_what_to_change() -> None:
    cause = _tuning_block(0.8851, 0.9)
    message = failure_message("QualityGateFailedError", cause)
    assert message == (
        "best validation:binary_f_beta 0.885 < min_objective 0.9; "
        "lower min_objective, widen the ranges or raise max_jobs"
    )
    # The cloud's Fail state carries the same sentence inside its cause.
    assert json.loads(cause)["gate"]["message"] == message


def test_a_passed_gate_carries_no_failure_message() -> None:
    assert "message" not in json.loads(_tuning_block(0.95, 0.9))["gate"]


def test_a_minimized_objective_reads_the_other_way_round() -> None:
    message = failure_message("QualityGateFailedError", _tuning_block(0.4, 0.2, "Minimize"))
    assert "0.400 > min_objective 0.2;" in message


def test_a_rejection_carries_the_reviewers_description() -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mnist-ll-models/3"
    cause = json.dumps(
        {
            "message": f"model package {arn} was rejected",
            "model_package_arn": arn,
            "approval_description": "recall too low on 7s",
        }
    )
    message = failure_message("ModelPackageRejectedError", cause)
    assert message.startswith(f'model version {arn} was rejected ("recall too low on 7s"); ')
    assert "model_package_arn" in message.split(";")[1]
    _one_sentence(message)


def test_an_approval_timeout_says_how_to_approve_and_deploy_the_version() -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mnist-ll-models/4"
    cause = json.dumps({"model_package_arn": arn, "approval_status": "PendingManualApproval"})
    message = failure_message("ApprovalTimedOutError", cause)
    assert f"python -m local approve {arn}" in message
    assert f'{{"model_package_arn": "{arn}"}}' in message
    assert message.startswith("nobody approved or rejected")


@pytest.mark.parametrize(
    ("error", "raised", "next_step"),
    [
        (
            "EndpointBusyError",
            "endpoint mnist-ll-e is being deployed by execution run-1 (lease expires at epoch 9)",
            "run again once that deployment ends, or choose another endpoint_name",
        ),
        (
            "NameCollisionError",
            "endpoint config mnist-ll-c already exists but is not this execution's",
            "choose another endpoint_name",
        ),
        (
            "InstanceTypeUnavailableError",
            "CreateEndpointConfig: the instance type is not offered in this region (x); "
            "set endpoint.instance_type to a type the region offers",
            "set endpoint.instance_type",
        ),
        ("InvalidInputError", "max_jobs: must be an integer, got 'x'", "fix the execution input"),
        ("SomethingUnexpected", "boom", "see docs/FAILURES.md"),
    ],
)
def test_a_lambda_error_reads_as_its_message_and_the_next_step(
    error: str, raised: str, next_step: str
) -> None:
    message = failure_message(error, _lambda_cause(error, raised))
    assert message.startswith(raised.split(";")[0])
    assert next_step in message
    _one_sentence(message)


def test_a_tuning_job_that_failed_names_its_reason() -> None:
    cause = json.dumps({"name": "mnist-ll-t", "status": "Failed", "failure_reason": "OOM"})
    message = failure_message("TuningJobFailedError", cause)
    assert (
        message
        == "tuning job mnist-ll-t ended Failed: OOM; read the training jobs' logs and run again"
    )


def test_a_plain_text_cause_gets_a_next_step() -> None:
    assert failure_message("States.Timeout", "local --timeout") == (
        "local --timeout; see docs/FAILURES.md"
    )


def test_an_unknown_input_key_suggests_the_nearest_valid_one() -> None:
    def resolve(raw: dict[str, Any]) -> None:
        from pipeline_core.config import DEFAULTS

        resolve_run(
            raw,
            execution_name="e",
            config=DEFAULTS,
            bucket="b",
            region="us-east-1",
            default_endpoint_name="mnist-ll-endpoint",
            stack_tag="S",
        )

    with pytest.raises(
        InvalidInputError, match=r"unknown key target_digt: did you mean target_digit\?"
    ):
        resolve({"target_digt": 0})
    with pytest.raises(InvalidInputError, match=r"unknown key zzz \(valid keys: Comment, approval"):
        resolve({"zzz": 0})
    ranges = [{"name": "wd", "kind": "Continuous", "min_value": 1e-7, "max_valu": 1}]
    with pytest.raises(
        InvalidInputError, match=r"ranges\[0\]: unknown key max_valu: did you mean max_value"
    ):
        resolve({"ranges": ranges})


def test_the_cost_line_says_it_is_a_cloud_estimate_and_what_ran_in_mode_none() -> None:
    cost = cost_block(
        mode="none", training_instance_type="ml.c4.xlarge", training_instance_count=1,
        billing={"billable_seconds": 6}, spot=False, transform_instance_type="ml.m4.xlarge",
        transform_seconds=2.345, endpoint_instance_type="ml.m4.xlarge", endpoint_instance_count=1,
        ttl_hours=24,
    )  # fmt: skip
    line = cost_line(cost, endpoint_block("none", "mnist-ll-e", {"deletes_at": None}))
    assert line.startswith("cost (cloud estimate, not charged locally): ~$")
    assert "transform job 2.3 s" in line and "no endpoint" in line
    assert "endpoint none" not in line and "deleted at -" not in line
