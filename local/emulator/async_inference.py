"""Asynchronous inference (``InvokeEndpointAsync``) on the local SageMaker.

An endpoint whose config has ``AsyncInferenceConfig`` takes
``POST /endpoints/<name>/async-invocations`` with the request in S3
(``X-Amzn-SageMaker-InputLocation``) or inline (the body, at most 128,000
bytes): the call answers 202 at once with the ``InferenceId`` and where the
answer will be, and a bounded pool (:data:`ASYNC_WORKERS` at a time, the rest
queued) reads the input, scores it with the endpoint's model and writes
``<S3OutputPath>/<InferenceId>.out`` (or ``<S3OutputPath>/<Filename>``), or,
when the model refuses the input,
``<S3FailurePath>/<InferenceId>-error.out`` (``S3OutputPath`` when the config
names no failure path: our choice, AWS does not document it) with the
container's error body (``{"error": ..., "message": ...}``). That is the
contract the SDK's ``AsyncPredictor`` polls for. Without a ``ContentType``
header the input object's own ``Content-Type`` is the request's, which is how
the SDK sends it (it uploads the serialized input with its content type and
leaves the header out). Not imitated:
the SNS notifications of ``NotificationConfig``, the request queue's TTL and
scaling to zero.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local.emulator.channels import ChannelError, split_s3
from training.errors import PayloadError

log = logging.getLogger("local.emulator.async_inference")

_HEADER = "x-amzn-sagemaker-"
#: InvokeEndpointAsync's input must be at most 1 GB (SageMaker quotas).
MAX_INPUT_BYTES = 1024**3
#: An inline ``Body`` is at most 128,000 bytes (botocore's documentation).
MAX_INLINE_BYTES = 128_000
#: Requests scored at once; the rest wait in the pool's queue.
ASYNC_WORKERS = 4


class AsyncService(Protocol):
    """What this module needs of :class:`local.emulator.service.LocalSageMaker`."""

    s3: Any
    backend: Any
    account: str
    async_pool: Any
    runtime: Any

    def async_config(self, endpoint_name: str) -> dict[str, Any] | None: ...


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"__type": code, "message": message},
        status_code=status,
        headers={"x-amzn-ErrorType": code},
    )


async def invoke_endpoint_async(service: AsyncService, request: Request) -> Response:
    """The runtime's InvokeEndpointAsync: validate, answer 202, score later."""
    name = request.path_params["name"]
    headers = request.headers
    input_location = headers.get(f"{_HEADER}inputlocation")
    inline = await request.body()
    if input_location and inline:
        return _error(400, "ValidationError", "Body and InputLocation are mutually exclusive")
    if not input_location and not inline:
        return _error(400, "ValidationError", "one of InputLocation or Body is required")
    if len(inline) > MAX_INLINE_BYTES:
        return _error(400, "ValidationError", f"an inline Body is at most {MAX_INLINE_BYTES} bytes")
    if input_location:
        try:
            _, key = split_s3(input_location)
        except ChannelError as e:
            return _error(400, "ValidationError", str(e))
        if not key:
            return _error(400, "ValidationError", f"not an s3://bucket/key URI: {input_location}")
    try:
        config = service.async_config(name)
    except LookupError:
        return _error(
            400, "ValidationError", f"Endpoint {name} of account {service.account} not found."
        )
    if config is None:
        return _error(
            400,
            "ValidationError",
            f"Endpoint {name} is not an asynchronous inference endpoint "
            "(its endpoint config has no AsyncInferenceConfig).",
        )
    output = config.get("OutputConfig") or {}
    if not output.get("S3OutputPath"):
        return _error(
            400,
            "ValidationError",
            f"Endpoint {name}'s AsyncInferenceConfig has no OutputConfig.S3OutputPath "
            "(the local account writes answers only to S3)",
        )
    output_path = str(output["S3OutputPath"]).rstrip("/")
    failure_path = str(output.get("S3FailurePath") or output_path).rstrip("/")
    extension = headers.get(f"{_HEADER}s3outputpathextension")
    if extension:
        output_path = f"{output_path}/{extension.strip('/')}"
    inference_id = headers.get(f"{_HEADER}inference-id") or str(uuid.uuid4())
    filename = headers.get(f"{_HEADER}filename")
    output_uri = f"{output_path}/{filename.strip('/') if filename else inference_id + '.out'}"
    failure_uri = f"{failure_path}/{inference_id}-error.out"
    content_type = headers.get(f"{_HEADER}content-type")
    accept = headers.get(f"{_HEADER}accept")

    source: str | bytes = input_location or inline
    service.async_pool.submit(
        _score, service, name, source, output_uri, failure_uri, content_type, accept
    )
    return JSONResponse(
        {"InferenceId": inference_id},
        status_code=202,
        headers={
            "X-Amzn-SageMaker-OutputLocation": output_uri,
            "X-Amzn-SageMaker-FailureLocation": failure_uri,
        },
    )


def _measured(
    service: AsyncService, endpoint: str, body: bytes, ctype: str | None, accept: str | None
) -> tuple[bytes, str]:
    """The model's answer, with the metrics an asynchronous endpoint publishes
    (local/emulator/runtime_metrics.py: no Invocations nor OverheadLatency)."""
    route = service.runtime.route_async(endpoint)
    started = time.perf_counter()
    status = 500
    try:
        answer: tuple[bytes, str] = service.backend.invoke_endpoint(endpoint, body, ctype, accept)
        status = 200
        return answer
    except PayloadError as e:
        status = e.status
        raise
    finally:
        if route is not None:
            elapsed = time.perf_counter() - started
            service.runtime.record(endpoint, route, status, elapsed, 0.0, asynchronous=True)


def _score(
    service: AsyncService,
    endpoint: str,
    source: str | bytes,
    output_uri: str,
    failure_uri: str,
    content_type: str | None,
    accept: str | None,
) -> None:
    """Read the input (S3 URI or inline bytes), score it, write the answer
    (or the failure) to S3."""
    try:
        if isinstance(source, bytes):
            body = source
        else:
            bucket, key = split_s3(source)
            obj = service.s3.get_object(Bucket=bucket, Key=key)
            if int(obj.get("ContentLength", 0)) > MAX_INPUT_BYTES:
                raise ValueError(f"the input is larger than {MAX_INPUT_BYTES} bytes")
            body = obj["Body"].read()
            content_type = content_type or obj.get("ContentType")
        content, kind = _measured(service, endpoint, body, content_type, accept)
        out_bucket, out_key = split_s3(output_uri)
        service.s3.put_object(Bucket=out_bucket, Key=out_key, Body=content, ContentType=kind)
    except Exception as e:  # the failure file says why; the service stays up
        log.info("async inference on %s failed: %s", endpoint, e)
        try:
            fail_bucket, fail_key = split_s3(failure_uri)
            error = "ModelError" if isinstance(e, PayloadError) else type(e).__name__
            service.s3.put_object(
                Bucket=fail_bucket,
                Key=fail_key,
                Body=json.dumps({"error": error, "message": str(e)}).encode(),
                ContentType="application/json",
            )
        except Exception as write_error:
            log.warning("could not write the failure of %s: %s", endpoint, write_error)
