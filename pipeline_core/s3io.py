"""Small S3 helpers shared by the core modules (the client is always injected)."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import unquote, urlparse

from botocore.exceptions import ClientError

from pipeline_core.awserrors import THROTTLING_CODES, named_error
from pipeline_core.errors import SourceAccessDeniedError, SourceNotFoundError

_NOT_FOUND = {"NoSuchKey", "NoSuchBucket", "404", "NotFound"}
_DENIED = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled", "InvalidObjectState"}


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def local_path(source: str) -> str:
    """The filesystem path of a ``file://`` URI or a plain path."""
    if source.startswith("file://"):
        return unquote(urlparse(source).path)
    return source


def error_code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def translate_read_error(e: ClientError, uri: str) -> BaseException:
    """Map an S3 read failure to the pipeline's named errors: throttling
    (``SlowDown`` etc.) to ThrottlingError, then the named source errors."""
    code = error_code(e)
    if code in THROTTLING_CODES:
        return named_error(e, f"S3 GetObject {uri}")
    status = str(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    if code in _NOT_FOUND or status == "404":
        return SourceNotFoundError(f"source {uri} does not exist ({code or status})")
    if code in _DENIED or status == "403":
        return SourceAccessDeniedError(f"access to source {uri} was denied ({code or status})")
    original: BaseException = e
    return original


def read_bytes(s3: Any, uri: str) -> bytes:
    """Whole object as bytes; named errors for missing or forbidden objects."""
    bucket, key = split_s3_uri(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            data: bytes = body.read()
        finally:
            body.close()
        return data
    except ClientError as e:
        raise translate_read_error(e, uri) from e


def read_source(s3: Any, source: str) -> bytes:
    """Read an ``s3://`` source through ``s3``, or a local path / ``file://`` URI."""
    if source.startswith("s3://"):
        return read_bytes(s3, source)
    path = local_path(source)
    try:
        with open(path, "rb") as f:
            return f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
        raise SourceNotFoundError(f"source {source} does not exist") from e
    except PermissionError as e:
        raise SourceAccessDeniedError(f"access to source {source} was denied") from e


class BufferReader(io.RawIOBase):
    """A seekable, read-only file over a buffer, without copying it.

    ``put_object`` with ``bytes(big_array)`` would double the peak memory of a
    150 MB recordIO file; botocore streams (and checksums) a seekable file."""

    def __init__(self, buffer: Any) -> None:
        super().__init__()
        self._view = memoryview(buffer).cast("B")
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self._view)

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, b: Any) -> int:
        out = memoryview(b).cast("B")
        n = max(0, min(len(out), len(self._view) - self._pos))
        out[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n

    def read(self, size: int | None = -1) -> bytes:
        end = (
            len(self._view) if size is None or size < 0 else min(len(self._view), self._pos + size)
        )
        data = self._view[self._pos : end].tobytes()
        self._pos = max(self._pos, end)
        return data
