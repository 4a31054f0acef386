"""Instance metrics of training and transform jobs, as SageMaker publishes them.

SageMaker publishes ``CPUUtilization`` and ``MemoryUtilization`` (Percent) of
each job instance in ``/aws/sagemaker/TrainingJobs`` and
``/aws/sagemaker/TransformJobs``, dimension ``Host``: ``<job>/algo-<n>`` for a
training job, ``<job>/<instance-id>`` for a transform job. Locally an instance
is a process (a standalone training job's worker) or a thread (a transform
job): :class:`HostSampler` measures it while it runs and publishes one
datapoint of each when it ends (CloudWatch: one a minute).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("local.emulator.job_metrics")

TRAINING_NAMESPACE = "/aws/sagemaker/TrainingJobs"
TRANSFORM_NAMESPACE = "/aws/sagemaker/TransformJobs"
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _memory_total() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def process_usage(pid: int) -> tuple[float, int] | None:
    """(CPU seconds, resident bytes) of process ``pid`` (Linux), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
    return cpu, rss_pages * os.sysconf("SC_PAGE_SIZE")


def publish_host_utilization(
    cloudwatch: Any, namespace: str, host: str, cpu_percent: float, memory_bytes: int
) -> None:
    """One ``CPUUtilization`` and ``MemoryUtilization`` datapoint of ``host``."""
    if cloudwatch is None:
        return
    total = _memory_total()
    memory = 100.0 * memory_bytes / total if total else 0.0
    now = datetime.now(UTC)
    dims = [{"Name": "Host", "Value": host}]
    try:
        cloudwatch.put_metric_data(
            Namespace=namespace,
            MetricData=[
                {"MetricName": "CPUUtilization", "Dimensions": dims, "Timestamp": now,
                 "Value": max(0.0, cpu_percent), "Unit": "Percent"},
                {"MetricName": "MemoryUtilization", "Dimensions": dims, "Timestamp": now,
                 "Value": memory, "Unit": "Percent"},
            ],
        )  # fmt: skip
    except Exception as e:  # a job never fails for its metrics
        log.warning("could not publish the metrics of %s: %s", host, e)


def publish_thread_job(
    cloudwatch: Any, namespace: str, host: str, cpu_seconds: float, wall_seconds: float
) -> None:
    """A job run by a thread of this process: its CPU share, this process's memory."""
    usage = process_usage(os.getpid())
    cpu_percent = 100.0 * cpu_seconds / max(wall_seconds, 1e-6)
    publish_host_utilization(cloudwatch, namespace, host, cpu_percent, usage[1] if usage else 0)


class HostSampler:
    """Samples one process every ``interval`` seconds; :meth:`finish` publishes."""

    def __init__(
        self, cloudwatch: Any, namespace: str, host: str, pid: int, interval: float = 0.5
    ) -> None:
        self.cloudwatch = cloudwatch
        self.namespace = namespace
        self.host = host
        self.pid = pid
        self.interval = interval
        self._started = time.monotonic()
        self._cpu = 0.0
        self._cpu_start: float | None = None  # the process's CPU time when first seen
        self._peak = 0
        self._done = threading.Event()
        self._sample()
        self._thread = threading.Thread(target=self._run, name=f"sample-{host}", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        usage = process_usage(self.pid)
        if usage is not None:
            if self._cpu_start is None:
                self._cpu_start = usage[0]
            self._cpu = max(self._cpu, usage[0])
            self._peak = max(self._peak, usage[1])

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self._sample()

    def finish(self) -> None:
        self._done.set()
        self._thread.join(2)
        wall = max(time.monotonic() - self._started, 1e-6)
        used = self._cpu - (self._cpu_start or 0.0)
        publish_host_utilization(
            self.cloudwatch, self.namespace, self.host, 100.0 * used / wall, self._peak
        )
