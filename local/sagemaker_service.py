"""A small local SageMaker: the control-plane operations the handlers use,
backed by the local Linear Learner, plus the runtime's InvokeEndpoint.

boto3 reaches it through ``AWS_ENDPOINT_URL_SAGEMAKER`` and
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``: the handlers make ordinary SageMaker
calls and never know they are local. The control plane speaks SageMaker's
JSON 1.1 protocol (``POST /`` with ``X-Amz-Target: SageMaker.<Operation>``);
the runtime is ``POST /endpoints/<name>/invocations`` served by the local
endpoint app from :mod:`training`.

Jobs and endpoints change state in background threads, like the real service:
a tuning job is ``InProgress`` while its training jobs run, an endpoint is
``Creating``/``Updating`` while its model loads. Faults can be injected for
tests with :meth:`LocalSageMaker.inject_fault`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from local.async_inference import ASYNC_WORKERS, invoke_endpoint_async
from local.channels import download_channel
from local.failure_reasons import reworded, with_reworded
from local.guardrails import cloudwatch_alarm_check, shift_traffic
from local.model_registry import ModelRegistry, RegistryError
from local.paging import listing, page
from local.training_backend import TrainingBackend
from local.training_jobs import (
    CloudWatchLogWriter,
    TrainingJobService,
    artifact_uri,
    described_definition,
    objective_metric,
    output_data_config,
    resource_config,
    with_metric_definitions,
)
from local.transform_jobs import TransformJobsMixin

Event = Callable[[str, dict[str, Any]], None]


class ServiceError(Exception):
    """An error in SageMaker's wire format (``__type`` + ``message``)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _now() -> float:
    return datetime.now(UTC).timestamp()


def _wire_value(value: Any) -> Any:
    """Timestamps go out as epoch seconds, as SageMaker's JSON protocol sends them."""
    if isinstance(value, datetime):
        return value.timestamp()
    return str(value)


#: TrainingJobStatus -> the SecondaryStatus a running/ended job shows.
_SECONDARY = {
    "InProgress": "Training",
    "Completed": "Completed",
    "Failed": "Failed",
    "Stopped": "Stopped",
}


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


