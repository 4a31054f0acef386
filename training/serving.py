"""The local SageMaker endpoint: a Starlette app served by uvicorn.

Routes (the Linear Learner container contract plus the runtime API path):

- ``GET /ping``: health check, always 200 while the server runs;
- ``POST /invocations``: the container path, answered by the default model;
- ``POST /endpoints/{name}/invocations``: what boto3's ``sagemaker-runtime``
  ``invoke_endpoint`` calls when pointed here with ``endpoint_url``.

One app hosts many endpoints through a :class:`ModelRegistry`, which the
local SageMaker stand-in updates at runtime (register / replace / remove by
endpoint name, thread-safe, so a blue/green update is one atomic swap). The
CLI hosts a single model as the registry's default: it answers
``/invocations`` and every endpoint name.

Errors are JSON ``{"message": ...}`` with the ``x-amzn-ErrorType`` header
botocore reads, so boto3 raises a ``ClientError`` carrying the message.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from training.errors import PayloadError
from training.model import LinearModel
from training.payloads import choose_accept, parse_features, render

log = logging.getLogger("training.serving")

MAX_BODY_BYTES = 6 * 1024 * 1024
#: A serverless endpoint takes at most 4 MB per request (Developer Guide,
#: "Invoke a serverless endpoint": "The maximum request and response payload
#: size for serverless invocations is 4 MB").
SERVERLESS_MAX_BODY_BYTES = 4 * 1024 * 1024
#: Bodies above this are parsed in a worker thread so the event loop stays free.
#: A 100-row MNIST batch (~300 KB) parses in ~1-2 ms: inline is faster than a
#: thread hop, which also fights the event loop for the GIL.
_OFFLOAD_BYTES = 1024 * 1024


class ModelRegistry:
    """Endpoint name -> model, plus an optional default model. Thread-safe."""

    def __init__(self, default: LinearModel | None = None) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, LinearModel] = {}
        self._limits: dict[str, int] = {}
        self._default = default

    def register(self, name: str, model: LinearModel, max_body_bytes: int | None = None) -> None:
        """Add or atomically replace the model behind endpoint ``name``;
        ``max_body_bytes`` is that endpoint's own request limit (a serverless
        endpoint's), below the server's."""
        if not isinstance(model, LinearModel):
            raise TypeError("model must be a LinearModel")
        with self._lock:
            self._models[name] = model
            if max_body_bytes is None:
                self._limits.pop(name, None)
            else:
                self._limits[name] = max_body_bytes

    def remove(self, name: str) -> bool:
        """Remove endpoint ``name``; ``False`` if it was not registered."""
        with self._lock:
            self._limits.pop(name, None)
            return self._models.pop(name, None) is not None

    def max_body_bytes(self, name: str, default: int) -> int:
        """Endpoint ``name``'s request limit: its own, or ``default``."""
        with self._lock:
            return min(self._limits.get(name, default), default)

    def set_default(self, model: LinearModel | None) -> None:
        with self._lock:
            self._default = model

    @property
    def default(self) -> LinearModel | None:
        return self._default

    def get(self, name: str | None) -> LinearModel | None:
        """The model for endpoint ``name`` (``None``: the default model); an
        unknown name falls back to the default model, if there is one."""
        with self._lock:
            if name is not None and name in self._models:
                return self._models[name]
            return self._default

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)


def invoke(
    model: LinearModel, body: bytes, content_type: str | None, accept: str | None
) -> tuple[bytes, str]:
    """Parse, predict and render one request: ``(response body, media type)``.
    Raises :class:`PayloadError` (with its HTTP status) for bad requests."""
    kind = choose_accept(accept)
    features = parse_features(body, content_type, model.feature_dim)
    scores, labels = model.predict(features)
    return render(scores, labels, kind), kind


def _error(status: int, message: str, kind: str | None = None) -> JSONResponse:
    error_type = kind or ("ValidationError" if status in (404, 413) else "ModelError")
    return JSONResponse(
        {"message": message, "error": error_type},
        status_code=status,
        headers={"x-amzn-ErrorType": error_type},
    )


