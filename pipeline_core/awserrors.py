"""Classify botocore ``ClientError``s (SageMaker, sagemaker-runtime, S3) into named errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from botocore.exceptions import ClientError

from pipeline_core.errors import ResourceLimitError, ThrottlingError

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


def code_of(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def message_of(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Message", ""))


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
    return code == "ValidationException" and "Could not find" in message_of(e)


def named_error(e: ClientError, action: str) -> BaseException:
    """The named exception for ``e`` (throttling, quota), or ``e`` itself."""
    code = code_of(e)
    if code in THROTTLING_CODES:
        return ThrottlingError(f"{action}: still throttled after retries ({message_of(e)})")
    if code == "ResourceLimitExceeded":
        return ResourceLimitError(f"{action}: an AWS quota was hit: {message_of(e)}")
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
