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
import sys
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from local.emulator.async_inference import invoke_endpoint_async
from local.emulator.constraints import check
from local.emulator.endpoints import EndpointsMixin
from local.emulator.errors import ServiceError
from local.emulator.registry import RegistryError
from local.emulator.search import search
from local.emulator.training_ops import TrainingOpsMixin
from local.emulator.transform_jobs import TransformJobsMixin
from local.emulator.tuning import TuningMixin
from local.emulator.validation import response_errors, validate_request
from local.emulator.wire import wire_value


class LocalSageMaker(TuningMixin, TrainingOpsMixin, EndpointsMixin, TransformJobsMixin):
    """In-memory SageMaker control plane for one local run: the resource
    families of this package behind SageMaker's JSON 1.1 protocol."""

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
        self.runtime.close()

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
            validate_request(operation, params)
            check(self, operation, params)  # documented rules (docs/SAGEMAKER_CONSTRAINTS.md)
        result: dict[str, Any] = handler(params)
        self.emit_state_change(operation, params, now=True)  # Creating, Stopping...
        if self.check_responses:
            # Round-trip through the wire encoding first (timestamps as numbers).
            wire = json.loads(json.dumps(result, default=wire_value))
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
        """A model-registry operation (local/emulator/registry.py) as an op_ handler."""

        def handler(params: dict[str, Any]) -> dict[str, Any]:
            try:
                return self.registry.dispatch(operation, params)
            except RegistryError as e:
                raise ServiceError(e.code, e.message) from e

        return handler

    # -- tags -----------------------------------------------------------------------

    def op_AddTags(self, p: dict[str, Any]) -> dict[str, Any]:
        self._put_tags(p["ResourceArn"], p["Tags"])
        return {"Tags": p["Tags"]}

    def op_DeleteTags(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = p["ResourceArn"]
        if not self._known_arn(arn):
            # AWS answers a ValidationException for the tags of a resource that does not exist.
            raise ServiceError("ValidationException", f"Resource {arn} does not exist.")
        keys = set(p["TagKeys"])
        with self._lock:
            if arn in self._tags:
                self._tags[arn] = [t for t in self._tags[arn] if t["Key"] not in keys]
        return {}

    def _known_arn(self, arn: str) -> bool:
        """Whether ``arn`` names a resource of this SageMaker."""
        with self._lock:
            records = (*self._tuning.values(), *self._models.values(), *self._configs.values())
            arns = {str(r["arn"]) for r in (*records, *self._transforms.values())}
            arns |= {e.arn for e in self._endpoints.values()}
            jobs = (*self._training, *self.training_jobs.jobs)
            arns |= {self.arn("training-job", n) for n in jobs}
        return arn.lower() in {a.lower() for a in arns} or self.registry.owns(arn)

    def op_ListTags(self, p: dict[str, Any]) -> dict[str, Any]:
        # A registered version answers its group's tags (it cannot have its own).
        arn = self.registry.tag_owner(p["ResourceArn"])
        with self._lock:
            return {"Tags": list(self._tags.get(arn, []))}

    # -- search ---------------------------------------------------------------------

    def op_Search(self, p: dict[str, Any]) -> dict[str, Any]:
        """Search over training and tuning jobs, the model registry and
        endpoints (local/emulator/search.py)."""
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
                json.dumps(result, default=wire_value), media_type="application/x-amz-json-1.1"
            )

        async def invoke_async(request: Request) -> Response:
            return await invoke_endpoint_async(self, request)

        return Starlette(
            routes=[
                Route("/", control, methods=["POST"]),
                Route("/endpoints/{name}/async-invocations", invoke_async, methods=["POST"]),
                Mount("/", app=self.runtime.wrap(self.backend.runtime_app())),
            ]
        )
