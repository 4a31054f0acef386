"""The state the local SageMaker's resource families share.

:class:`ServiceState` holds the records (tuning and training jobs, models,
endpoint configs, endpoints, tags), the injected faults and the background
threads; each family (:mod:`.tuning`, :mod:`.training_ops`, :mod:`.endpoints`,
:mod:`.transform_jobs`) is a mixin over it, and :class:`.service.LocalSageMaker`
puts them together.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.emulator import aws_events
from local.emulator.async_inference import ASYNC_WORKERS
from local.emulator.errors import ServiceError
from local.emulator.registry import ModelRegistry
from local.emulator.runtime_metrics import RuntimeMetrics
from local.emulator.training_backend import TrainingBackend
from local.emulator.training_jobs import TrainingJobService

Event = Callable[[str, dict[str, Any]], None]
AwsEvent = Callable[[dict[str, Any]], object]
#: (the state change, its data, the Describe answer if taken already).
_Change = tuple[tuple[str, str, str, str], dict[str, Any], dict[str, Any] | None]

_TRAINING = (aws_events.TRAINING_JOB, "DescribeTrainingJob", "TrainingJobName")
_TUNING = (
    aws_events.TUNING_JOB,
    "DescribeHyperParameterTuningJob",
    "HyperParameterTuningJobName",
)
_ENDPOINT = (aws_events.ENDPOINT, "DescribeEndpoint", "EndpointName")
#: A progress kind (``on_event``) or an operation just answered -> the
#: state-change event it means: (detail-type, Describe operation, its name
#: key, the key of ``data`` that holds the name).
_STATE_CHANGES: dict[str, tuple[str, str, str, str]] = {
    "training_job_done": (*_TRAINING, "name"),
    "training_job_ended": (*_TRAINING, "name"),
    "CreateTrainingJob": (*_TRAINING, "TrainingJobName"),
    "StopTrainingJob": (*_TRAINING, "TrainingJobName"),
    "tuning_done": (*_TUNING, "tuning_job"),
    "CreateHyperParameterTuningJob": (*_TUNING, "HyperParameterTuningJobName"),
    "StopHyperParameterTuningJob": (*_TUNING, "HyperParameterTuningJobName"),
    "endpoint": (*_ENDPOINT, "endpoint"),
    "CreateEndpoint": (*_ENDPOINT, "EndpointName"),
    "UpdateEndpoint": (*_ENDPOINT, "EndpointName"),
    "DeleteEndpoint": (*_ENDPOINT, "EndpointName"),
}


@dataclass
class Endpoint:
    name: str
    arn: str
    config_name: str
    status: str
    created: float
    modified: float
    failure_reason: str | None = None
    pending_config: str | None = None
    tags: list[dict[str, str]] = field(default_factory=list)
    #: UpdateEndpoint's DeploymentConfig (in progress, then the last one).
    deployment_config: dict[str, Any] | None = None
    #: Traffic on the new fleet during a blue/green update (percent).
    traffic_percent: int | None = None
    #: The serving config's AsyncInferenceConfig, kept with the endpoint (a
    #: deleted config does not change a running endpoint).
    async_config: dict[str, Any] | None = None


class ServiceState:
    """In-memory records of one local SageMaker, and what every family needs."""

    def __init__(
        self,
        *,
        backend: TrainingBackend,
        s3_client: Any,
        work_dir: Path,
        region: str = "us-east-1",
        account: str = "123456789012",
        on_event: Event | None = None,
    ) -> None:
        self.backend = backend
        self.s3 = s3_client
        self.work_dir = work_dir
        self.region = region
        self.account = account
        self._progress = on_event or (lambda kind, data: None)
        #: Where SageMaker's own EventBridge events go (the local account sets it).
        self.on_aws_event: AwsEvent = lambda event: None
        self._changes_lock = threading.Lock()
        self._changes: queue.SimpleQueue[_Change] | None = None
        self._lock = threading.RLock()
        self._tuning: dict[str, dict[str, Any]] = {}
        self._training: dict[str, dict[str, Any]] = {}
        self._models: dict[str, dict[str, Any]] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self._endpoints: dict[str, Endpoint] = {}
        self._transforms: dict[str, dict[str, Any]] = {}
        self._tags: dict[str, list[dict[str, str]]] = {}
        self._faults: dict[str, tuple[str, int]] = {}
        self._threads: list[threading.Thread] = []
        self.calls: list[str] = []
        #: Check every request against botocore's model first (local.emulator.validation).
        self.validate_requests = True
        #: Check every response against botocore's output shape (tests turn it on).
        self.check_responses = os.environ.get("MNIST_LL_CHECK_RESPONSES") == "1"
        self.response_problems: list[tuple[str, list[str]]] = []
        #: CloudWatch Logs client for training logs (the local account sets it).
        self.logs: Any = None
        self.training_jobs = TrainingJobService(self)
        #: How long a deleted endpoint stays ``Deleting``.
        self.delete_seconds = 0.5
        #: Model Package Groups and versions (local/emulator/registry.py).
        self.registry = ModelRegistry(region=region, account=account, put_tags=self._put_tags)
        #: CloudWatch client for the guardrails' alarms (the local account sets it).
        self.cloudwatch: Any = None
        #: Asynchronous inference requests are scored a few at a time, queued
        #: beyond that, as an async endpoint queues them (local/emulator/async_inference.py).
        self.async_pool = ThreadPoolExecutor(
            max_workers=ASYNC_WORKERS, thread_name_prefix="async-inference"
        )
        #: Baking time after each traffic shift of a blue/green update.
        self.bake_seconds = 0.2
        #: Endpoint invocation metrics and logs (local/emulator/runtime_metrics.py).
        self.runtime = RuntimeMetrics(self)

    # -- helpers ----------------------------------------------------------------

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name.lower()}"

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        """Progress for the caller, and SageMaker's state-change event if it is one."""
        self._progress(kind, data)
        self.emit_state_change(kind, data)

    def emit_state_change(self, kind: str, data: dict[str, Any], *, now: bool = False) -> None:
        """Send the state-change event ``kind`` (a progress kind or the
        operation just answered, with its parameters) stands for, if any.
        ``now``: describe the resource at once (a request thread holds no
        lock); otherwise the sending thread describes it, as a tuning job's
        thread may hold the job's lock a Describe needs too. One thread sends
        them all, in order."""
        change = _STATE_CHANGES.get(kind)
        if change is None or not data.get(change[3]):
            return
        described = self._describe_change(change, data) if now else None
        if now and described is None:
            return
        with self._changes_lock:  # not self._lock: the caller may hold a tuning job's
            if self._changes is None:
                self._changes = queue.SimpleQueue()
                threading.Thread(
                    target=self._send_changes, name="sagemaker-events", daemon=True
                ).start()
            self._changes.put((change, dict(data), described))

    def _describe_change(
        self, change: tuple[str, str, str, str], data: dict[str, Any]
    ) -> dict[str, Any] | None:
        _detail_type, describe, key, where = change
        try:
            return self.call(describe, {key: data[where]})
        except (ServiceError, KeyError):
            return None  # gone already (a Deleting endpoint's last moment)

    def _send_changes(self) -> None:
        assert self._changes is not None
        while True:
            change, data, described = self._changes.get()
            try:
                if described is None:
                    described = self._describe_change(change, data)
                if described is not None:
                    self._send_change(change[0], described)
            except Exception:  # noqa: S112 - a broken listener must not stop the others
                continue

    def _send_change(self, detail_type: str, described: dict[str, Any]) -> None:
        with self._lock:
            tags = list(self._tags.get(described[aws_events.ARN_KEYS[detail_type]], []))
        self.on_aws_event(
            aws_events.state_change_event(
                detail_type, described, tags=tags, region=self.region, account=self.account
            )
        )

    def inject_fault(self, fault: str, reason: str = "injected fault", times: int = 1) -> None:
        """Make the next ``times`` matching operations fail. Faults:
        ``tuning_failed``, ``tuning_stopped``, ``tuning_no_best``,
        ``tuning_hang`` (stays InProgress until stopped),
        ``endpoint_create_failed``, ``endpoint_update_failed``,
        ``resource_limit:<Operation>``, ``throttle:<Operation>``,
        ``instance_unavailable:<Operation>`` (the ValidationException of a
        region that does not offer the instance type), ``transform_failed``,
        ``transform_hang``, ``container_error:<ModelName>`` (the model's
        container answers every invocation with a 500 while injected)."""
        with self._lock:
            self._faults[fault] = (reason, times)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, fault: str) -> str | None:
        with self._lock:
            entry = self._faults.get(fault)
            if entry is None:
                return None
            reason, times = entry
            if times <= 1:
                del self._faults[fault]
            else:
                self._faults[fault] = (reason, times - 1)
            return reason

    def _start(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Join background work (tuning, endpoint loads)."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def training_job_count(self) -> int:
        with self._lock:
            return len(self._training)

    def _put_tags(self, arn: str, tags: list[dict[str, str]] | None) -> None:
        with self._lock:
            existing = {t["Key"]: t for t in self._tags.get(arn, [])}
            for tag in tags or []:
                existing[tag["Key"]] = tag
            self._tags[arn] = list(existing.values())

    def _tuning_record(self, name: str) -> dict[str, Any]:
        with self._lock:
            record = self._tuning.get(name)
        if record is None:
            raise ServiceError(
                "ResourceNotFound",
                f"Amazon SageMaker can't find a tuning job called {name}. Type another name.",
            )
        return record

    def _running_training_job(self, name: str) -> dict[str, Any] | None:
        """A training job of a tuning job still running (describable, as on AWS)."""
        for tuning_name, tuning in self._tuning.items():
            job = tuning.get("job")
            if job is None or not name.startswith(tuning_name):
                continue
            try:
                summary = job.training_job(name)
            except KeyError:
                continue
            return {
                "summary": summary,
                "artifact": None,
                "tuning_job": tuning_name,
                "definition": tuning["request"]["TrainingJobDefinition"],
            }
        return None

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Another family's operation, as its ``op_`` handler answers it (no
        request checks: a family reads another's records this way)."""
        handler = getattr(self, f"op_{operation}")
        result: dict[str, Any] = handler(params)
        return result
