"""Training job operations of the local SageMaker: Create, Stop, List and
Describe. Standalone jobs run in :mod:`.training_jobs`; a tuning job's
training jobs are described from their tuning job's records (:mod:`.tuning`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from local.emulator.errors import ServiceError
from local.emulator.failure_reasons import reworded
from local.emulator.state import ServiceState
from local.emulator.training_jobs import (
    artifact_uri,
    objective_metric,
    output_data_config,
    resource_config,
    with_metric_definitions,
)
from local.emulator.wire import now

#: TrainingJobStatus -> the SecondaryStatus a running/ended job shows.
_SECONDARY = {
    "InProgress": "Training",
    "Completed": "Completed",
    "Failed": "Failed",
    "Stopped": "Stopped",
}


def _billing(summary: dict[str, Any]) -> dict[str, Any]:
    """TrainingTimeInSeconds and BillableTimeInSeconds: the measured job seconds
    (no Managed Spot locally, so both are equal; SageMaker bills at least 1 s)."""
    start, end = summary.get("TrainingStartTime"), summary.get("TrainingEndTime")
    if start is None or end is None:
        return {}

    def stamp(value: Any) -> float:
        return value.timestamp() if isinstance(value, datetime) else float(value)

    seconds = max(1, round(stamp(end) - stamp(start)))
    return {"TrainingTimeInSeconds": seconds, "BillableTimeInSeconds": seconds}


#: The TrainingJobDefinition flags DescribeTrainingJob always answers.
_FLAGS = (
    "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining",
)


def _transitions(described: dict[str, Any]) -> list[dict[str, Any]]:
    """A tuned job's ``SecondaryStatusTransitions``, from its times, worded as
    a standalone job's (:mod:`.training_jobs`)."""
    start, end = described.get("TrainingStartTime"), described.get("TrainingEndTime")
    status = described["TrainingJobStatus"]
    starting: dict[str, Any] = {
        "Status": "Starting",
        "StartTime": described["CreationTime"],
        "StatusMessage": "Preparing the instances for training",
    }
    out = [starting]
    if start is not None:
        starting["EndTime"] = start
        out.append(
            {
                "Status": "Training",
                "StartTime": start,
                "StatusMessage": "Training image download completed. Training in progress.",
            }
        )
    if end is not None and status != "InProgress":
        out[-1]["EndTime"] = end
        out.append(
            {
                "Status": described["SecondaryStatus"],
                "StartTime": end,
                "EndTime": end,
                "StatusMessage": described.get("FailureReason") or "Training job completed",
            }
        )
    return out


class TrainingOpsMixin(ServiceState):
    """The training job operations, mixed into :class:`local.emulator.service.LocalSageMaker`."""

    def op_CreateTrainingJob(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.training_jobs.create(p)

    def op_StopTrainingJob(self, p: dict[str, Any]) -> dict[str, Any]:
        if not self.training_jobs.has(p["TrainingJobName"]):
            raise ServiceError("ValidationException", "Requested resource not found.")
        return self.training_jobs.stop(p["TrainingJobName"])

    def op_ListTrainingJobs(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.training_jobs.list(p)

    def op_DescribeTrainingJob(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["TrainingJobName"]
        if self.training_jobs.has(name):
            return self.training_jobs.describe(name)
        with self._lock:
            record = self._training.get(name) or self._running_training_job(name)
        if record is None:
            raise ServiceError("ValidationException", "Requested resource not found.")
        summary = record["summary"]
        definition = record["definition"]
        out: dict[str, Any] = {
            "TrainingJobName": name,
            "TrainingJobArn": self.arn("training-job", name),
            "TuningJobArn": self.arn("hyper-parameter-tuning-job", record["tuning_job"]),
            "TrainingJobStatus": summary.get("TrainingJobStatus", "Completed"),
            "SecondaryStatus": _SECONDARY.get(
                summary.get("TrainingJobStatus", "Completed"), "Completed"
            ),
            "HyperParameters": {
                **definition.get("StaticHyperParameters", {}),
                **summary.get("TunedHyperParameters", {}),
                **objective_metric(self._tuning_record(record["tuning_job"])["request"]),
            },
            "AlgorithmSpecification": with_metric_definitions(definition["AlgorithmSpecification"]),
            "RoleArn": definition["RoleArn"],
            "InputDataConfig": definition["InputDataConfig"],
            "OutputDataConfig": output_data_config(definition["OutputDataConfig"]),
            # The SDK v2 sends HyperParameterTuningResourceConfig instead.
            "ResourceConfig": resource_config(definition),
            "StoppingCondition": definition["StoppingCondition"],
            "CreationTime": summary.get("CreationTime", now()),
            "ModelArtifacts": {
                "S3ModelArtifacts": record["artifact"]
                or artifact_uri(definition["OutputDataConfig"]["S3OutputPath"], name)
            },
            **_billing(summary),
        }
        for key in ("TrainingStartTime", "TrainingEndTime"):
            if summary.get(key) is not None:
                out[key] = summary[key]
        out["LastModifiedTime"] = summary.get("TrainingEndTime") or out["CreationTime"]
        # As a standalone job answers them: AWS runs a tuned job with its
        # TrainingJobDefinition's settings (the SDK's best_estimator() reads them).
        for key in _FLAGS:
            out[key] = bool(definition.get(key, False))
        for key in ("VpcConfig", "CheckpointConfig", "Environment"):
            if key in definition:
                out[key] = definition[key]
        if summary.get("FinalMetricDataList"):
            # Every metric the algorithm emitted, not only the objective.
            out["FinalMetricDataList"] = summary["FinalMetricDataList"]
        if summary.get("FailureReason"):
            out["FailureReason"] = reworded(summary["FailureReason"])
        out["SecondaryStatusTransitions"] = _transitions(out)
        return out
