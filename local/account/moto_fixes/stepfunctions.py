"""moto 5.2.5's stepfunctions service, corrected where AWS answers differently."""

from __future__ import annotations

from typing import Any

_INSTALLED = False


def _send_task_failure_with_cause() -> None:
    """SendTaskFailure keeps its ``cause``.

    moto 5.2.5's ``StepFunctionResponse.send_task_failure`` reads only
    ``taskToken`` and ``error`` and drops ``cause``, so the waiting task fails
    with ``Cause`` unset and a Catch's ``$.error.Cause`` (hence the Fail
    state's cause) is empty. AWS hands the cause on: "cause: A more detailed
    explanation of the cause of the failure" (SendTaskFailure). The ASL
    interpreter's backend already takes ``cause``; only the response layer
    (and the plain backend's signature) lose it.
    """
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.models import StepFunctionBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self: Any) -> Any:
        task_token = self._get_param("taskToken")
        error = self._get_param("error")
        cause = self._get_param("cause")
        self.stepfunction_backend.send_task_failure(task_token, error=error, cause=cause)
        return EmptyResult()

    def backend_send_task_failure(
        self: Any, task_token: str, error: str | None = None, cause: str | None = None
    ) -> None:
        return None  # without the ASL interpreter no task waits on a token

    StepFunctionResponse.send_task_failure = send_task_failure  # type: ignore[method-assign]
    StepFunctionBackend.send_task_failure = backend_send_task_failure  # type: ignore[method-assign]


def install() -> None:
    """Apply this module's fixes (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    _send_task_failure_with_cause()
    _INSTALLED = True
