"""The training jobs of a local tuning job: their state, their worker
processes and their SageMaker-shaped summaries.

Each training job runs as a real process, a fresh interpreter running
:mod:`training._worker` (so nothing depends on the caller's ``__main__``
guard or on forking a threaded parent) with one BLAS thread. It reads its
spec as JSON on stdin and answers with JSON lines on stdout;
:func:`read_messages` turns them into dicts, one reader thread per job.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from training.child_env import PROJECT_ROOT, child_env
from training.objective import Objective

JobStatus = Literal["InProgress", "Completed", "Failed", "Stopped"]


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class TrainingJobState:
    """One training job of a tuning job, as the tuner tracks it."""

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

    def summary(
        self, tuning_job: str, objective: Objective, *, region: str, account: str
    ) -> dict[str, Any]:
        """A ``HyperParameterTrainingJobSummary`` (times are datetimes)."""
        out: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrainingJobArn": (
                f"arn:aws:sagemaker:{region}:{account}:training-job/{self.name.lower()}"
            ),
            "TuningJobName": tuning_job,
            "CreationTime": self.created,
            "TrainingJobStatus": self.status,
            "TunedHyperParameters": dict(self.tuned),
            "ObjectiveStatus": (
                "Pending"
                if self.status == "InProgress"
                else ("Succeeded" if self.objective is not None else "Failed")
            ),
        }
        if self.started is not None:
            out["TrainingStartTime"] = self.started
        if self.ended is not None:
            out["TrainingEndTime"] = self.ended
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        if self.objective is not None:
            out["FinalHyperParameterTuningJobObjectiveMetric"] = objective.as_final_metric(
                self.objective
            )
        return out


def status_counters(jobs: list[TrainingJobState]) -> tuple[dict[str, int], dict[str, int]]:
    """``TrainingJobStatusCounters`` and ``ObjectiveStatusCounters`` of ``jobs``."""
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
    return counters, objective_counters


def start_worker(python: str, job_dir: Path, spec: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Start ``python -m training._worker`` on ``spec``; its stderr goes to
    ``job_dir/training.log``, its stdout is the message stream."""
    job_dir.mkdir(parents=True, exist_ok=True)
    with open(job_dir / "training.log", "wb") as log_file:
        process = subprocess.Popen(
            [python, "-m", "training._worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_file,
            env=child_env(),
            cwd=PROJECT_ROOT,
        )
    assert process.stdin is not None
    process.stdin.write(json.dumps(spec).encode())
    process.stdin.close()
    return process


def read_messages(
    process: subprocess.Popen[bytes], deliver: Callable[[dict[str, Any] | None], None]
) -> None:
    """Deliver each JSON object the worker writes, then ``None`` at EOF
    (lines that are not JSON objects are skipped). Runs in a reader thread."""
    assert process.stdout is not None
    for line in process.stdout:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict):
            deliver(message)
    process.stdout.close()
    deliver(None)


def kill(process: subprocess.Popen[bytes]) -> None:
    """Terminate ``process`` (if still running) and reap it."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:  # pragma: no cover - terminate suffices on Linux
        process.kill()
        process.wait()
