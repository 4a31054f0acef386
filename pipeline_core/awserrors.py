"""Classify botocore ``ClientError``s (SageMaker, sagemaker-runtime, S3) into named errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from botocore.exceptions import ClientError

from pipeline_core.errors import InstanceTypeUnavailableError, ResourceLimitError, ThrottlingError

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "SlowDown",
        "ProvisionedThroughputExceededException",
    }
)


# SageMaker's ValidationException for an instance type the region does not offer.
_INSTANCE_UNAVAILABLE = re.compile(
    r".*instance ?type.*(not (supported|available|valid|offered)|unsupported)",
    re.IGNORECASE | re.DOTALL,
)
#: Which input keys choose the instance type of each Create call.
INSTANCE_TYPE_KEYS: dict[str, str] = {
    "CreateHyperParameterTuningJob": "training_instance_type",
    "CreateEndpointConfig": "endpoint.instance_type (or endpoint.mode serverless/none)",
    "CreateEndpoint": "endpoint.instance_type (or endpoint.mode serverless/none)",
    "CreateTransformJob": "transform_instance_type (cdk.json pipeline)",
}


def code_of(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def message_of(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Message", ""))


#: Server-side errors that a later attempt may not meet.
_SERVER_ERROR_CODES = frozenset(
    {"InternalFailure", "InternalError", "InternalServerError", "ServiceUnavailable"}
)


def is_transient(e: BaseException) -> bool:
    """Throttling or a server-side (5xx) error: worth another try later. Anything
    else (AccessDenied, a validation error, a bug) will fail the same way again."""
    if not isinstance(e, ClientError):
        return False
    status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    code = code_of(e)
    return code in THROTTLING_CODES or code in _SERVER_ERROR_CODES or status >= 500


def is_already_exists(e: ClientError) -> bool:
    """ResourceInUse, or SageMaker's "Cannot create already existing ..." ValidationException."""
    code = code_of(e)
    if code == "ResourceInUse":
        return True
    return code == "ValidationException" and "already existing" in message_of(e)


def is_not_found(e: ClientError) -> bool:
    code = code_of(e)
    if code in ("ResourceNotFound", "ResourceNotFoundException"):
        return True
    # SageMaker's DescribeTrainingJob/StopTrainingJob: "Requested resource not found."
    message = message_of(e)
    return code == "ValidationException" and (
        "Could not find" in message or message.startswith("Requested resource not found")
    )


def named_error(e: ClientError, action: str) -> BaseException:
    """The named exception for ``e`` (throttling, quota), or ``e`` itself."""
    code = code_of(e)
    if code in THROTTLING_CODES:
        return ThrottlingError(f"{action}: still throttled after retries ({message_of(e)})")
    if code == "ResourceLimitExceeded":
        return ResourceLimitError(f"{action}: an AWS quota was hit: {message_of(e)}")
    if code == "ValidationException" and _INSTANCE_UNAVAILABLE.match(message_of(e)):
        keys = INSTANCE_TYPE_KEYS.get(action, "training_instance_type / endpoint.instance_type")
        return InstanceTypeUnavailableError(
            f"{action}: the instance type is not offered in this region ({message_of(e)}); "
            f"set {keys} to a type the region offers (e.g. ml.m5.xlarge), within the "
            "stack's allowed_instance_types"
        )
    original: BaseException = e
    return original


def raise_named(e: ClientError, action: str) -> NoReturn:
    """Raise :func:`named_error` of ``e`` chained to it, or ``e`` itself unchanged."""
    named = named_error(e, action)
    if named is e:
        raise e
    raise named from e


@contextmanager
def named_errors(action: str) -> Iterator[None]:
    """Throttling/quota ``ClientError``s inside the block become named errors
    (the state machine retries ``ThrottlingError``); any other propagates as is."""
    try:
        yield
    except ClientError as e:
        raise_named(e, action)
