"""Local hyperparameter tuning jobs, run from a CreateHyperParameterTuningJob request.

:class:`TuningJob` takes the very request dict the pipeline sends to SageMaker
(boto3 shape), so the ranges, objective and limits come from one place
(``pipeline_core``) and are never restated here. Training jobs run as real
processes (fresh interpreters running :mod:`training._worker`, so nothing
depends on the caller's ``__main__`` guard or on forking a threaded
parent), at most ``MaxParallelTrainingJobs`` at a time and exactly
``MaxNumberOfTrainingJobs`` in all, each with one BLAS thread.

Sampling: ``Bayesian`` is Optuna's TPE sampler, ``Random`` its random
sampler, both seeded (``RandomSeed`` if the request has one, else a hash of
the tuning job's name). ``ScalingType``: ``Linear``; ``Logarithmic`` (samples
in log space, needs min > 0); ``ReverseLogarithmic`` (continuous only, needs
0 <= min < max < 1; samples ``1 - x`` in log space); ``Auto`` = logarithmic
when min > 0 and max / min >= 100 (the range spans two orders of magnitude or
more), else linear. Like SageMaker, every training job gets ``num_models=1``
and ``_tuning_objective_metric``.

``run()`` blocks; ``describe()``, ``training_jobs()``, ``training_job()`` and
``stop()`` are thread-safe, so a service can run the job in a background
thread and poll it.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import logging
import math
import os
import queue
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from training.errors import TuningRequestError

log = logging.getLogger("training.tuner")

TuningEventCallback = Callable[[dict[str, Any]], None]

#: Metrics a local training job reports at the end, usable as the objective.
OBJECTIVE_METRICS = frozenset(
    {
        "validation:binary_f_beta",
        "validation:binary_classification_accuracy",
        "validation:precision",
        "validation:recall",
        "validation:roc_auc_score",
        "validation:objective_loss",
        "train:objective_loss",
        # with a test channel
        "test:binary_f_beta",
        "test:binary_classification_accuracy",
        "test:precision",
        "test:recall",
        "test:roc_auc_score",
        "test:objective_loss",
    }
)
_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")
JobStatus = Literal["InProgress", "Completed", "Failed", "Stopped"]


@dataclass(frozen=True)
class ParamSpec:
    """One tunable hyperparameter of the request, ready for Optuna."""

    name: str
    kind: Literal["Continuous", "Integer", "Categorical"]
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    reverse: bool = False
    values: tuple[str, ...] = ()

    def distribution(self) -> Any:
        import optuna

        if self.kind == "Categorical":
            return optuna.distributions.CategoricalDistribution(list(self.values))
        if self.kind == "Integer":
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), log=self.log)
        if self.reverse:
            return optuna.distributions.FloatDistribution(1.0 - self.high, 1.0 - self.low, log=True)
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log)

    def to_string(self, sampled: Any) -> str:
        if self.kind == "Categorical":
            return str(sampled)
        if self.kind == "Integer":
            return str(int(sampled))
        value = 1.0 - float(sampled) if self.reverse else float(sampled)
        return repr(min(max(value, self.low), self.high))


@dataclass
class _Job:
    index: int
    name: str
    hyperparameters: dict[str, str]
    tuned: dict[str, str]
    trial: Any
    created: datetime
    status: JobStatus = "InProgress"
    started: datetime | None = None
    ended: datetime | None = None
    failure_reason: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    objective: float | None = None
    pid: int | None = None
    process: subprocess.Popen[bytes] | None = None
    eof: bool = False
    deadline: float | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TuningRequestError(f"{what} must be a string, got {value!r}")
    return value


def _number(value: Any, what: str, integer: bool) -> float:
    raw = _str(value, what)
    try:
        number = float(int(raw)) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise TuningRequestError(f"{what} must be {kind} as a string, got {raw!r}") from None
    if not math.isfinite(number):
        raise TuningRequestError(f"{what} must be finite")
    return number


def parse_ranges(ranges: Mapping[str, Any]) -> list[ParamSpec]:
    """``ParameterRanges`` of the request as :class:`ParamSpec` (see module doc)."""
    if not isinstance(ranges, Mapping):
        raise TuningRequestError("ParameterRanges must be an object")
    specs: list[ParamSpec] = []
    for key, kind in (
        ("ContinuousParameterRanges", "Continuous"),
        ("IntegerParameterRanges", "Integer"),
        ("CategoricalParameterRanges", "Categorical"),
    ):
        for i, raw in enumerate(ranges.get(key, []) or []):
            where = f"ParameterRanges.{key}[{i}]"
            if not isinstance(raw, Mapping):
                raise TuningRequestError(f"{where} must be an object")
            name = _str(raw.get("Name"), f"{where}.Name")
            if kind == "Categorical":
                values = raw.get("Values")
                if not isinstance(values, list) or not values:
                    raise TuningRequestError(f"{where}.Values must be a non-empty list")
                specs.append(
                    ParamSpec(name, "Categorical", values=tuple(_str(v, where) for v in values))
                )
                continue
            integer = kind == "Integer"
            low = _number(raw.get("MinValue"), f"{where}.MinValue ({name})", integer)
            high = _number(raw.get("MaxValue"), f"{where}.MaxValue ({name})", integer)
            if low > high:
                raise TuningRequestError(f"{where} ({name}): MinValue exceeds MaxValue")
            scaling = raw.get("ScalingType", "Auto")
            if scaling == "Auto":
                log_scale = low > 0 and high / low >= 100.0
                reverse = False
            elif scaling == "Linear":
                log_scale, reverse = False, False
            elif scaling == "Logarithmic":
                if low <= 0:
                    raise TuningRequestError(f"{where} ({name}): Logarithmic needs MinValue > 0")
                log_scale, reverse = True, False
            elif scaling == "ReverseLogarithmic":
                if integer:
                    raise TuningRequestError(
                        f"{where} ({name}): ReverseLogarithmic is for continuous ranges only"
                    )
                if not 0 <= low < high < 1:
                    raise TuningRequestError(
                        f"{where} ({name}): ReverseLogarithmic needs 0 <= MinValue < MaxValue < 1"
                    )
                log_scale, reverse = False, True
            else:
                raise TuningRequestError(f"{where} ({name}): unknown ScalingType {scaling!r}")
            specs.append(ParamSpec(name, kind, low, high, log_scale, reverse))  # type: ignore[arg-type]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise TuningRequestError(f"ParameterRanges name a hyperparameter twice: {names}")
    if not specs:
        raise TuningRequestError("ParameterRanges holds no ranges")
    return specs


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
        if not isinstance(request, Mapping):
            raise TuningRequestError("the request must be an object")
        self.request = copy.deepcopy(dict(request))
        self.name = _str(request.get("HyperParameterTuningJobName"), "HyperParameterTuningJobName")
        if not _NAME.match(self.name):
            raise TuningRequestError(
                f"HyperParameterTuningJobName: 1-32 letters, digits and hyphens, got {self.name!r}"
            )
        config = request.get("HyperParameterTuningJobConfig")
        if not isinstance(config, Mapping):
            raise TuningRequestError("HyperParameterTuningJobConfig is required")
        self.strategy = config.get("Strategy", "Bayesian")
        if self.strategy not in ("Bayesian", "Random", "Grid"):
            raise TuningRequestError(
                f"Strategy {self.strategy!r} is not supported locally (Bayesian, Random or Grid)"
            )
        objective = config.get("HyperParameterTuningJobObjective")
        if not isinstance(objective, Mapping):
            raise TuningRequestError("HyperParameterTuningJobObjective is required")
        self.objective_type = objective.get("Type")
        if self.objective_type not in ("Maximize", "Minimize"):
            raise TuningRequestError("HyperParameterTuningJobObjective.Type: Maximize or Minimize")
        self.metric = _str(
            objective.get("MetricName"), "HyperParameterTuningJobObjective.MetricName"
        )
        if self.metric not in OBJECTIVE_METRICS:
            raise TuningRequestError(
                f"MetricName {self.metric!r} is not a Linear Learner metric "
                f"({sorted(OBJECTIVE_METRICS)})"
            )
        limits = config.get("ResourceLimits")
        if not isinstance(limits, Mapping):
            raise TuningRequestError("ResourceLimits is required")
        self.max_parallel = _limit(limits.get("MaxParallelTrainingJobs"), "MaxParallelTrainingJobs")
        self.specs = parse_ranges(config.get("ParameterRanges", {}))
        if self.strategy == "Grid":
            # As SageMaker: a grid is categorical ranges only, one job per
            # combination; MaxNumberOfTrainingJobs, if given, must be that count.
            self.grid = _grid(self.specs)
            given = limits.get("MaxNumberOfTrainingJobs")
            size = math.prod(len(values) for values in self.grid.values())
            if given is not None and _limit(given, "MaxNumberOfTrainingJobs") != size:
                raise TuningRequestError(
                    f"ResourceLimits.MaxNumberOfTrainingJobs is {given}, but the Grid "
                    f"strategy runs every combination: leave it out or set it to {size}"
                )
            self.max_jobs = size
        else:
            self.max_jobs = _limit(limits.get("MaxNumberOfTrainingJobs"), "MaxNumberOfTrainingJobs")
        seed = config.get("RandomSeed")
        if seed is None:
            seed = int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:4], "big")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TuningRequestError("RandomSeed must be an integer")
        self.seed = seed

        definition = request.get("TrainingJobDefinition")
        if not isinstance(definition, Mapping):
            raise TuningRequestError("TrainingJobDefinition is required (one definition)")
        static = definition.get("StaticHyperParameters", {}) or {}
        if not isinstance(static, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in static.items()
        ):
            raise TuningRequestError("StaticHyperParameters must map names to strings")
        clash = sorted({s.name for s in self.specs} & set(static))
        if clash:
            raise TuningRequestError(f"hyperparameters both static and tuned: {clash}")
        self.static = dict(static)
        self.channels = _channels(definition.get("InputDataConfig"), channels)
        self.instance_count, self.distribution = _instances(definition)
        stopping = definition.get("StoppingCondition", {}) or {}
        runtime = stopping.get("MaxRuntimeInSeconds") if isinstance(stopping, Mapping) else None
        self.max_runtime = float(runtime) if isinstance(runtime, (int, float)) else None
        self.output_dir = Path(output_dir)
        self.on_event = on_event
        self.region, self.account = region, account
        self.python = python or sys.executable
        self._inbox: queue.Queue[tuple[_Job, dict[str, Any] | None]] = queue.Queue()

        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._jobs: list[_Job] = []
        self._status: JobStatus = "InProgress"
        self._failure: str | None = None
        self._created = _now()
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
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler: optuna.samplers.BaseSampler
        if self.strategy == "Bayesian":
            sampler = optuna.samplers.TPESampler(
                seed=self.seed,
                # Optuna's default (10 random trials first) would make a small
                # budget such as the tutorial's 6 jobs purely random: start the
                # model after one round of parallel jobs, as SageMaker does.
                n_startup_trials=max(2, self.max_parallel),
                constant_liar=True,  # parallel trials avoid each other
            )
        else:
            sampler = optuna.samplers.RandomSampler(seed=self.seed)
        study = optuna.create_study(
            direction="maximize" if self.objective_type == "Maximize" else "minimize",
            sampler=sampler,
        )
        dists = {spec.name: spec.distribution() for spec in self.specs}
        if self.strategy == "Grid":
            # Every combination once, in a seeded order (Optuna's GridSampler
            # only works inside study.optimize; the tuner asks and tells).
            names = sorted(self.grid)
            combos = list(itertools.product(*(self.grid[n] for n in names)))
            random.Random(self.seed).shuffle(combos)
            for combo in combos:
                study.enqueue_trial(dict(zip(names, combo, strict=True)))
        self.output_dir.mkdir(parents=True, exist_ok=True)
        running: list[_Job] = []
        try:
            while not self._stop.is_set():
                while len(running) < self.max_parallel and len(self._jobs) < self.max_jobs:
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
            jobs = list(self._jobs)
            counters = {
                "Completed": sum(j.status == "Completed" for j in jobs),
                "InProgress": sum(j.status == "InProgress" for j in jobs),
                "RetryableError": 0,
                "NonRetryableError": sum(j.status == "Failed" for j in jobs),
                "Stopped": sum(j.status == "Stopped" for j in jobs),
            }
            objective_counters = {
                "Succeeded": sum(j.objective is not None for j in jobs),
                "Pending": sum(j.status == "InProgress" for j in jobs),
                "Failed": sum(j.status != "InProgress" and j.objective is None for j in jobs),
            }
            out: dict[str, Any] = {
                "HyperParameterTuningJobName": self.name,
                "HyperParameterTuningJobArn": self.arn,
                "HyperParameterTuningJobConfig": copy.deepcopy(
                    self.request.get("HyperParameterTuningJobConfig")
                ),
                "TrainingJobDefinition": copy.deepcopy(self.request.get("TrainingJobDefinition")),
                "HyperParameterTuningJobStatus": self._status,
                "CreationTime": self._created,
                "LastModifiedTime": _now(),
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

    def _new_job(self, trial: Any) -> _Job:
        index = len(self._jobs) + 1
        tuned = {spec.name: spec.to_string(trial.params[spec.name]) for spec in self.specs}
        hps = {
            **self.static,
            **tuned,
            "num_models": "1",
            "_tuning_objective_metric": self.metric,
        }
        digest = hashlib.sha256(
            json.dumps([self.name, index, hps], sort_keys=True).encode()
        ).hexdigest()[:8]
        job = _Job(index, f"{self.name}-{index:03d}-{digest}", hps, tuned, trial, _now())
        with self._lock:
            self._jobs.append(job)
        return job

    def _launch(self, job: _Job) -> None:
        job_dir = self.output_dir / job.name
        job_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update({var: "1" for var in _THREAD_VARS})
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        spec = {
            "channels": {k: str(v) for k, v in self.channels.items()},
            "hyperparameters": job.hyperparameters,
            "model_dir": str(job_dir / "output"),
            "instance_count": self.instance_count,
            "distribution": self.distribution,
        }
        with open(job_dir / "training.log", "wb") as log_file:
            process = subprocess.Popen(
                [self.python, "-m", "training._worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                env=env,
                cwd=root,
            )
        assert process.stdin is not None
        process.stdin.write(json.dumps(spec).encode())
        process.stdin.close()
        with self._lock:
            job.process = process
            job.started = _now()
            job.pid = process.pid
            if self.max_runtime is not None:
                job.deadline = time.monotonic() + self.max_runtime
        threading.Thread(
            target=self._read, args=(job, process), name=f"{job.name}-reader", daemon=True
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

    def _read(self, job: _Job, process: subprocess.Popen[bytes]) -> None:
        """Reader thread: worker messages into the inbox, then ``None`` at EOF."""
        assert process.stdout is not None
        for line in process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                self._inbox.put((job, message))
        process.stdout.close()
        self._inbox.put((job, None))

    def _wait(self, running: list[_Job], study: Any) -> None:
        """Take news from the jobs, then report finished jobs to the sampler in
        launch order: while more trials are to come, one at a time, so that
        trial ``k + MaxParallelTrainingJobs`` is always sampled knowing exactly
        trials ``1..k``, whichever job happened to finish first. A seeded
        tuning job therefore samples the same hyperparameters every time."""
        item: tuple[_Job, dict[str, Any] | None] | None = None
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
        now = time.monotonic()
        for job in running:
            if job.status == "InProgress" and job.deadline is not None and now > job.deadline:
                self._finish_stopped(job, "MaxRuntimeExceeded: training job exceeded its runtime")
            if job.status == "InProgress" and job.eof:
                assert job.process is not None
                code = job.process.wait()
                self._finish_failed(job, f"AlgorithmError: training process exited ({code})")
            if job.status != "InProgress" and job.process is not None:
                self._kill(job)
                job.process = None  # reaped: a job waiting for its turn is not killed again
        more_to_sample = len(self._jobs) < self.max_jobs
        while running and running[0].status != "InProgress":
            job = running.pop(0)
            if job.objective is not None:
                study.tell(job.trial, job.objective)
            else:
                study.tell(job.trial, state=_trial_failed())
            if more_to_sample:
                break

    def _handle(self, job: _Job, message: dict[str, Any] | None) -> None:
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

    def _finish_completed(self, job: _Job, payload: Mapping[str, Any]) -> None:
        metrics = {str(k): float(v) for k, v in payload.get("metrics", {}).items()}
        value = metrics.get(self.metric)
        with self._lock:
            job.status = "Completed"
            job.ended = _now()
            job.metrics = metrics
            job.objective = value if value is not None and math.isfinite(value) else None
        log.info("training job %s completed: %s=%s", job.name, self.metric, value)
        self._emit(
            {
                "type": "TrainingJobCompleted",
                "TrainingJobName": job.name,
                "metrics": dict(metrics),
                "pid": payload.get("pid"),
            }
        )

    def _finish_failed(self, job: _Job, reason: str) -> None:
        with self._lock:
            job.status = "Failed"
            job.ended = _now()
            job.failure_reason = reason[:1024]
        log.warning("training job %s failed: %s", job.name, reason)
        self._emit(
            {"type": "TrainingJobFailed", "TrainingJobName": job.name, "FailureReason": reason}
        )

    def _finish_stopped(self, job: _Job, reason: str) -> None:
        if job.status != "InProgress":
            return
        self._kill(job)
        with self._lock:
            job.status = "Stopped"
            job.ended = _now()
            job.failure_reason = reason
        self._emit({"type": "TrainingJobStopped", "TrainingJobName": job.name})

    @staticmethod
    def _kill(job: _Job) -> None:
        process = job.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover - terminate suffices on Linux
            process.kill()
            process.wait()

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
            self._ended = _now()
            status = self._status
        best = self.describe().get("BestTrainingJob")
        self._emit({"type": f"TuningJob{status}", "BestTrainingJob": best})

    def _best(self) -> _Job | None:
        scored = [j for j in self._jobs if j.status == "Completed" and j.objective is not None]
        if not scored:
            return None
        sign = 1.0 if self.objective_type == "Maximize" else -1.0
        # best objective; ties go to the earlier job
        return max(scored, key=lambda j: (sign * float(j.objective or 0.0), -j.index))

    def _summary(self, job: _Job) -> dict[str, Any]:
        out: dict[str, Any] = {
            "TrainingJobName": job.name,
            "TrainingJobArn": (
                f"arn:aws:sagemaker:{self.region}:{self.account}:training-job/{job.name.lower()}"
            ),
            "TuningJobName": self.name,
            "CreationTime": job.created,
            "TrainingJobStatus": job.status,
            "TunedHyperParameters": dict(job.tuned),
            "ObjectiveStatus": (
                "Pending"
                if job.status == "InProgress"
                else ("Succeeded" if job.objective is not None else "Failed")
            ),
        }
        if job.started is not None:
            out["TrainingStartTime"] = job.started
        if job.ended is not None:
            out["TrainingEndTime"] = job.ended
        if job.failure_reason:
            out["FailureReason"] = job.failure_reason
        if job.objective is not None:
            out["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": self.objective_type,
                "MetricName": self.metric,
                "Value": job.objective,
            }
        return out

    def _emit(self, event: dict[str, Any]) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event({"TuningJobName": self.name, **event})
        except Exception:  # a broken listener must not kill the tuning job
            log.exception("on_event callback failed")


def _trial_failed() -> Any:
    import optuna

    return optuna.trial.TrialState.FAIL


def _grid(specs: list[ParamSpec]) -> dict[str, tuple[str, ...]]:
    """The grid of a Grid strategy: every range must be categorical."""
    if not specs:
        raise TuningRequestError("the Grid strategy needs at least one categorical range")
    other = sorted(s.name for s in specs if s.kind != "Categorical")
    if other:
        raise TuningRequestError(
            f"the Grid strategy takes only CategoricalParameterRanges; {other} are not"
        )
    return {s.name: tuple(s.values) for s in specs}


def _limit(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TuningRequestError(f"ResourceLimits.{what} must be a positive integer")
    return value


def _channels(config: Any, given: Mapping[str, Path]) -> dict[str, Path]:
    """Local paths for the request's ``InputDataConfig`` channels."""
    if config is None:
        names = sorted(given)
    else:
        if not isinstance(config, list):
            raise TuningRequestError("InputDataConfig must be a list of channels")
        names = []
        for i, channel in enumerate(config):
            if not isinstance(channel, Mapping):
                raise TuningRequestError(f"InputDataConfig[{i}] must be an object")
            names.append(_str(channel.get("ChannelName"), f"InputDataConfig[{i}].ChannelName"))
    missing = sorted(set(names) - set(given))
    if missing:
        raise TuningRequestError(f"no local data for channels {missing}")
    if "train" not in names:
        raise TuningRequestError("InputDataConfig needs a 'train' channel")
    return {name: Path(given[name]) for name in names}


def _instances(definition: Mapping[str, Any]) -> tuple[int, dict[str, str]]:
    """``ResourceConfig.InstanceCount`` and each channel's ``S3DataDistributionType``."""
    resources = definition.get("ResourceConfig") or {}
    count = resources.get("InstanceCount", 1) if isinstance(resources, Mapping) else 1
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise TuningRequestError("ResourceConfig.InstanceCount must be a positive integer")
    distribution: dict[str, str] = {}
    for channel in definition.get("InputDataConfig") or []:
        source = (channel.get("DataSource") or {}).get("S3DataSource") or {}
        distribution[str(channel.get("ChannelName"))] = str(
            source.get("S3DataDistributionType", "FullyReplicated")
        )
    return count, distribution
