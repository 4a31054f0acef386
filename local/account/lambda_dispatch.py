"""Run the state machine's Lambda tasks in-process, on the real handlers.

moto's ASL interpreter invokes Lambda through moto's Lambda service. With
``use_docker=False`` that service only echoes the payload, so we replace its
``invoke`` with a dispatcher: the function ARN picks the handler module and
the environment variables that the synthesized template gives that function.
A raised exception becomes an ``Unhandled`` function error whose
``errorType`` is the exception's class name, exactly what Step Functions
matches ``Catch`` and ``Retry`` on.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local.account.services import patched_environ

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class LambdaFunction:
    """One function of the synthesized stack."""

    logical_id: str
    handler: str  # "lambdas.convert.handler"
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: int = 900
    memory_mb: int = 1024


@dataclass
class Invocation:
    function: str
    started: float
    seconds: float
    error: str | None


class FakeContext:
    """The parts of the Lambda context object powertools and our handlers use."""

    def __init__(self, fn: LambdaFunction, arn: str, deadline: float) -> None:
        self.function_name = fn.logical_id
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = fn.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{fn.logical_id}"
        self.log_stream_name = "local"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _resolve(handler: str) -> Handler:
    module_name, _, attr = handler.rpartition(".")
    module = importlib.import_module(module_name)
    fn: Handler = getattr(module, attr)
    return fn


class LambdaDispatcher:
    """Maps function ARNs (or names) to handlers and runs them."""

    def __init__(self, functions: Mapping[str, LambdaFunction]) -> None:
        # Keyed by ARN; also reachable by the name at the end of the ARN.
        self.functions = dict(functions)
        self._by_name = {arn.rsplit(":", 1)[-1]: fn for arn, fn in functions.items()}
        self._lock = threading.Lock()
        self.invocations: list[Invocation] = []
        self.fault_hooks: dict[str, Callable[[dict[str, Any]], None]] = {}

    def lookup(self, function_name: str) -> tuple[str, LambdaFunction]:
        name = function_name
        if name.startswith("arn:"):
            parts = name.split(":")
            name = parts[6] if len(parts) > 6 else parts[-1]
        fn = self.functions.get(function_name) or self._by_name.get(name)
        if fn is None:
            raise KeyError(f"no Lambda function {function_name!r} in the synthesized stack")
        return function_name, fn

    def invoke(self, function_name: str, payload: bytes | str | None) -> tuple[bytes, bool]:
        """Run the handler; returns (response payload, is_function_error)."""
        arn, fn = self.lookup(function_name)
        event = json.loads(payload or b"{}")
        started = time.monotonic()
        error: str | None = None
        body = b""
        hook = self.fault_hooks.get(fn.handler)
        try:
            # Outside the lock: a hook may hold one execution back while the
            # others go on (e.g. to make two deploys to one endpoint overlap).
            if hook is not None:
                hook(event)
            with self._lock, patched_environ(fn.environment):
                result = _resolve(fn.handler)(
                    event, FakeContext(fn, arn, started + fn.timeout_seconds)
                )
                body = json.dumps(result, default=str).encode()
        except Exception as e:  # reported to Step Functions, as Lambda does
            error = type(e).__name__
            body = json.dumps(
                {
                    "errorType": error,
                    "errorMessage": str(e),
                    "stackTrace": traceback.format_exception(e)[-6:],
                }
            ).encode()
        self.invocations.append(Invocation(fn.handler, started, time.monotonic() - started, error))
        return body, error is not None

    def install(self) -> Callable[[], None]:
        """Patch moto's docker-less Lambda backend; returns an undo function."""
        from moto.awslambda_simple.models import LambdaSimpleBackend

        original = LambdaSimpleBackend.invoke
        dispatcher = self

        def invoke(
            backend: Any,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> bytes:
            payload, failed = dispatcher.invoke(function_name, body)
            if failed:
                response_headers["x-amz-function-error"] = "Unhandled"
            return payload

        LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign,assignment]

        def undo() -> None:
            LambdaSimpleBackend.invoke = original  # type: ignore[method-assign]

        return undo
