"""Small values every resource family of the local SageMaker shares: the
clock, timestamps on the wire, and S3 URIs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from local.emulator.errors import ServiceError


def now() -> float:
    return datetime.now(UTC).timestamp()


def wire_value(value: Any) -> Any:
    """Timestamps go out as epoch seconds, as SageMaker's JSON protocol sends them."""
    if isinstance(value, datetime):
        return value.timestamp()
    return str(value)


def split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ServiceError("ValidationException", f"not an s3 URI: {uri}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key
