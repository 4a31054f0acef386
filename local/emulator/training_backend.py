"""The seam between the local SageMaker service and the local Linear Learner.

:class:`TrainingBackend` is what :mod:`local.emulator.service` needs: start a
tuning job, load/unload a model behind an endpoint name, and the runtime ASGI
app. :class:`LinearLearnerBackend` implements it with :mod:`training`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol


class TuningJobHandle(Protocol):
    def run(self) -> object: ...
    def describe(self) -> dict[str, Any]: ...
    def training_jobs(self) -> list[dict[str, Any]]: ...
    def training_job(self, name: str) -> dict[str, Any]: ...
    def stop(self) -> None: ...


class TrainingBackend(Protocol):
    def start_tuning(
        self,
        *,
        request: dict[str, Any],
        channels: dict[str, Path],
        output_dir: Path,
        on_event: Callable[[str, dict[str, Any]], None],
    ) -> TuningJobHandle: ...

    def load_endpoint_model(
        self, endpoint_name: str, artifact: Path, max_body_bytes: int | None = None
    ) -> None: ...

    def unload_endpoint_model(self, endpoint_name: str) -> None: ...

    def runtime_app(self) -> Any: ...

    def invoke_endpoint(
        self, endpoint_name: str, body: bytes, content_type: str | None, accept: str | None
    ) -> tuple[bytes, str]: ...
