"""Standalone training jobs (CreateTrainingJob), on the local Linear Learner.

The tutorial's first ``linear.fit()`` is one training job, not a tuning job.
A :class:`StandaloneTrainingJob` runs the same worker process a tuning job's
training jobs run (:mod:`training._worker`: a fresh interpreter, one BLAS
thread), so ``StopTrainingJob`` terminates a real process. Its log lines go
to the embedded CloudWatch Logs as SageMaker writes them:
group ``/aws/sagemaker/TrainingJobs``, stream ``<job>/algo-1-<epoch seconds>``;
and, as SageMaker does with a job's ``MetricDefinitions``, every log line that
matches one is published to CloudWatch metrics (namespace
``/aws/sagemaker/TrainingJobs``, dimension ``TrainingJobName``), which is what
the SDK's ``TrainingJobAnalytics`` reads.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.emulator.channels import download_channel, split_s3
from local.emulator.errors import ServiceError
from local.emulator.failure_reasons import failure_reason, reworded
from local.emulator.job_metrics import TRAINING_NAMESPACE, HostSampler
from local.emulator.paging import listing, page
from training._worker import THREAD_VARS
from training.metric_definitions import METRIC_DEFINITIONS, line_metrics

log = logging.getLogger("local.emulator.training_jobs")

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
#: PutMetricData takes at most 1000 values a call.
_MAX_METRIC_DATA = 1000
#: Log events per PutLogEvents call, and characters kept of one line (so a
#: call stays under CloudWatch Logs' 1 MB).
_MAX_LOG_EVENTS = 900
_MAX_LINE = 1000


def with_metric_definitions(spec: Mapping[str, Any]) -> dict[str, Any]:
    """An AlgorithmSpecification as Describe* shows it for the built-in
    algorithm: its MetricDefinitions listed when the request gave none."""
    out = dict(spec)
    if not out.get("MetricDefinitions"):
        out["MetricDefinitions"] = [dict(d) for d in METRIC_DEFINITIONS]
    return out


ROOT = Path(__file__).resolve().parents[2]


def _now() -> datetime:
    return datetime.now(UTC)


class CloudWatchLogWriter:
    """One job's log stream in the embedded CloudWatch Logs (best effort:
    a job never fails because its logs could not be written)."""

    def __init__(
        self, logs: Any, job_name: str, host: str = "algo-1", cloudwatch: Any = None
    ) -> None:
        self.logs = logs
        self.job_name = job_name
        self.cloudwatch = cloudwatch
        self.stream = f"{job_name}/{host}-{int(time.time())}"
        self.host = f"{job_name}/{host}"
        self._ready = False

    def _ensure(self) -> None:
        if self._ready or self.logs is None:
            return
        for call, kwargs in (
            (self.logs.create_log_group, {"logGroupName": LOG_GROUP}),
            (
                self.logs.create_log_stream,
                {"logGroupName": LOG_GROUP, "logStreamName": self.stream},
            ),
        ):
            try:
                call(**kwargs)
            except Exception as e:  # the group usually exists already
                log.debug("CloudWatch Logs: %s", e)
        self._ready = True

    def write(self, lines: list[str]) -> None:
        self._publish_metrics(lines)
        if self.logs is None or not lines:
            return
        self._ensure()
        now = int(time.time() * 1000)
        # PutLogEvents takes at most 10,000 events (and 1 MB) a call.
        for i in range(0, len(lines), _MAX_LOG_EVENTS):
            try:
                self.logs.put_log_events(
                    logGroupName=LOG_GROUP,
                    logStreamName=self.stream,
                    logEvents=[
                        {"timestamp": now, "message": line[:_MAX_LINE]}
                        for line in lines[i : i + _MAX_LOG_EVENTS]
                    ],
                )
            except Exception as e:
                log.warning("could not write training logs of %s: %s", self.stream, e)
                return

    def _publish_metrics(self, lines: list[str]) -> None:
        if self.cloudwatch is None or not lines:
            return
        now = _now()
        # Per job (what the SDK's TrainingJobAnalytics reads) and per Host
        # (``<job>/algo-<n>``, the dimension of CloudWatch's console).
        data = [
            {"MetricName": name, "Dimensions": [dimension], "Timestamp": now, "Value": value}
            for line in lines
            for name, value in line_metrics(line)
            if math.isfinite(value)  # CloudWatch takes no NaN (an AUC of one class)
            for dimension in (
                {"Name": "TrainingJobName", "Value": self.job_name},
                {"Name": "Host", "Value": self.host},
            )
        ]
        for i in range(0, len(data), _MAX_METRIC_DATA):
            try:
                self.cloudwatch.put_metric_data(
                    Namespace=METRICS_NAMESPACE, MetricData=data[i : i + _MAX_METRIC_DATA]
                )
            except Exception as e:
                log.warning("could not publish metrics of %s: %s", self.job_name, e)
                return


class StandaloneTrainingJob:
    """One training job's process; ``run()`` blocks until it ends."""

    def __init__(
        self,
        *,
        name: str,
        hyperparameters: Mapping[str, str],
        channels: Mapping[str, Path],
        model_dir: Path,
        max_runtime: float | None = None,
        logs: Any = None,
        python: str | None = None,
        on_done: Callable[[StandaloneTrainingJob], None] | None = None,
        upload: Callable[[Path], None] | None = None,
        cloudwatch: Any = None,
    ) -> None:
        self.name = name
        #: Puts the artifact where the job says it is, while the job is
        #: ``Uploading``: a job reads ``Completed`` only once its model is there.
        self.upload = upload
        self.hyperparameters = dict(hyperparameters)
        self.channels = dict(channels)
        self.model_dir = model_dir
        self.max_runtime = max_runtime
        self.python = python or sys.executable
        self.log = CloudWatchLogWriter(logs, name, cloudwatch=cloudwatch)
        self.on_done = on_done
        self.status = "InProgress"
        self.secondary = "Starting"
        self.failure_reason: str | None = None
        self.metrics: dict[str, float] = {}
        self.started: datetime | None = None
        self.ended: datetime | None = None
        self.transitions: list[dict[str, Any]] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._transition("Starting", "Preparing the instances for training")

    def _transition(self, status: str, message: str) -> None:
        now = _now()
        with self._lock:
            if self.transitions:
                self.transitions[-1]["EndTime"] = now
            self.transitions.append({"Status": status, "StartTime": now, "StatusMessage": message})
            self.secondary = status

    def artifact(self) -> Path:
        return self.model_dir / "model.tar.gz"

    def stop(self) -> None:
        self._stop.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()

    def run(self) -> None:
        try:
            self._run()
        except Exception as e:  # the job fails; the service stays up
            self._end("Failed", f"{type(e).__name__}: {e}")
        finally:
            if self.on_done is not None:
                self.on_done(self)

    def _run(self) -> None:
        if self._stop.is_set():
            self._end("Stopped", "Stopped by StopTrainingJob")
            return
        self.started = _now()
        self._transition("Training", "Training image download completed. Training in progress.")
        env = dict(os.environ)
        env.update({var: "1" for var in THREAD_VARS})
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        self.model_dir.mkdir(parents=True, exist_ok=True)
        spec = {
            "channels": {k: str(v) for k, v in self.channels.items()},
            "hyperparameters": self.hyperparameters,
            "model_dir": str(self.model_dir),
        }
        process = subprocess.Popen(
            [self.python, "-m", "training._worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        self._process = process
        sampler = HostSampler(self.log.cloudwatch, TRAINING_NAMESPACE, self.log.host, process.pid)
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(spec).encode())
        process.stdin.close()
        stderr_lines: list[str] = []
        reader = threading.Thread(
            target=self._pump_stderr, args=(process, stderr_lines), daemon=True
        )
        reader.start()
        deadline = time.monotonic() + self.max_runtime if self.max_runtime else None
        watchdog = threading.Thread(target=self._watch, args=(process, deadline), daemon=True)
        watchdog.start()
        result: dict[str, Any] | None = None
        for line in process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("kind") in ("result", "error"):
                result = message
        code = process.wait()
        sampler.finish()  # CPUUtilization and MemoryUtilization of Host <job>/algo-1
        reader.join(60)  # its last log lines are written before the job reads as ended
        if self._stop.is_set():
            reason = getattr(self, "_stop_reason", "Stopped by StopTrainingJob")
            self._end("Stopped" if "MaxRuntime" not in reason else "Failed", reason)
        elif result is None:
            self._end("Failed", f"AlgorithmError: training process exited ({code})")
        elif result["kind"] == "error":
            self._end("Failed", failure_reason(str(result.get("type")), str(result.get("message"))))
        else:
            self.metrics = {str(k): float(v) for k, v in result.get("metrics", {}).items()}
            self._transition("Uploading", "Uploading generated training model")
            if self.upload is not None:
                try:
                    self.upload(self.artifact())
                except Exception as e:
                    self._end("Failed", f"ClientError: uploading the model failed: {e}"[:1024])
                    return
            self._end("Completed", None)

    def _watch(self, process: subprocess.Popen[bytes], deadline: float | None) -> None:
        while process.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                self._stop_reason = "MaxRuntimeExceeded: Training job exceeded MaxRuntimeInSeconds"
                self.stop()
                return
            time.sleep(0.2)

    def _pump_stderr(self, process: subprocess.Popen[bytes], sink: list[str]) -> None:
        assert process.stderr is not None
        batch: list[str] = []
        last = time.monotonic()
        for raw in process.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            sink.append(line)
            batch.append(line)
            if len(batch) >= 50 or time.monotonic() - last > 1.0:
                self.log.write(batch)
                batch, last = [], time.monotonic()
        self.log.write(batch)

    def _end(self, status: str, reason: str | None) -> None:
        self.ended = _now()
        self.failure_reason = reason
        self._transition(status, reason or "Training job completed")
        with self._lock:
            if self.transitions:
                self.transitions[-1]["EndTime"] = self.ended
            self.status = status


def resource_config(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A training job's ``ResourceConfig``: as given, or derived from a tuning
    request's ``HyperParameterTuningResourceConfig`` (what the SDK v2 sends)."""
    given = definition.get("ResourceConfig")
    if given:
        return dict(given)
    tuning = definition.get("HyperParameterTuningResourceConfig") or {}
    out: dict[str, Any] = {}
    instance = tuning.get("InstanceType")
    if not instance and tuning.get("InstanceConfigs"):
        first = tuning["InstanceConfigs"][0]
        instance = first.get("InstanceType")
        out["InstanceCount"] = first.get("InstanceCount", 1)
        out["VolumeSizeInGB"] = first.get("VolumeSizeInGB", 30)
    out["InstanceType"] = instance or "ml.m5.xlarge"
    out.setdefault("InstanceCount", tuning.get("InstanceCount", 1))
    out.setdefault("VolumeSizeInGB", tuning.get("VolumeSizeInGB", 30))
    if tuning.get("VolumeKmsKeyId"):
        out["VolumeKmsKeyId"] = tuning["VolumeKmsKeyId"]
    return out


def artifact_uri(output_path: str, job_name: str) -> str:
    return f"{output_path.rstrip('/')}/{job_name}/output/model.tar.gz"


def output_data_config(given: Mapping[str, Any]) -> dict[str, Any]:
    """``OutputDataConfig`` as DescribeTrainingJob returns it: SageMaker always
    includes ``KmsKeyId`` (empty when none was given); the SDK reads it."""
    return {"KmsKeyId": "", **given}


class TrainingJobService:
    """CreateTrainingJob, DescribeTrainingJob (standalone jobs), StopTrainingJob
    and ListTrainingJobs for :class:`local.emulator.service.LocalSageMaker`."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.jobs: dict[str, dict[str, Any]] = {}

    def create(self, p: dict[str, Any]) -> dict[str, Any]:
        sm = self.service
        name = p["TrainingJobName"]
        arn = sm.arn("training-job", name)
        with sm._lock:
            if name in self.jobs or name in sm._training:
                raise ServiceError(
                    "ResourceInUse",
                    f"Training job names must be unique within an AWS account "
                    f"and region, and a training job with this name already exists ({arn})",
                )
            stopping = p.get("StoppingCondition") or {}
            job = StandaloneTrainingJob(
                name=name,
                hyperparameters=p.get("HyperParameters") or {},
                channels={},
                model_dir=sm.work_dir / "training" / name / "model",
                max_runtime=stopping.get("MaxRuntimeInSeconds"),
                logs=sm.logs,
                cloudwatch=sm.cloudwatch,
                upload=lambda artifact: self._upload(name, artifact),
            )
            self.jobs[name] = {"request": p, "arn": arn, "created": _now(), "job": job}
        sm._put_tags(arn, p.get("Tags"))
        sm._start(lambda: self._run(name), f"training-{name}")
        return {"TrainingJobArn": arn}

    def _run(self, name: str) -> None:
        try:
            self._run_job(name)
        finally:  # its state-change event (local/emulator/aws_events.py)
            self.service.on_event("training_job_ended", {"name": name})

    def _run_job(self, name: str) -> None:
        sm = self.service
        record = self.jobs[name]
        request, job = record["request"], record["job"]
        work = sm.work_dir / "training" / name
        try:
            job._transition("Downloading", "Downloading input data")
            channels: dict[str, Path] = {}
            for channel in request.get("InputDataConfig") or []:
                channels[channel["ChannelName"]] = download_channel(
                    sm.s3, channel, work / "input" / channel["ChannelName"],
                    role_arn=str(request.get("RoleArn", "")),
                )  # fmt: skip
            job.channels = channels
        except Exception as e:
            job._end("Failed", reworded(f"{type(e).__name__}: {e}"))
            return
        job.run()

    def _upload(self, name: str, artifact: Path) -> None:
        record = self.jobs[name]
        output = record["request"]["OutputDataConfig"]["S3OutputPath"].rstrip("/") + "/"
        bucket, prefix = split_s3(output)
        key = f"{prefix}{name}/output/model.tar.gz"
        self.service.s3.upload_file(str(artifact), bucket, key)
        record["artifact"] = f"s3://{bucket}/{key}"

    def has(self, name: str) -> bool:
        return name in self.jobs

    def describe(self, name: str) -> dict[str, Any]:
        record = self.jobs[name]
        request, job = record["request"], record["job"]
        out: dict[str, Any] = {
            "TrainingJobName": name,
            "TrainingJobArn": record["arn"],
            # Where the artifact goes (the model's key), also before it is there.
            "ModelArtifacts": {
                "S3ModelArtifacts": record.get("artifact")
                or artifact_uri(request["OutputDataConfig"]["S3OutputPath"], name)
            },
            "TrainingJobStatus": job.status,
            "SecondaryStatus": job.secondary,
            "HyperParameters": request.get("HyperParameters") or {},
            "AlgorithmSpecification": with_metric_definitions(request["AlgorithmSpecification"]),
            "RoleArn": request["RoleArn"],
            "InputDataConfig": request.get("InputDataConfig") or [],
            "OutputDataConfig": output_data_config(request["OutputDataConfig"]),
            "ResourceConfig": resource_config(request),
            "StoppingCondition": request["StoppingCondition"],
            "CreationTime": record["created"],
            "LastModifiedTime": job.ended or job.started or record["created"],
            "SecondaryStatusTransitions": [dict(t) for t in job.transitions],
            "EnableNetworkIsolation": request.get("EnableNetworkIsolation", False),
            "EnableInterContainerTrafficEncryption": request.get(
                "EnableInterContainerTrafficEncryption", False
            ),
            "EnableManagedSpotTraining": request.get("EnableManagedSpotTraining", False),
        }
        if job.started is not None:
            out["TrainingStartTime"] = job.started
        if job.ended is not None:
            out["TrainingEndTime"] = job.ended
            if job.started is not None:
                seconds = max(1, int((job.ended - job.started).total_seconds()))
                out["TrainingTimeInSeconds"] = seconds
                out["BillableTimeInSeconds"] = seconds
        if job.failure_reason and job.status != "Completed":
            out["FailureReason"] = job.failure_reason
        if job.metrics:
            out["FinalMetricDataList"] = [
                {"MetricName": k, "Value": v, "Timestamp": job.ended}
                for k, v in sorted(job.metrics.items())
            ]
        for key in ("VpcConfig", "CheckpointConfig", "Environment"):
            if key in request:
                out[key] = request[key]
        return out

    def stop(self, name: str) -> dict[str, Any]:
        record = self.jobs[name]
        job = record["job"]
        if job.status == "InProgress":
            job._transition("Stopping", "Stopping the training job")
            job.stop()
        return {}

    def summaries(self) -> list[dict[str, Any]]:
        """TrainingJobSummary of every standalone and every tuning-job training job."""
        sm = self.service
        out: list[dict[str, Any]] = []
        for name, record in list(self.jobs.items()):
            job = record["job"]
            summary: dict[str, Any] = {
                "TrainingJobName": name,
                "TrainingJobArn": record["arn"],
                "CreationTime": record["created"],
                "TrainingJobStatus": job.status,
                "LastModifiedTime": job.ended or job.started or record["created"],
            }
            if job.ended is not None:
                summary["TrainingEndTime"] = job.ended
            out.append(summary)
        with sm._lock:
            tuned = list(sm._training.items())
        for name, record in tuned:
            s = record["summary"]
            summary = {
                "TrainingJobName": name,
                "TrainingJobArn": sm.arn("training-job", name),
                "CreationTime": s.get("CreationTime"),
                "TrainingJobStatus": s.get("TrainingJobStatus", "Completed"),
                "LastModifiedTime": s.get("TrainingEndTime") or s.get("CreationTime"),
            }
            if s.get("TrainingEndTime"):
                summary["TrainingEndTime"] = s["TrainingEndTime"]
            out.append(summary)
        return out

    def list(self, p: dict[str, Any]) -> dict[str, Any]:
        items, token = page(
            self.summaries(), p, name_key="TrainingJobName", status_key="TrainingJobStatus"
        )
        return listing("TrainingJobSummaries", items, token)


def objective_metric(request: dict[str, Any]) -> dict[str, str]:
    """``{"_tuning_objective_metric": <objective>}``, as SageMaker adds it to a
    tuning job's hyperparameters (empty without an objective)."""
    config = request.get("HyperParameterTuningJobConfig") or {}
    metric = (config.get("HyperParameterTuningJobObjective") or {}).get("MetricName")
    return {"_tuning_objective_metric": str(metric)} if metric else {}


def described_definition(request: dict[str, Any]) -> dict[str, Any]:
    """TrainingJobDefinition as DescribeHyperParameterTuningJob shows it: SageMaker
    adds ``_tuning_objective_metric`` to the static hyperparameters (the SDK's
    ``HyperparameterTuner.attach`` removes it again) and lists the algorithm's
    MetricDefinitions. ``ResourceConfig`` is shown as DescribeTrainingJob shows
    it, also for a request that sent ``HyperParameterTuningResourceConfig``
    (as the SDK v2 does; its ``attach`` reads ``ResourceConfig``)."""
    definition = dict(request["TrainingJobDefinition"])
    definition["ResourceConfig"] = resource_config(definition)
    definition["StaticHyperParameters"] = {
        **definition.get("StaticHyperParameters", {}),
        **objective_metric(request),
    }
    definition["AlgorithmSpecification"] = with_metric_definitions(
        definition["AlgorithmSpecification"]
    )
    return definition
