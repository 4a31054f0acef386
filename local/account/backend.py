"""The local Linear Learner behind the local SageMaker service."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from local.account.services import ACCOUNT, REGION
from training.model import LinearModel
from training.serving import ModelRegistry, create_app, invoke
from training.tuner import TuningJob


class LinearLearnerBackend:
    """Tuning jobs as :class:`training.tuner.TuningJob`; endpoints as models
    in one :class:`training.serving.ModelRegistry` served by one app."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.registry = ModelRegistry()
        self._app = create_app(self.registry, account=ACCOUNT)

    def start_tuning(
        self,
        *,
        request: dict[str, Any],
        channels: dict[str, Path],
        output_dir: Path,
        on_event: Callable[[str, dict[str, Any]], None],
    ) -> TuningJob:
        jobs: list[TuningJob] = []

        def forward(event: dict[str, Any]) -> None:
            kind = event.get("type", "")
            if kind in ("TrainingJobCompleted", "TrainingJobFailed", "TrainingJobStopped"):
                summary = jobs[0].training_job(event["TrainingJobName"]) if jobs else event
                on_event("training_job_done", _job_event(summary))

        job = TuningJob(request, channels, output_dir, forward, region=REGION, account=ACCOUNT)
        jobs.append(job)
        return job

    def load_endpoint_model(
        self, endpoint_name: str, artifact: Path, max_body_bytes: int | None = None
    ) -> None:
        # Load (and validate) fully before swapping: a bad artifact never
        # replaces the model that is serving.
        model = LinearModel.load(artifact)
        self.registry.register(endpoint_name, model, max_body_bytes)

    def unload_endpoint_model(self, endpoint_name: str) -> None:
        self.registry.remove(endpoint_name)

    def runtime_app(self) -> Starlette:
        return self._app

    def invoke_endpoint(
        self, endpoint_name: str, body: bytes, content_type: str | None, accept: str | None
    ) -> tuple[bytes, str]:
        """One request scored as the runtime scores it (asynchronous inference)."""
        model = self.registry.get(endpoint_name)
        if model is None:
            raise LookupError(f"endpoint {endpoint_name} has no model loaded")
        return invoke(model, body, content_type, accept)


def _job_event(summary: dict[str, Any]) -> dict[str, Any]:
    metric = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    return {
        "name": summary.get("TrainingJobName"),
        "status": summary.get("TrainingJobStatus", "?"),
        "tuned_hyperparameters": summary.get("TunedHyperParameters") or {},
        "objective": metric.get("Value"),
        "metric_name": metric.get("MetricName"),
        "failure_reason": summary.get("FailureReason"),
    }
