"""Normalise SageMaker describe results into the small dicts the Choice states read."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from pipeline_core.awserrors import is_not_found, named_error
from pipeline_core.costs import training_billing
from pipeline_core.errors import PollLimitExceededError, TuningJobFailedError
from pipeline_core.failures import gate_message
from pipeline_core.inputs import RunSpec

IN_PROGRESS_TUNING = frozenset({"InProgress", "Stopping"})
IN_PROGRESS_ENDPOINT = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})


def _next_poll(previous: dict[str, Any] | None, max_polls: int, what: str) -> int:
    polls = int((previous or {}).get("polls", 0) or 0) + 1
    if polls > max_polls:
        raise PollLimitExceededError(f"{what}: still not final after {max_polls} polls")
    return polls


def gate(objective_value: float | None, threshold: float, objective_type: str) -> dict[str, Any]:
    """The quality gate: Maximize passes at ``>= threshold``, Minimize at ``<=``."""
    if objective_value is None:
        passed = False
    elif objective_type == "Minimize":
        passed = objective_value <= threshold
    else:
        passed = objective_value >= threshold
    return {
        "passed": passed,
        "objective": objective_value,
        "threshold": threshold,
        "objective_type": objective_type,
    }


def summarize_tuning(
    described: dict[str, Any],
    best_training_job: dict[str, Any] | None,
    *,
    polls: int,
    min_objective: float,
    objective_type: str,
    instance_count: int = 1,
) -> dict[str, Any]:
    """``$.tuning`` from DescribeHyperParameterTuningJob (+ DescribeTrainingJob of the best).

    ``best.instance_count`` is the best job's ``ResourceConfig.InstanceCount``
    (``instance_count``, what the request asked for, when the description
    lacks it)."""
    status = str(described["HyperParameterTuningJobStatus"])
    best: dict[str, Any] | None = None
    objective: float | None = None
    if status == "Completed":
        raw_best = described.get("BestTrainingJob")
        if not raw_best:
            raise TuningJobFailedError(
                f"tuning job {described.get('HyperParameterTuningJobName')} completed "
                "without a best training job"
            )
        metric = raw_best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
        if "Value" not in metric:
            raise TuningJobFailedError(
                f"best training job {raw_best.get('TrainingJobName')} reported no objective metric"
            )
        objective = float(metric["Value"])
        artifacts = ((best_training_job or {}).get("ModelArtifacts") or {}).get("S3ModelArtifacts")
        if not artifacts:
            raise TuningJobFailedError(
                f"best training job {raw_best.get('TrainingJobName')} has no model artifacts"
            )
        best = {
            "training_job_name": str(raw_best["TrainingJobName"]),
            "objective_metric": str(metric.get("MetricName", "")),
            "objective_value": objective,
            "hyperparameters": {
                str(k): str(v) for k, v in (raw_best.get("TunedHyperParameters") or {}).items()
            },
            "model_artifacts": str(artifacts),
            "instance_count": int(
                ((best_training_job or {}).get("ResourceConfig") or {}).get(
                    "InstanceCount", instance_count
                )
            ),
        }
    checked = gate(objective, min_objective, objective_type)
    if status == "Completed" and not checked["passed"]:
        # The Fail state's cause carries the sentence, in the cloud too.
        checked["message"] = gate_message(checked, (best or {}).get("objective_metric"))
    return {
        "name": str(described["HyperParameterTuningJobName"]),
        "status": status,
        "polls": polls,
        "best": best,
        "gate": checked,
        "failure_reason": described.get("FailureReason"),
    }


def describe_tuning(run: RunSpec, tuning: dict[str, Any], sm: Any) -> dict[str, Any]:
    """One DescribeTuning poll. Raises PollLimitExceededError past ``run.max_polls``."""
    name = str(tuning.get("name") or run.names.tuning_job)
    try:
        described = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    except ClientError as e:
        raise named_error(e, "DescribeHyperParameterTuningJob") from e
    status = str(described["HyperParameterTuningJobStatus"])
    polls = int(tuning.get("polls", 0) or 0) + 1
    if status in IN_PROGRESS_TUNING:
        polls = _next_poll(tuning, run.max_polls, f"tuning job {name}")
    best_job: dict[str, Any] | None = None
    if status == "Completed" and described.get("BestTrainingJob"):
        best_name = described["BestTrainingJob"]["TrainingJobName"]
        try:
            best_job = sm.describe_training_job(TrainingJobName=best_name)
        except ClientError as e:
            raise named_error(e, "DescribeTrainingJob") from e
    summary = summarize_tuning(
        described,
        best_job,
        polls=polls,
        min_objective=run.min_objective,
        objective_type=run.objective_type,
        instance_count=run.training_instance_count,
    )
    if status not in IN_PROGRESS_TUNING:
        # Once, when it has ended: what the training jobs billed (report cost block).
        summary["billing"] = training_billing(sm, name)
    return summary


def summarize_endpoint(
    described: dict[str, Any] | None, *, expected_config: str, polls: int
) -> dict[str, Any]:
    """``$.endpoint`` from DescribeEndpoint (None: the endpoint does not exist).

    ``UpdateFailed``: InService but not on our config and not updating, i.e. a
    failed UpdateEndpoint rolled back and the previous config keeps serving."""
    if described is None:
        return {
            "status": "Failed",
            "polls": polls,
            "failure_reason": "endpoint does not exist",
            "endpoint_config_name": None,
        }
    raw = str(described["EndpointStatus"])
    config_name = described.get("EndpointConfigName")
    reason = described.get("FailureReason")
    if raw in IN_PROGRESS_ENDPOINT:
        status = "InProgress"
    elif raw == "InService":
        status = "InService" if config_name == expected_config else "UpdateFailed"
        if status == "UpdateFailed" and not reason:
            reason = f"endpoint still serves {config_name}, not {expected_config}"
    else:  # Failed, OutOfService, Deleting
        status = "Failed"
        reason = reason or f"endpoint is {raw}"
    out: dict[str, Any] = {
        "status": status,
        "polls": polls,
        "failure_reason": reason if status != "InService" else None,
        "endpoint_config_name": config_name,
    }
    if status == "UpdateFailed":
        # Blue/green: the new fleet never took over (it failed, or an alarm
        # rolled it back), so the previous config still serves.
        out["message"] = (
            f"the update to {expected_config} was rolled back; {config_name} still serves"
        )
    return out


def describe_endpoint_status(
    run: RunSpec, deploy: dict[str, Any], previous: dict[str, Any] | None, sm: Any
) -> dict[str, Any]:
    """One DescribeEndpoint poll. Raises PollLimitExceededError past ``run.max_polls``."""
    name = str(deploy["endpoint_name"])
    try:
        described: dict[str, Any] | None = sm.describe_endpoint(EndpointName=name)
    except ClientError as e:
        if not is_not_found(e):
            raise named_error(e, "DescribeEndpoint") from e
        described = None
    polls = int((previous or {}).get("polls", 0) or 0) + 1
    summary = summarize_endpoint(
        described, expected_config=str(deploy["endpoint_config_name"]), polls=polls
    )
    if summary["status"] == "InProgress":
        _next_poll(previous, run.max_polls, f"endpoint {name}")
    return summary
