"""Local hyperparameter tuning jobs, run from a CreateHyperParameterTuningJob request.

:class:`TuningJob` orchestrates one tuning job: it checks the request
(:mod:`training.tuning_request`), samples hyperparameters with the request's
strategy (:mod:`training.search`), runs the training jobs as worker processes
(:mod:`training.tuning_jobs`), at most ``MaxParallelTrainingJobs`` at a time
and exactly ``MaxNumberOfTrainingJobs`` in all, and picks the best by the
objective (:mod:`training.objective`). Like SageMaker, every training job
gets ``num_models=1`` and ``_tuning_objective_metric``.

``run()`` blocks; ``describe()``, ``training_jobs()``, ``training_job()`` and
``stop()`` are thread-safe, so a service can run the job in a background
thread and poll it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from training import tuning_jobs
from training.errors import TuningRequestError
from training.objective import OBJECTIVE_METRICS
from training.search import create_study, trial_failed
from training.tuning_jobs import JobStatus, TrainingJobState, now
from training.tuning_request import parse_request

log = logging.getLogger("training.tuner")

TuningEventCallback = Callable[[dict[str, Any]], None]

__all__ = ["OBJECTIVE_METRICS", "TuningEventCallback", "TuningJob"]


class TuningJob:
    """One local hyperparameter tuning job (see the module docstring).

    ``channels`` maps channel names (``train``, ``validation``) to local
    files or directories; artifacts go to
    ``output_dir/<training-job-name>/output/model.tar.gz``. ``on_event`` is
    called from the thread running :meth:`run` with dicts such as
    ``{"type": "TrainingJobStarted", "TrainingJobName": ..., "pid": ...}``,
    ``{"type": "metric", "TrainingJobName": ..., "name": ..., "value": ..., "epoch": ...}``,
    ``TrainingJobCompleted`` / ``TrainingJobFailed`` / ``TrainingJobStopped``
    and finally ``TuningJobCompleted`` / ``TuningJobFailed`` / ``TuningJobStopped``.
    """

    def __init__(
        self,
        request: Mapping[str, Any],
        channels: Mapping[str, Path],
        output_dir: Path,
        on_event: TuningEventCallback | None = None,
        *,
        region: str = "us-east-1",
        account: str = "000000000000",
        python: str | None = None,
    ) -> None:
        self.config = parse_request(request, channels)
        self.request = copy.deepcopy(dict(request))
        self.name = self.config.name
        self.max_jobs = self.config.max_jobs
        self.output_dir = Path(output_dir)
        self.on_event = on_event
        self.region, self.account = region, account
        self.python = python or sys.executable
        self._inbox: queue.Queue[tuple[TrainingJobState, dict[str, Any] | None]] = queue.Queue()

        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._jobs: list[TrainingJobState] = []
        self._status: JobStatus = "InProgress"
        self._failure: str | None = None
        self._created = now()
        self._ended: datetime | None = None
        self._ran = False

    # -- public API -----------------------------------------------------------

    @property
    def arn(self) -> str:
        return (
            f"arn:aws:sagemaker:{self.region}:{self.account}:"
            f"hyper-parameter-tuning-job/{self.name.lower()}"
        )

    def run(self) -> dict[str, Any]:
        """Run every training job (blocking) and return :meth:`describe`."""
        with self._lock:
            if self._ran:
                raise TuningRequestError(f"tuning job {self.name} has already run")
            self._ran = True
        config = self.config
        study, dists = create_study(
            config.strategy,
            config.specs,
            seed=config.seed,
            direction=config.objective.direction,
            max_parallel=config.max_parallel,
        )
        self.output_dir.mkdir(parents=True, exist_ok=True)
        running: list[TrainingJobState] = []
        try:
            while not self._stop.is_set():
                while len(running) < config.max_parallel and len(self._jobs) < self.max_jobs:
                    trial = study.ask(dists)
                    job = self._new_job(trial)
                    self._launch(job)
                    running.append(job)
                if not running:
                    break
                self._wait(running, study)
        finally:
            for job in running:
                self._finish_stopped(job, "Stopped by StopHyperParameterTuningJob")
        self._conclude()
        return self.describe()

    def stop(self) -> None:
        """Stop the tuning job: running training jobs are terminated (Stopped)."""
        self._stop.set()
        with self._lock:
            if not self._ran:
                self._ran = True
                self._conclude()

    def describe(self) -> dict[str, Any]:
        """A DescribeHyperParameterTuningJob-shaped dict (times are datetimes)."""
        with self._lock:
            counters, objective_counters = tuning_jobs.status_counters(list(self._jobs))
            out: dict[str, Any] = {
                "HyperParameterTuningJobName": self.name,
                "HyperParameterTuningJobArn": self.arn,
                "HyperParameterTuningJobConfig": copy.deepcopy(
                    self.request.get("HyperParameterTuningJobConfig")
                ),
                "TrainingJobDefinition": copy.deepcopy(self.request.get("TrainingJobDefinition")),
                "HyperParameterTuningJobStatus": self._status,
                "CreationTime": self._created,
                "LastModifiedTime": now(),
                "TrainingJobStatusCounters": counters,
                "ObjectiveStatusCounters": objective_counters,
            }
            if self._ended is not None:
                out["HyperParameterTuningEndTime"] = self._ended
            best = self._best()
            if best is not None:
                out["BestTrainingJob"] = self._summary(best)
            if self._failure:
                out["FailureReason"] = self._failure
            return out

    def training_jobs(self) -> list[dict[str, Any]]:
        """ListTrainingJobsForHyperParameterTuningJob ``TrainingJobSummaries``."""
        with self._lock:
            return [self._summary(job) for job in self._jobs]

    def training_job(self, name: str) -> dict[str, Any]:
        """A DescribeTrainingJob-shaped dict for one of this tuning job's jobs."""
        with self._lock:
            for job in self._jobs:
                if job.name == name:
                    out = self._summary(job)
                    out.update(
                        {
                            "HyperParameters": dict(job.hyperparameters),
                            "TuningJobArn": self.arn,
                            "ModelArtifacts": {"S3ModelArtifacts": str(self.artifact(name))},
                            "FinalMetricDataList": [
                                {"MetricName": k, "Value": v, "Timestamp": job.ended}
                                for k, v in sorted(job.metrics.items())
                            ],
                            "SecondaryStatus": job.status,
                        }
                    )
                    return out
        raise KeyError(name)

    def artifact(self, training_job_name: str) -> Path:
        return self.output_dir / training_job_name / "output" / "model.tar.gz"

    # -- internals -------------------------------------------------------------

    def _new_job(self, trial: Any) -> TrainingJobState:
        index = len(self._jobs) + 1
        tuned = {spec.name: spec.to_string(trial.params[spec.name]) for spec in self.config.specs}
        hps = {
            **self.config.static,
            **tuned,
            "num_models": "1",
            "_tuning_objective_metric": self.config.objective.metric,
        }
        digest = hashlib.sha256(
            json.dumps([self.name, index, hps], sort_keys=True).encode()
        ).hexdigest()[:8]
        job = TrainingJobState(index, f"{self.name}-{index:03d}-{digest}", hps, tuned, trial, now())
        with self._lock:
            self._jobs.append(job)
        return job

    def _launch(self, job: TrainingJobState) -> None:
        job_dir = self.output_dir / job.name
        spec = {
            "channels": {k: str(v) for k, v in self.config.channels.items()},
            "hyperparameters": job.hyperparameters,
            "model_dir": str(job_dir / "output"),
            "instance_count": self.config.instance_count,
            "distribution": self.config.distribution,
        }
        process = tuning_jobs.start_worker(self.python, job_dir, spec)
        with self._lock:
            job.process = process
            job.started = now()
            job.pid = process.pid
            if self.config.max_runtime is not None:
                job.deadline = time.monotonic() + self.config.max_runtime
        threading.Thread(
            target=tuning_jobs.read_messages,
            args=(process, lambda message: self._inbox.put((job, message))),
            name=f"{job.name}-reader",
            daemon=True,
        ).start()
        log.info("training job %s started (pid %s): %s", job.name, process.pid, job.tuned)
        self._emit(
            {
                "type": "TrainingJobStarted",
                "TrainingJobName": job.name,
                "TunedHyperParameters": dict(job.tuned),
                "pid": process.pid,
            }
        )

    def _wait(self, running: list[TrainingJobState], study: Any) -> None:
        """Take news from the jobs, then report finished jobs to the sampler in
        launch order: while more trials are to come, one at a time, so that
        trial ``k + MaxParallelTrainingJobs`` is always sampled knowing exactly
        trials ``1..k``, whichever job happened to finish first. A seeded
        tuning job therefore samples the same hyperparameters every time."""
        item: tuple[TrainingJobState, dict[str, Any] | None] | None = None
        if not (running and running[0].status != "InProgress"):
            try:
                item = self._inbox.get(timeout=0.2)
            except queue.Empty:
                item = None
        while item is not None:
            job, message = item
            self._handle(job, message)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                item = None
        moment = time.monotonic()
        for job in running:
            if job.status == "InProgress" and job.deadline is not None and moment > job.deadline:
                self._finish_stopped(job, "MaxRuntimeExceeded: training job exceeded its runtime")
            if job.status == "InProgress" and job.eof:
                assert job.process is not None
                code = job.process.wait()
                self._finish_failed(job, f"AlgorithmError: training process exited ({code})")
            if job.status != "InProgress" and job.process is not None:
                tuning_jobs.kill(job.process)
                job.process = None  # reaped: a job waiting for its turn is not killed again
        more_to_sample = len(self._jobs) < self.max_jobs
        while running and running[0].status != "InProgress":
            job = running.pop(0)
            if job.objective is not None:
                study.tell(job.trial, job.objective)
            else:
                study.tell(job.trial, state=trial_failed())
            if more_to_sample:
                break

    def _handle(self, job: TrainingJobState, message: dict[str, Any] | None) -> None:
        if message is None:
            job.eof = True
            return
        if job.status != "InProgress":
            return
        kind = message.get("kind")
        if kind == "event" and message.get("type") == "metric":
            event = {k: v for k, v in message.items() if k != "kind"}
            self._emit({**event, "TrainingJobName": job.name})
        elif kind == "result":
            self._finish_completed(job, message)
        elif kind == "error":
            self._finish_failed(job, f"{message.get('type')}: {message.get('message')}")

    def _finish_completed(self, job: TrainingJobState, payload: Mapping[str, Any]) -> None:
        metrics = {str(k): float(v) for k, v in payload.get("metrics", {}).items()}
        objective = self.config.objective
        with self._lock:
            job.status = "Completed"
            job.ended = now()
            job.metrics = metrics
            job.objective = objective.value(metrics)
        log.info(
            "training job %s completed: %s=%s",
            job.name,
            objective.metric,
            metrics.get(objective.metric),
        )
        self._emit(
            {
                "type": "TrainingJobCompleted",
                "TrainingJobName": job.name,
                "metrics": dict(metrics),
                "pid": payload.get("pid"),
            }
        )

    def _finish_failed(self, job: TrainingJobState, reason: str) -> None:
        with self._lock:
            job.status = "Failed"
            job.ended = now()
            job.failure_reason = reason[:1024]
        log.warning("training job %s failed: %s", job.name, reason)
        self._emit(
            {"type": "TrainingJobFailed", "TrainingJobName": job.name, "FailureReason": reason}
        )

    def _finish_stopped(self, job: TrainingJobState, reason: str) -> None:
        if job.status != "InProgress":
            return
        if job.process is not None:
            tuning_jobs.kill(job.process)
        with self._lock:
            job.status = "Stopped"
            job.ended = now()
            job.failure_reason = reason
        self._emit({"type": "TrainingJobStopped", "TrainingJobName": job.name})

    def _conclude(self) -> None:
        with self._lock:
            completed = [j for j in self._jobs if j.status == "Completed"]
            if self._stop.is_set():
                self._status = "Stopped"
            elif completed:
                self._status = "Completed"
            else:
                self._status = "Failed"
                reasons = [j.failure_reason for j in self._jobs if j.failure_reason]
                self._failure = "All training jobs failed." + (
                    f" Last: {reasons[-1]}" if reasons else ""
                )
            self._ended = now()
            status = self._status
        best = self.describe().get("BestTrainingJob")
        self._emit({"type": f"TuningJob{status}", "BestTrainingJob": best})

    def _best(self) -> TrainingJobState | None:
        scored = [j for j in self._jobs if j.status == "Completed" and j.objective is not None]
        if not scored:
            return None
        rank = self.config.objective.rank
        return max(scored, key=lambda j: rank(float(j.objective or 0.0), j.index))

    def _summary(self, job: TrainingJobState) -> dict[str, Any]:
        return job.summary(
            self.name, self.config.objective, region=self.region, account=self.account
        )

    def _emit(self, event: dict[str, Any]) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event({"TuningJobName": self.name, **event})
        except Exception:  # a broken listener must not kill the tuning job
            log.exception("on_event callback failed")
