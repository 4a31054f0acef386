"""Quiet progress for ``python -m local run``: one line per phase.

The state machine's states fall into a few phases (input, data, tuning,
registry, deploy or transform, evaluate). Off a terminal (CI, pipes) each
phase prints one line when it starts, and tuning one more when it ends, with
its jobs and best objective: the poll loops (WaitForTuning / DescribeTuning /
TuningStatus) repeat nothing. On a terminal the current phase's line updates
in place (``tuning 4/6 jobs done, best validation:binary_f_beta 0.9664 (job
002)  6.1s``). ``--verbose`` keeps the per-state trace instead.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

#: State name -> phase. A state not listed is its own phase: the states that
#: name a failure (QualityGateNotMet, QualityGateFailed, ...);
#: tests/local/test_progress.py checks that every other state of the
#: synthesized definition is listed.
PHASES: dict[str, str] = {
    **dict.fromkeys(("ValidateInput", "ModelSource", "SourceKind"), "input"),
    **dict.fromkeys(("ConvertDataset", "ConvertShards", "ConvertShard", "FinalizeDataset"), "data"),
    **dict.fromkeys(
        ("StartTuning", "WaitForTuning", "DescribeTuning", "TuningStatus", "QualityGate"),
        "tuning",
    ),
    **dict.fromkeys(
        (
            "RegisterModel",
            "ApprovalMode",
            "WaitForApproval",
            "UseModelPackage",
            "LoadModelPackage",
        ),
        "registry",
    ),
    **dict.fromkeys(
        (
            "StartDeployment",
            "EndpointMode",
            "Deploy",
            "ScheduleEndpointTtl",
            "StartEndpointPolling",
            "WaitForEndpoint",
            "DescribeEndpoint",
            "EndpointStatus",
        ),
        "deploy",
    ),
    **dict.fromkeys(
        ("StartTransform", "WaitForTransform", "DescribeTransform", "TransformStatus"),
        "transform",
    ),
    **dict.fromkeys(("Evaluate", "Summarize", "NotifySuccess", "Succeeded"), "evaluate"),
    **dict.fromkeys(("NotifyFailure", "RouteFailure", "ShardConversionFailed"), "failing"),
}

_JOB_NUMBER = re.compile(r"-(\d{3})-[0-9a-f]{8}$")


def job_number(name: str) -> str:
    """``003`` of ``mnist-ll-...-003-1a2b3c4d``; the name itself otherwise."""
    found = _JOB_NUMBER.search(name)
    return found[1] if found else name


class PhaseProgress:
    """What :class:`local.account.runner.LocalPipeline` reports, as phases."""

    def __init__(
        self,
        *,
        total_jobs: int,
        stream: TextIO | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.total_jobs = total_jobs
        self.clock = clock
        self.phase = ""
        self.lines = 0
        self._started = clock()
        self._phase_started = self._started
        self._jobs: list[dict[str, Any]] = []
        self._open = False  # a terminal line being updated

    # -- what the runner calls ------------------------------------------------------

    def state(self, name: str, elapsed: float) -> None:
        phase = PHASES.get(name, name)
        if phase == self.phase:
            return
        self._end_phase()
        self.phase = phase
        self._phase_started = self.clock()
        self._show(f"{phase:<10} (+{elapsed:.1f}s)")

    def job(self, data: dict[str, Any]) -> None:
        self._jobs.append(data)
        if self.tty and self.phase == "tuning":
            self._show(self._tuning_line())

    def note(self, line: str) -> None:
        self._close_line()
        self._write(line.strip() and f"  {line.strip()}")

    def finish(self, status: str) -> None:
        self._end_phase()
        self.phase = ""

    # -- lines ------------------------------------------------------------------------

    def _tuning_line(self) -> str:
        done = [j for j in self._jobs if j.get("status") == "Completed"]
        scored = [j for j in done if j.get("objective") is not None]
        text = f"tuning     {len(self._jobs)}/{self.total_jobs} jobs done"
        if scored:
            best = max(scored, key=lambda j: float(j["objective"]))
            text += (
                f", best {best.get('metric_name')} {float(best['objective']):.4f}"
                f" (job {job_number(str(best.get('name', '')))})"
            )
        failed = len(self._jobs) - len(done)
        if failed:
            text += f", {failed} not completed"
        return text

    def _end_phase(self) -> None:
        if self.phase == "tuning" and self._jobs:
            seconds = self.clock() - self._phase_started
            self._show(f"{self._tuning_line()}  {seconds:.1f}s")
        self._close_line()

    def _show(self, text: str) -> None:
        if self.tty:
            self.stream.write(f"\r\x1b[2K  {text}")
            self.stream.flush()
            self._open = True
        else:
            self._write(f"  {text}")

    def _close_line(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self.lines += 1
            self._open = False

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()
        self.lines += 1
