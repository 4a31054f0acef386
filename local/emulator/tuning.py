"""Hyperparameter tuning jobs of the local SageMaker: Create, Describe, Stop and
List, and the training jobs a tuning job runs (their logs and metrics are
written to CloudWatch when each ends, as SageMaker does).

The search itself runs in the local Linear Learner behind the
:class:`~local.emulator.training_backend.TrainingBackend` seam.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

from local.emulator.channels import download_channel
from local.emulator.errors import ServiceError
from local.emulator.failure_reasons import reworded, with_reworded
from local.emulator.paging import cut, listing, page
from local.emulator.state import ServiceState
from local.emulator.training_jobs import CloudWatchLogWriter, described_definition
from local.emulator.wire import now, split_s3


def _counters(record: dict[str, Any]) -> dict[str, int]:
    job = record.get("job")
    described = job.describe() if job is not None else {}
    counters: dict[str, int] = described.get(
        "TrainingJobStatusCounters",
        {
            "Completed": 0,
            "InProgress": 0,
            "RetryableError": 0,
            "NonRetryableError": 0,
            "Stopped": 0,
        },
    )
    return counters


def _objective_counters(record: dict[str, Any]) -> dict[str, int]:
    job = record.get("job")
    described = job.describe() if job is not None else {}
    counters: dict[str, int] = described.get(
        "ObjectiveStatusCounters", {"Succeeded": 0, "Pending": 0, "Failed": 0}
    )
    return counters


def by_objective(
    summaries: list[dict[str, Any]], p: dict[str, Any]
) -> tuple[list[dict[str, Any]], str | None]:
    """ListTrainingJobsForHyperParameterTuningJob with ``SortBy=FinalObjectiveMetricValue``:
    as botocore documents it, jobs that did not return an objective metric are
    not listed, and ``SortOrder`` (default ``Ascending``) orders the values."""
    status = p.get("StatusEquals")
    scored = [
        s
        for s in summaries
        if "FinalHyperParameterTuningJobObjectiveMetric" in s
        and (not status or s.get("TrainingJobStatus") == status)
    ]
    scored.sort(
        key=lambda s: (
            float(s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]),
            str(s["TrainingJobName"]),
        ),
        reverse=p.get("SortOrder", "Ascending") == "Descending",
    )
    return cut(scored, p)


class TuningMixin(ServiceState):
    """The tuning operations, mixed into :class:`local.emulator.service.LocalSageMaker`."""

    def op_CreateHyperParameterTuningJob(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["HyperParameterTuningJobName"]
        arn = self.arn("hyper-parameter-tuning-job", name)
        with self._lock:
            if name in self._tuning:
                raise ServiceError("ResourceInUse", f"Tuning job {name} already exists")
            self._tuning[name] = {
                "request": p,
                "arn": arn,
                "status": "InProgress",
                "created": now(),
                "job": None,
                "failure": None,
                # Set by StopHyperParameterTuningJob even before the job has started.
                "hang": threading.Event(),
            }
        self._put_tags(arn, p.get("Tags"))
        self._start(lambda: self._run_tuning(name), f"tuning-{name}")
        return {"HyperParameterTuningJobArn": arn}

    def _run_tuning(self, name: str) -> None:
        record = self._tuning[name]
        request = record["request"]
        work = self.work_dir / "tuning" / name
        try:
            if work.exists():
                shutil.rmtree(work)
            channels: dict[str, Path] = {}
            for channel in request["TrainingJobDefinition"]["InputDataConfig"]:
                channels[channel["ChannelName"]] = download_channel(
                    self.s3, channel, work / "input" / channel["ChannelName"],
                    role_arn=request["TrainingJobDefinition"]["RoleArn"],
                )  # fmt: skip
            fault = self._take_fault("tuning_failed")
            if fault is not None:
                raise RuntimeError(fault)
            if self._take_fault("tuning_hang") is not None:
                # Never finishes on its own: only StopHyperParameterTuningJob ends it.
                record["hang"].wait()
                with self._lock:
                    record["status"] = "Stopped"
                return
            if record["hang"].is_set():  # stopped while its channels downloaded
                with self._lock:
                    record["status"] = "Stopped"
                return
            output_dir = work / "output"

            def on_event(kind: str, data: dict[str, Any]) -> None:
                if kind == "training_job_done" and data.get("name"):
                    self._publish_training_log(str(data["name"]), output_dir)
                self.on_event(kind, {"tuning_job": name, **data})

            job = self.backend.start_tuning(
                request=request, channels=channels, output_dir=output_dir, on_event=on_event
            )
            record["job"] = job
            if record["hang"].is_set():  # a Stop raced the start
                job.stop()
            job.run()
            output_uri = request["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"]
            bucket, prefix = split_s3(output_uri.rstrip("/") + "/")
            for summary in job.training_jobs():
                tj_name = summary["TrainingJobName"]
                artifact = work / "output" / tj_name / "output" / "model.tar.gz"
                s3_uri = None
                if summary.get("TrainingJobStatus") == "Completed" and artifact.exists():
                    key = f"{prefix}{tj_name}/output/model.tar.gz"
                    self.s3.upload_file(str(artifact), bucket, key)
                    s3_uri = f"s3://{bucket}/{key}"
                with self._lock:
                    self._training[tj_name] = {
                        "summary": job.training_job(tj_name),
                        "artifact": s3_uri,
                        "tuning_job": name,
                        "definition": request["TrainingJobDefinition"],
                    }
            status = job.describe()["HyperParameterTuningJobStatus"]
            if self._take_fault("tuning_stopped") is not None:
                status = "Stopped"
            with self._lock:
                record["status"] = status
                if self._take_fault("tuning_no_best") is not None:
                    record["drop_best"] = True
                if status == "Failed":
                    reason = job.describe().get("FailureReason", "all training jobs failed")
                    # The last job's reason, worded as its FailureReason is (ClientError: ...).
                    head, sep, last = reason.partition(" Last: ")
                    record["failure"] = f"{head}{sep}{reworded(last)}" if sep else reason
        except Exception as e:  # the job fails; the service stays up
            with self._lock:
                record["status"] = "Failed"
                record["failure"] = reworded(f"{type(e).__name__}: {e}")
        finally:
            record["ended"] = now()
            self.on_event("tuning_done", {"tuning_job": name, "status": record["status"]})

    def op_DescribeHyperParameterTuningJob(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["HyperParameterTuningJobName"]
        record = self._tuning_record(name)
        request = record["request"]
        job = record["job"]
        described: dict[str, Any] = job.describe() if job is not None else {}
        out: dict[str, Any] = {
            "HyperParameterTuningJobName": name,
            "HyperParameterTuningJobArn": record["arn"],
            "HyperParameterTuningJobConfig": request["HyperParameterTuningJobConfig"],
            "TrainingJobDefinition": described_definition(request),
            "HyperParameterTuningJobStatus": record["status"],
            "CreationTime": record["created"],
            "TrainingJobStatusCounters": described.get(
                "TrainingJobStatusCounters",
                {
                    "Completed": 0,
                    "InProgress": 0,
                    "RetryableError": 0,
                    "NonRetryableError": 0,
                    "Stopped": 0,
                },
            ),
            "ObjectiveStatusCounters": described.get(
                "ObjectiveStatusCounters", {"Succeeded": 0, "Pending": 0, "Failed": 0}
            ),
        }
        if "ended" in record and record["status"] != "InProgress":
            out["HyperParameterTuningEndTime"] = record["ended"]
        best = described.get("BestTrainingJob")
        # As SageMaker: the best job so far appears while the tuning job runs.
        if best and not record.get("drop_best"):
            best = dict(best)
            best["TrainingJobArn"] = self.arn("training-job", best["TrainingJobName"])
            out["BestTrainingJob"] = best
        if record.get("failure"):
            out["FailureReason"] = record["failure"]
        return out

    def _publish_training_log(self, job_name: str, output_dir: Path) -> None:
        """A tuned training job's log, as SageMaker keeps it: CloudWatch Logs
        ``/aws/sagemaker/TrainingJobs`` and, for the lines its MetricDefinitions
        match, CloudWatch metrics (written when the job ends)."""
        path = output_dir / job_name / "training.log"
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            return
        CloudWatchLogWriter(self.logs, job_name, cloudwatch=self.cloudwatch).write(lines)

    def op_ListTrainingJobsForHyperParameterTuningJob(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._tuning_record(p["HyperParameterTuningJobName"])
        job = record["job"]
        summaries = [with_reworded(s) for s in job.training_jobs()] if job is not None else []
        if p.get("SortBy") == "FinalObjectiveMetricValue":
            return listing("TrainingJobSummaries", *by_objective(summaries, p))
        items, token = page(
            summaries,
            p,
            name_key="TrainingJobName",
            status_key="TrainingJobStatus",
            default_sort="Name",
            default_order="Ascending",
        )
        return listing("TrainingJobSummaries", items, token)

    def op_StopHyperParameterTuningJob(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._tuning_record(p["HyperParameterTuningJobName"])
        if record["job"] is not None:
            record["job"].stop()
        if record.get("hang") is not None:
            record["hang"].set()
        with self._lock:
            if record["status"] == "InProgress":
                record["status"] = "Stopping"
        return {}

    def op_ListHyperParameterTuningJobs(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            items = [
                {
                    "HyperParameterTuningJobName": n,
                    "HyperParameterTuningJobArn": r["arn"],
                    "HyperParameterTuningJobStatus": r["status"],
                    "Strategy": r["request"]["HyperParameterTuningJobConfig"]["Strategy"],
                    "CreationTime": r["created"],
                    "ResourceLimits": r["request"]["HyperParameterTuningJobConfig"][
                        "ResourceLimits"
                    ],
                    "TrainingJobStatusCounters": _counters(r),
                    "ObjectiveStatusCounters": _objective_counters(r),
                }
                for n, r in self._tuning.items()
            ]
        chunk, token = page(
            items,
            p,
            name_key="HyperParameterTuningJobName",
            status_key="HyperParameterTuningJobStatus",
        )
        return listing("HyperParameterTuningJobSummaries", chunk, token)
