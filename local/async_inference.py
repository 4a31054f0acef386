"""Asynchronous inference (``InvokeEndpointAsync``) on the local SageMaker.

An endpoint whose config has ``AsyncInferenceConfig`` takes
``POST /endpoints/<name>/async-invocations`` with the request in S3
(``X-Amzn-SageMaker-InputLocation``): the call answers 202 at once with the
``InferenceId`` and where the answer will be, and a background thread reads
the input, scores it with the endpoint's model and writes
``<S3OutputPath>/<InferenceId>.out``, or, when the model refuses the input,
``<S3FailurePath or S3OutputPath>/<InferenceId>-error.out`` with the
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
import uuid
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger("local.async_inference")

_HEADER = "x-amzn-sagemaker-"
#: InvokeEndpointAsync's input must be at most 1 GB (SageMaker quotas).
MAX_INPUT_BYTES = 1024**3


class AsyncService(Protocol):
    """What this module needs of :class:`local.sagemaker_service.LocalSageMaker`."""

    s3: Any
    backend: Any
    account: str

    def async_config(self, endpoint_name: str) -> dict[str, Any] | None: ...

    def _start(self, target: Any, name: str) -> None: ...


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"__type": code, "message": message},
        status_code=status,
        headers={"x-amzn-ErrorType": code},
    )


def _split(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


async def invoke_endpoint_async(service: AsyncService, request: Request) -> Response:
    """The runtime's InvokeEndpointAsync: validate, answer 202, score later."""
    name = request.path_params["name"]
    headers = request.headers
    input_location = headers.get(f"{_HEADER}inputlocation")
    if not input_location:
        return _error(400, "ValidationError", "InputLocation is required")
    try:
        _split(input_location)
    except ValueError as e:
        return _error(400, "ValidationError", str(e))
    config = service.async_config(name)
    if config is None:
        return _error(
            400,
            "ValidationError",
            f"Endpoint {name} of account {service.account} not found or is not an "
            "asynchronous inference endpoint (its config has no AsyncInferenceConfig).",
        )
    output = config.get("OutputConfig") or {}
    output_path = str(output["S3OutputPath"]).rstrip("/")
    failure_path = str(output.get("S3FailurePath") or output_path).rstrip("/")
    extension = headers.get(f"{_HEADER}s3outputpathextension")
    if extension:
        output_path = f"{output_path}/{extension.strip('/')}"
    inference_id = headers.get(f"{_HEADER}inference-id") or str(uuid.uuid4())
    output_uri = f"{output_path}/{inference_id}.out"
    failure_uri = f"{failure_path}/{inference_id}-error.out"
    content_type = headers.get(f"{_HEADER}content-type")
    accept = headers.get(f"{_HEADER}accept")

    def run() -> None:
        _score(service, name, input_location, output_uri, failure_uri, content_type, accept)

    service._start(run, f"async-{inference_id}")
    return JSONResponse(
        {"InferenceId": inference_id},
        status_code=202,
        headers={
            "X-Amzn-SageMaker-OutputLocation": output_uri,
            "X-Amzn-SageMaker-FailureLocation": failure_uri,
        },
    )


def _score(
    service: AsyncService,
    endpoint: str,
    input_uri: str,
    output_uri: str,
    failure_uri: str,
    content_type: str | None,
    accept: str | None,
) -> None:
    """Read the input, score it, write the answer (or the failure) to S3."""
    try:
        bucket, key = _split(input_uri)
        obj = service.s3.get_object(Bucket=bucket, Key=key)
        if int(obj.get("ContentLength", 0)) > MAX_INPUT_BYTES:
            raise ValueError(f"the input is larger than {MAX_INPUT_BYTES} bytes")
        body = obj["Body"].read()
        content_type = content_type or obj.get("ContentType")
        content, kind = service.backend.invoke_endpoint(endpoint, body, content_type, accept)
        out_bucket, out_key = _split(output_uri)
        service.s3.put_object(Bucket=out_bucket, Key=out_key, Body=content, ContentType=kind)
    except Exception as e:  # the failure file says why; the service stays up
        log.info("async inference on %s failed: %s", endpoint, e)
        try:
            fail_bucket, fail_key = _split(failure_uri)
            error = "ModelError" if type(e).__name__ == "PayloadError" else type(e).__name__
            service.s3.put_object(
                Bucket=fail_bucket,
                Key=fail_key,
                Body=json.dumps({"error": error, "message": str(e)}).encode(),
                ContentType="application/json",
            )
        except Exception as write_error:
            log.warning("could not write the failure of %s: %s", endpoint, write_error)