def _split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ServiceError("ValidationException", f"not an s3 URI: {uri}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


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


@dataclass
class _Endpoint:
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


class LocalSageMaker(TransformJobsMixin):
    """In-memory SageMaker control plane for one local run (Batch Transform
    jobs: :mod:`local.transform_jobs`)."""

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
        self.on_event = on_event or (lambda kind, data: None)
        self._lock = threading.RLock()
        self._tuning: dict[str, dict[str, Any]] = {}
        self._training: dict[str, dict[str, Any]] = {}
        self._models: dict[str, dict[str, Any]] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self._endpoints: dict[str, _Endpoint] = {}
        self._tags: dict[str, list[dict[str, str]]] = {}
        self._faults: dict[str, tuple[str, int]] = {}
        self._threads: list[threading.Thread] = []
        self.calls: list[str] = []
        #: Check every request against botocore's model first (local.aws_validation).
        self.validate_requests = True
        #: Check every response against botocore's output shape (tests turn it on).
        self.check_responses = os.environ.get("MNIST_LL_CHECK_RESPONSES") == "1"
        self.response_problems: list[tuple[str, list[str]]] = []
        #: CloudWatch Logs client for training logs (the local account sets it).
        self.logs: Any = None
        self.training_jobs = TrainingJobService(self)
        #: How long a deleted endpoint stays ``Deleting``.
        self.delete_seconds = 0.5
        #: Model Package Groups and versions (local/model_registry.py).
        self.registry = ModelRegistry(region=region, account=account, put_tags=self._put_tags)
        #: CloudWatch client for the guardrails' alarms (the local account sets it).
        self.cloudwatch: Any = None
        #: Asynchronous inference requests are scored a few at a time, queued
        #: beyond that, as an async endpoint queues them (local/async_inference.py).
        self.async_pool = ThreadPoolExecutor(
            max_workers=ASYNC_WORKERS, thread_name_prefix="async-inference"
        )
        #: Baking time after each traffic shift of a blue/green update.
        self.bake_seconds = 0.2

    # -- helpers ----------------------------------------------------------------

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name.lower()}"

    def inject_fault(self, fault: str, reason: str = "injected fault", times: int = 1) -> None:
        """Make the next ``times`` matching operations fail. Faults:
        ``tuning_failed``, ``tuning_stopped``, ``tuning_no_best``,
        ``tuning_hang`` (stays InProgress until stopped),
        ``endpoint_create_failed``, ``endpoint_update_failed``,
        ``resource_limit:<Operation>``, ``throttle:<Operation>``,
        ``instance_unavailable:<Operation>`` (the ValidationException of a
        region that does not offer the instance type), ``transform_failed``,
        ``transform_hang``."""
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

    def shutdown(self, timeout: float = 15.0) -> None:
        """Stop every tuning job still running (their worker processes end
        with them) and wait for the background threads."""
        with self._lock:
            records = list(self._tuning.values())
        for record in records:
            if record.get("job") is not None and record["status"] in ("InProgress", "Stopping"):
                record["job"].stop()
            if record.get("hang") is not None:
                record["hang"].set()
        for standalone in list(self.training_jobs.jobs.values()):
            standalone["job"].stop()
        self.stop_all_transforms()
        self.async_pool.shutdown(wait=False, cancel_futures=True)
        self.wait_idle(timeout)

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Join background work (tuning, endpoint loads)."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def training_job_count(self) -> int:
        with self._lock:
            return len(self._training)

    def dispatch(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(operation)
        if self._take_fault(f"throttle:{operation}") is not None:
            raise ServiceError("ThrottlingException", "Rate exceeded")
        unavailable = self._take_fault(f"instance_unavailable:{operation}")
        if unavailable is not None:
            raise ServiceError("ValidationException", unavailable)
        limit = self._take_fault(f"resource_limit:{operation}")
        if limit is not None:
            raise ServiceError("ResourceLimitExceeded", limit)
        handler = (
            self._registry_operation(operation)
            if self.registry.handles(operation)
            else getattr(self, f"op_{operation}", None)
        )
        if handler is None:
            raise ServiceError(
                "UnknownOperationException", f"{operation} is not implemented locally"
            )
        if self.validate_requests:
            from local.aws_validation import validate_request

            validate_request(operation, params)
            from local.constraints import check  # documented rules (docs/SAGEMAKER_CONSTRAINTS.md)

            check(self, operation, params)
        result: dict[str, Any] = handler(params)
        if self.check_responses:
            from local.aws_validation import response_errors

            # Round-trip through the wire encoding first (timestamps as numbers).
            wire = json.loads(json.dumps(result, default=_wire_value))
            problems = response_errors(operation, wire)
            if problems:
                self.response_problems.append((operation, problems))
                print(
                    f"local SageMaker: {operation} response breaks its shape: {problems}",
                    file=sys.stderr,
                    flush=True,
                )
                raise ServiceError(
                    "InternalFailure", f"{operation} response breaks its shape: {problems}", 500
                )
        return result

    def _registry_operation(self, operation: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """A model-registry operation (local/model_registry.py) as an op_ handler."""

        def handler(params: dict[str, Any]) -> dict[str, Any]:
            try:
                return self.registry.dispatch(operation, params)
            except RegistryError as e:
                raise ServiceError(e.code, e.message) from e

        return handler

    def _put_tags(self, arn: str, tags: list[dict[str, str]] | None) -> None:
        with self._lock:
            existing = {t["Key"]: t for t in self._tags.get(arn, [])}
            for tag in tags or []:
                existing[tag["Key"]] = tag
            self._tags[arn] = list(existing.values())

    # -- tuning -----------------------------------------------------------------

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
                "created": _now(),
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
            bucket, prefix = _split_s3(output_uri.rstrip("/") + "/")
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
                    record["failure"] = job.describe().get(
                        "FailureReason", "all training jobs failed"
                    )
        except Exception as e:  # the job fails; the service stays up
            with self._lock:
                record["status"] = "Failed"
                record["failure"] = reworded(f"{type(e).__name__}: {e}")
        finally:
            record["ended"] = _now()
            self.on_event("tuning_done", {"tuning_job": name, "status": record["status"]})

    def _tuning_record(self, name: str) -> dict[str, Any]:
        with self._lock:
            record = self._tuning.get(name)
        if record is None:
            raise ServiceError(
                "ResourceNotFound", f"Amazon SageMaker can't find a tuning job with name {name}"
            )
        return record

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

    def op_CreateTrainingJob(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.training_jobs.create(p)

    def op_StopTrainingJob(self, p: dict[str, Any]) -> dict[str, Any]:
        if not self.training_jobs.has(p["TrainingJobName"]):
            raise ServiceError("ResourceNotFound", "Requested resource not found.")
        return self.training_jobs.stop(p["TrainingJobName"])

    def op_ListTrainingJobs(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.training_jobs.list(p)

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

    def op_DescribeTrainingJob(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["TrainingJobName"]
        if self.training_jobs.has(name):
            return self.training_jobs.describe(name)
        with self._lock:
            record = self._training.get(name) or self._running_training_job(name)
        if record is None:
            raise ServiceError("ResourceNotFound", "Requested resource not found.")
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
            "CreationTime": summary.get("CreationTime", _now()),
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
        if summary.get("FinalMetricDataList"):
            # Every metric the algorithm emitted, not only the objective.
            out["FinalMetricDataList"] = summary["FinalMetricDataList"]
        if summary.get("FailureReason"):
            out["FailureReason"] = reworded(summary["FailureReason"])
        return out

    # -- models and endpoint configs -----------------------------------------------

    def op_CreateModel(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["ModelName"]
        arn = self.arn("model", name)
        with self._lock:
            if name in self._models:
                raise ServiceError(
                    "ValidationException",
                    f'Cannot create already existing model "{arn}".',
                )
            self._models[name] = {"request": p, "arn": arn, "created": _now()}
        self._put_tags(arn, p.get("Tags"))
        return {"ModelArn": arn}

    def op_DescribeModel(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["ModelName"]
        with self._lock:
            model = self._models.get(name)
        if model is None:
            raise ServiceError(
                "ValidationException", f'Could not find model "{self.arn("model", name)}".'
            )
        req = model["request"]
        return {
            "ModelName": name,
            "ModelArn": model["arn"],
            "PrimaryContainer": req.get("PrimaryContainer", {}),
            "ExecutionRoleArn": req.get("ExecutionRoleArn", ""),
            "EnableNetworkIsolation": req.get("EnableNetworkIsolation", False),
            "CreationTime": model["created"],
        }

    def op_DeleteModel(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["ModelName"]
        with self._lock:
            if self._models.pop(name, None) is None:
                raise ServiceError(
                    "ValidationException", f'Could not find model "{self.arn("model", name)}".'
                )
        return {}

    def op_ListModels(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            items = [
                {"ModelName": n, "ModelArn": m["arn"], "CreationTime": m["created"]}
                for n, m in self._models.items()
            ]
        return listing("Models", *page(items, p, name_key="ModelName"))

    def op_CreateEndpointConfig(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointConfigName"]
        arn = self.arn("endpoint-config", name)
        with self._lock:
            if name in self._configs:
                raise ServiceError(
                    "ValidationException",
                    f'Cannot create already existing endpoint configuration "{arn}".',
                )
            for variant in p["ProductionVariants"]:
                if variant["ModelName"] not in self._models:
                    raise ServiceError(
                        "ValidationException",
                        f'Could not find model "{self.arn("model", variant["ModelName"])}".',
                    )
            self._configs[name] = {"request": p, "arn": arn, "created": _now()}
        self._put_tags(arn, p.get("Tags"))
        return {"EndpointConfigArn": arn}

    def op_DescribeEndpointConfig(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointConfigName"]
        with self._lock:
            config = self._configs.get(name)
        if config is None:
            raise ServiceError(
                "ValidationException",
                f'Could not find endpoint configuration "{self.arn("endpoint-config", name)}".',
            )
        out = {
            "EndpointConfigName": name,
            "EndpointConfigArn": config["arn"],
            "ProductionVariants": config["request"]["ProductionVariants"],
            "CreationTime": config["created"],
        }
        # The optional parts of the request, as DescribeEndpointConfig shows them.
        for key in ("AsyncInferenceConfig", "DataCaptureConfig", "KmsKeyId"):
            if config["request"].get(key):
                out[key] = config["request"][key]
        return out

    def op_DeleteEndpointConfig(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointConfigName"]
        with self._lock:
            if self._configs.pop(name, None) is None:
                raise ServiceError(
                    "ValidationException",
                    f'Could not find endpoint configuration "{self.arn("endpoint-config", name)}".',
                )
        return {}

    def op_ListEndpointConfigs(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            items = [
                {
                    "EndpointConfigName": n,
                    "EndpointConfigArn": c["arn"],
                    "CreationTime": c["created"],
                }
                for n, c in self._configs.items()
            ]
        return listing("EndpointConfigs", *page(items, p, name_key="EndpointConfigName"))

    # -- endpoints ------------------------------------------------------------------

    def _model_artifact_for_config(self, config_name: str) -> str:
        with self._lock:
            config = self._configs.get(config_name)
            if config is None:
                raise ServiceError(
                    "ValidationException",
                    "Could not find endpoint configuration "
                    f'"{self.arn("endpoint-config", config_name)}".',
                )
            model_name = config["request"]["ProductionVariants"][0]["ModelName"]
            model = self._models.get(model_name)
        if model is None:
            raise RuntimeError(f"model {model_name} no longer exists")
        url: str = model["request"]["PrimaryContainer"]["ModelDataUrl"]
        return url

    def _load_into(self, endpoint: _Endpoint, config_name: str, updating: bool) -> None:
        fault_key = "endpoint_update_failed" if updating else "endpoint_create_failed"
        try:
            fault = self._take_fault(fault_key)
            if fault is not None:
                raise RuntimeError(fault)
            url = self._model_artifact_for_config(config_name)
            bucket, key = _split_s3(url)
            dest = self.work_dir / "models" / f"{endpoint.name}-{config_name}"
            dest.mkdir(parents=True, exist_ok=True)
            artifact = dest / "model.tar.gz"
            self.s3.download_file(bucket, key, str(artifact))
            with tarfile.open(artifact):  # must be a readable archive
                pass
            if updating and endpoint.deployment_config is not None:
                fired = self._guard_update(endpoint)
                if fired is not None:
                    self._roll_back(endpoint, config_name, fired)
                    return
            self.backend.load_endpoint_model(endpoint.name, artifact)
            with self._lock:
                request = self._configs.get(config_name, {}).get("request", {})
                endpoint.async_config = request.get("AsyncInferenceConfig")
                endpoint.config_name = config_name
                endpoint.status = "InService"
                endpoint.failure_reason = None
                endpoint.pending_config = None
                endpoint.modified = _now()
        except Exception as e:
            with self._lock:
                reason = f"{type(e).__name__}: {e}"
                endpoint.failure_reason = reason
                endpoint.pending_config = None
                endpoint.modified = _now()
                # A failed update rolls back: the old config keeps serving.
                endpoint.status = "InService" if updating else "Failed"
        self.on_event("endpoint", {"endpoint": endpoint.name, "status": endpoint.status})

    def _guard_update(self, endpoint: _Endpoint) -> str | None:
        """Shift traffic by the DeploymentConfig; the alarm that fired, or None."""

        def quiet(_names: list[str]) -> list[str]:
            return []  # no CloudWatch: nothing can fire

        check = quiet if self.cloudwatch is None else cloudwatch_alarm_check(self.cloudwatch)

        def step(percent: int) -> None:
            with self._lock:
                endpoint.traffic_percent = percent

        with self._lock:
            config = self._configs.get(endpoint.pending_config or "") or {}
        variants = (config.get("request") or {}).get("ProductionVariants") or [{}]
        return shift_traffic(
            endpoint.deployment_config,
            alarms_in_alarm=check,
            bake_seconds=self.bake_seconds,
            on_step=step,
            instances=int(variants[0].get("InitialInstanceCount") or 1),
        )

    def _roll_back(self, endpoint: _Endpoint, config_name: str, alarm: str) -> None:
        """As SageMaker: RollingBack, then InService on the old config."""
        with self._lock:
            endpoint.status = "RollingBack"
            endpoint.modified = _now()
        time.sleep(min(self.bake_seconds, 0.2))
        with self._lock:
            endpoint.status = "InService"
            endpoint.pending_config = None
            endpoint.traffic_percent = None
            endpoint.failure_reason = (
                f"Deployment of {config_name} was rolled back: alarm {alarm} is in ALARM; "
                f"{endpoint.config_name} still serves"
            )
            endpoint.modified = _now()
        self.on_event("endpoint", {"endpoint": endpoint.name, "status": "RolledBack"})

    def op_CreateEndpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointName"]
        arn = self.arn("endpoint", name)
        with self._lock:
            if name in self._endpoints:
                raise ServiceError(
                    "ValidationException", f'Cannot create already existing endpoint "{arn}".'
                )
            if p["EndpointConfigName"] not in self._configs:
                raise ServiceError(
                    "ValidationException",
                    "Could not find endpoint configuration "
                    f'"{self.arn("endpoint-config", p["EndpointConfigName"])}".',
                )
            endpoint = _Endpoint(
                name=name,
                arn=arn,
                config_name=p["EndpointConfigName"],
                status="Creating",
                created=_now(),
                modified=_now(),
            )
            self._endpoints[name] = endpoint
        self._put_tags(arn, p.get("Tags"))
        self._start(lambda: self._load_into(endpoint, p["EndpointConfigName"], False), f"ep-{name}")
        return {"EndpointArn": arn}

    def async_config(self, endpoint_name: str) -> dict[str, Any] | None:
        """The ``AsyncInferenceConfig`` of an in-service endpoint (``None``: it
        has none). :class:`LookupError` when there is no endpoint in service."""
        with self._lock:
            endpoint = self._endpoints.get(endpoint_name)
            if endpoint is None or endpoint.status not in ("InService", "Updating"):
                raise LookupError(endpoint_name)
            return dict(endpoint.async_config) if endpoint.async_config else None

    def _endpoint(self, name: str) -> _Endpoint:
        with self._lock:
            endpoint = self._endpoints.get(name)
        if endpoint is None:
            raise ServiceError(
                "ValidationException", f'Could not find endpoint "{self.arn("endpoint", name)}".'
            )
        return endpoint

    def op_UpdateEndpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(p["EndpointName"])
        with self._lock:
            if endpoint.status != "InService":
                raise ServiceError(
                    "ValidationException",
                    f'Cannot update in-progress endpoint "{endpoint.arn}".'
                    if endpoint.status != "Failed"
                    else f'Cannot update failed endpoint "{endpoint.arn}".',
                )
            if p["EndpointConfigName"] not in self._configs:
                raise ServiceError(
                    "ValidationException",
                    "Could not find endpoint configuration "
                    f'"{self.arn("endpoint-config", p["EndpointConfigName"])}".',
                )
            if p["EndpointConfigName"] == endpoint.config_name:
                raise ServiceError(
                    "ValidationException",
                    "Cannot update endpoint with the same endpoint configuration "
                    f'"{endpoint.config_name}" it is using.',
                )
            endpoint.status = "Updating"
            endpoint.pending_config = p["EndpointConfigName"]
            endpoint.deployment_config = p.get("DeploymentConfig")
            endpoint.traffic_percent = None
            endpoint.modified = _now()
        self._start(
            lambda: self._load_into(endpoint, p["EndpointConfigName"], True), f"ep-{endpoint.name}"
        )
        return {"EndpointArn": endpoint.arn}

    def op_DescribeEndpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(p["EndpointName"])
        with self._lock:
            out: dict[str, Any] = {
                "EndpointName": endpoint.name,
                "EndpointArn": endpoint.arn,
                "EndpointConfigName": endpoint.config_name,
                "EndpointStatus": endpoint.status,
                "CreationTime": endpoint.created,
                "LastModifiedTime": endpoint.modified,
            }
            variants = self._variant_summaries(endpoint)
            if variants:
                out["ProductionVariants"] = variants
            if endpoint.failure_reason:
                out["FailureReason"] = endpoint.failure_reason
            if endpoint.async_config:
                out["AsyncInferenceConfig"] = endpoint.async_config
            if endpoint.deployment_config is not None:
                out["LastDeploymentConfig"] = endpoint.deployment_config
            if endpoint.pending_config is not None:
                # As SageMaker reports an update in progress.
                out["PendingDeploymentSummary"] = {
                    "EndpointConfigName": endpoint.pending_config,
                    "StartTime": endpoint.modified,
                }
        return out

    def _variant_summaries(self, endpoint: _Endpoint) -> list[dict[str, Any]]:
        """DescribeEndpoint's ``ProductionVariants`` once the config serves."""
        if endpoint.status not in ("InService", "Updating", "SystemUpdating", "RollingBack"):
            return []
        config = self._configs.get(endpoint.config_name)
        if config is None:
            return []
        out = []
        for variant in config["request"]["ProductionVariants"]:
            model = self._models.get(variant["ModelName"], {}).get("request", {})
            image = (model.get("PrimaryContainer") or {}).get("Image")
            summary: dict[str, Any] = {
                "VariantName": variant["VariantName"],
                "CurrentWeight": float(variant.get("InitialVariantWeight", 1.0)),
                "DesiredWeight": float(variant.get("InitialVariantWeight", 1.0)),
            }
            serverless = variant.get("ServerlessConfig")
            if serverless:
                # A serverless variant has no instances: AWS shows its config instead.
                summary["CurrentServerlessConfig"] = dict(serverless)
                summary["DesiredServerlessConfig"] = dict(serverless)
            else:
                count = variant.get("InitialInstanceCount", 1)
                summary["CurrentInstanceCount"] = count
                summary["DesiredInstanceCount"] = count
            if image:
                summary["DeployedImages"] = [
                    {
                        "SpecifiedImage": image,
                        "ResolvedImage": image,
                        "ResolutionTime": endpoint.modified,
                    }
                ]
            out.append(summary)
        return out

    def op_DeleteEndpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointName"]
        with self._lock:
            endpoint = self._endpoints.get(name)
            if endpoint is None:
                raise ServiceError(
                    "ValidationException",
                    f'Could not find endpoint "{self.arn("endpoint", name)}".',
                )
            # Like SageMaker: Deleting for a moment, then gone.
            endpoint.status = "Deleting"
            endpoint.modified = _now()
        self.backend.unload_endpoint_model(name)

        def finish() -> None:
            time.sleep(self.delete_seconds)
            with self._lock:
                if self._endpoints.get(name) is endpoint:
                    del self._endpoints[name]

        self._start(finish, f"delete-{name}")
        return {}

    def op_ListEndpoints(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            items = [
                {
                    "EndpointName": e.name,
                    "EndpointArn": e.arn,
                    "EndpointStatus": e.status,
                    "CreationTime": e.created,
                    "LastModifiedTime": e.modified,
                }
                for e in self._endpoints.values()
            ]
        chunk, token = page(items, p, name_key="EndpointName", status_key="EndpointStatus")
        return listing("Endpoints", chunk, token)

    # -- tags -----------------------------------------------------------------------

    def op_AddTags(self, p: dict[str, Any]) -> dict[str, Any]:
        self._put_tags(p["ResourceArn"], p["Tags"])
        return {"Tags": p["Tags"]}

    def op_ListTags(self, p: dict[str, Any]) -> dict[str, Any]:
        # A registered version answers its group's tags (it cannot have its own).
        arn = self.registry.tag_owner(p["ResourceArn"])
        with self._lock:
            return {"Tags": list(self._tags.get(arn, []))}

    # -- search ---------------------------------------------------------------------

    def op_Search(self, p: dict[str, Any]) -> dict[str, Any]:
        """Search over training and tuning jobs, the model registry and
        endpoints (local/search.py)."""
        from local.search import search

        return search(self, p)

    # -- the HTTP app ---------------------------------------------------------------

    def app(self) -> Starlette:
        async def control(request: Request) -> Response:
            target = request.headers.get("x-amz-target", "")
            service, _, operation = target.partition(".")
            if service != "SageMaker" or not operation:
                return JSONResponse(
                    {"__type": "UnknownOperationException", "message": f"bad target {target!r}"},
                    status_code=400,
                )
            try:
                params = json.loads(await request.body() or b"{}")
                result = self.dispatch(operation, params)
            except ServiceError as e:
                return JSONResponse(
                    {"__type": e.code, "message": e.message},
                    status_code=e.status,
                    media_type="application/x-amz-json-1.1",
                )
            except (KeyError, TypeError, ValueError) as e:
                return JSONResponse(
                    {"__type": "ValidationException", "message": f"{type(e).__name__}: {e}"},
                    status_code=400,
                    media_type="application/x-amz-json-1.1",
                )
            return Response(
                json.dumps(result, default=_wire_value), media_type="application/x-amz-json-1.1"
            )

        async def invoke_async(request: Request) -> Response:
            return await invoke_endpoint_async(self, request)

        return Starlette(
            routes=[
                Route("/", control, methods=["POST"]),
                Route("/endpoints/{name}/async-invocations", invoke_async, methods=["POST"]),
                Mount("/", app=self.backend.runtime_app()),
            ]
        )