async def _read_body(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        # Past the limit the rest is read and dropped: answering before the
        # client has sent its body makes the client see a reset connection
        # instead of the 413.
    if size > limit:
        raise PayloadError(f"request body is larger than {limit} bytes", 413)
    return b"".join(chunks)


def _model_error(endpoint: str, account: str, region: str, error: PayloadError) -> JSONResponse:
    """A container's 4xx/5xx as the runtime API relays it: HTTP 424
    ``ModelError`` with ``OriginalStatusCode`` and ``OriginalMessage``."""
    original = json.dumps({"message": str(error), "error": "ModelError"})
    group = f"/aws/sagemaker/Endpoints/{endpoint}"
    kind = "client" if error.status < 500 else "server"
    message = (
        f"Received {kind} error ({error.status}) from primary with message "
        f'"{error}". See https://{region}.console.aws.amazon.com/cloudwatch/home?'
        f"region={region}#logEventViewer:group={group} in account {account} "
        "for more information."
    )
    return JSONResponse(
        {
            "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
            "LogStreamArn": f"arn:aws:logs:{region}:{account}:log-group:{group}",
            "Message": message,
            "message": message,
            "OriginalMessage": original,
            "OriginalStatusCode": error.status,
        },
        status_code=424,
        headers={"x-amzn-ErrorType": "ModelError"},
    )


def create_app(
    registry: ModelRegistry,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    account: str = "000000000000",
    region: str = "us-east-1",
) -> Starlette:
    """The ASGI app serving ``registry``."""

    async def ping(request: Request) -> Response:
        return JSONResponse({"status": "healthy", "endpoints": registry.names()})

    async def answer(request: Request, model: LinearModel, endpoint: str | None = None) -> Response:
        limit = (
            max_body_bytes
            if endpoint is None
            else registry.max_body_bytes(endpoint, max_body_bytes)
        )
        try:
            body = await _read_body(request, limit)
        except PayloadError as e:
            return _error(e.status, str(e))
        try:
            args = (model, body, request.headers.get("content-type"), request.headers.get("accept"))
            if len(body) > _OFFLOAD_BYTES:
                content, kind = await run_in_threadpool(invoke, *args)
            else:
                content, kind = invoke(*args)
        except PayloadError as e:
            if endpoint is not None:  # through the runtime API, as AWS relays it
                return _model_error(endpoint, account, region, e)
            return _error(e.status, str(e))
        return Response(
            content,
            media_type=kind,
            headers={"x-Amzn-Invoked-Production-Variant": "AllTraffic"},
        )

    async def invocations(request: Request) -> Response:
        model = registry.get(None)
        if model is None:
            return _error(503, "no model is loaded on this server", "ServiceUnavailable")
        return await answer(request, model)

    async def endpoint_invocations(request: Request) -> Response:
        name = request.path_params["name"]
        model = registry.get(name)
        if model is None:
            try:
                await _read_body(request, max_body_bytes)
            except PayloadError as e:  # too large: that is answered first
                return _error(e.status, str(e))
            return _error(
                400, f"Endpoint {name} of account {account} not found.", "ValidationError"
            )
        return await answer(request, model, name)

    return Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/endpoints/{name}/invocations", endpoint_invocations, methods=["POST"]),
        ]
    )


class BackgroundServer:
    """uvicorn serving an app from a daemon thread (tests, the local stand-in).
    ``port=0`` picks a free port; read it from :attr:`port` after start."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.host = host
        self.port = port

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        sockets = [s for server in self.server.servers for s in server.sockets]
        self.port = int(sockets[0].getsockname()[1])
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _keep_freed_memory() -> None:
    """glibc hands the heap that a request freed back to the OS and page-faults it
    in again on the next one: ~600 faults, a third of the time, per 100-row
    CSV batch. The CLI server owns its process, so it keeps freed memory."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 * 1024 * 1024)  # glibc's maximum
    mallopt(m_trim_threshold, 256 * 1024 * 1024)


def serve(
    model_path: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Load ``model.tar.gz`` and serve it until interrupted (the CLI)."""
    model = LinearModel.load(model_path)
    _keep_freed_memory()
    app = create_app(ModelRegistry(default=model))
    config = uvicorn.Config(app, host=host, port=port, log_level="info", access_log=False)
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready(f"http://{host}:{port}")
    asyncio.run(server.serve())
