"""Safe loader and validator for the tutorial's ``mnist.pkl.gz``.

The file is a gzip'd pickle of ``(train, valid, test)``, each ``(images,
labels)``. ``pickle.load`` on an untrusted object runs arbitrary code, so we
unpickle with :class:`SafeUnpickler`, whose ``find_class`` hands out only
guarded stand-ins for the few numpy callables an array pickle needs
(protocols 0-5, and Python 2 pickles read with ``encoding='latin1'``).
Anything else raises :class:`InvalidDatasetError` before it can run.

Decompression is streamed straight into the unpickler through a reader that
refuses to go beyond ``max_bytes`` decompressed, so a gzip bomb or a pickle
announcing a huge string fails early instead of exhausting memory.
"""

from __future__ import annotations

import gzip
import io
import pickle
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from pipeline_core.errors import InvalidDatasetError

#: Default bound on the decompressed size (the real file is about 220 MB).
MAX_DECOMPRESSED_BYTES = 1 << 30
SPLIT_NAMES = ("train", "validation", "test")
_GZIP_MAGIC = b"\x1f\x8b"


# -- the restricted unpickler ---------------------------------------------------


class _NDArrayType:
    """Stands for ``numpy.ndarray`` in a pickle: usable only as the subtype
    argument of ``_reconstruct``, never callable itself (``ndarray(shape)``
    would allocate whatever a hostile pickle asks for)."""


def _check_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    if dtype.hasobject:
        raise InvalidDatasetError("dataset pickle holds an object array, which is not allowed")
    return dtype


def _safe_reconstruct(subtype: Any, shape: Any, dtype: Any) -> npt.NDArray[Any]:
    if subtype is not _NDArrayType:
        raise InvalidDatasetError("dataset pickle reconstructs something other than ndarray")
    if not isinstance(shape, tuple) or len(shape) != 1 or shape[0] != 0:
        raise InvalidDatasetError("dataset pickle uses an unexpected array placeholder shape")
    if isinstance(dtype, str):
        dtype = dtype.encode("latin1")
    if not isinstance(dtype, bytes) or dtype not in (b"b", b"B"):
        raise InvalidDatasetError("dataset pickle uses an unexpected array placeholder dtype")
    return np.ndarray.__new__(np.ndarray, (0,), dtype.decode("latin1"))


def _safe_dtype(obj: Any, align: Any = False, copy: Any = False) -> np.dtype[Any]:
    if not isinstance(obj, str) or len(obj) > 8:
        raise InvalidDatasetError(f"dataset pickle has an unexpected dtype spec {obj!r}")
    try:
        dtype = np.dtype(obj, align=bool(align), copy=bool(copy))
    except TypeError as e:
        raise InvalidDatasetError(f"dataset pickle has a bad dtype spec {obj!r}") from e
    return _check_dtype(dtype)


def _safe_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> npt.NDArray[Any]:
    if not isinstance(dtype, np.dtype):
        raise InvalidDatasetError("dataset pickle passes a non-dtype to _frombuffer")
    _check_dtype(dtype)
    if order not in ("C", "F"):
        raise InvalidDatasetError(f"dataset pickle has bad array order {order!r}")
    if not isinstance(shape, tuple) or not all(isinstance(d, int) for d in shape):
        raise InvalidDatasetError("dataset pickle has a bad array shape")
    try:
        return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order)
    except (TypeError, ValueError) as e:
        raise InvalidDatasetError(f"dataset pickle has inconsistent array data: {e}") from e


def _safe_codecs_encode(obj: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
    # Python 3 pickles bytes at protocols 0-2 as _codecs.encode(str, "latin1").
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise InvalidDatasetError("dataset pickle calls _codecs.encode unexpectedly")
    return obj.encode("latin1")


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _safe_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _safe_frombuffer,
    ("numpy", "ndarray"): _NDArrayType,
    ("numpy", "dtype"): _safe_dtype,
    ("_codecs", "encode"): _safe_codecs_encode,
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numeric numpy arrays, nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise InvalidDatasetError(
                f"dataset pickle references {module}.{name}, which is not allowed "
                "(only numpy arrays and plain containers are)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise InvalidDatasetError("dataset pickle uses persistent ids, which are not allowed")


# -- bounded gzip stream ---------------------------------------------------------


class _GzipProblem(Exception):
    """Raised inside the reader so the loader can tell gzip faults from pickle ones."""


class _BoundedReader:
    """``read``/``readline``/``readinto`` over a gzip stream, at most ``limit`` bytes."""

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        self._gz = gzip.GzipFile(fileobj=raw, mode="rb")
        self._limit = limit
        self.total = 0

    def _account(self, n: int) -> None:
        self.total += n
        if self.total > self._limit:
            raise InvalidDatasetError(
                f"dataset decompresses to more than {self._limit} bytes; refusing to load it"
            )

    def _guard(self, fn: Callable[[], bytes]) -> bytes:
        try:
            data = fn()
        except (gzip.BadGzipFile, zlib.error, OSError) as e:
            raise _GzipProblem(f"corrupt gzip stream: {e}") from e
        except EOFError as e:
            raise _GzipProblem(f"truncated gzip stream: {e}") from e
        self._account(len(data))
        return data

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self._limit - self.total + 1
        if self.total + n > self._limit + 1:
            # A pickle may announce any length; don't let it make us allocate it.
            n = self._limit - self.total + 1
        return self._guard(lambda: self._gz.read(n))

    def readinto(self, buf: Any) -> int:
        data = self.read(len(memoryview(buf)))
        memoryview(buf).cast("B")[: len(data)] = data
        return len(data)

    def readline(self, size: int = -1) -> bytes:
        limit = self._limit - self.total + 1 if size is None or size < 0 else size
        return self._guard(lambda: self._gz.readline(limit))

    def drain(self) -> None:
        """Read to the end so the gzip CRC and length are verified."""
        while self.read(1 << 20):
            pass


# -- validated dataset ------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    images: npt.NDArray[np.float32]  # (N, feature_dim) in [0, 1]
    labels: npt.NDArray[np.int64]  # (N,) digits 0..9


@dataclass(frozen=True)
class MnistSplits:
    train: Split
    validation: Split
    test: Split

    def items(self) -> list[tuple[str, Split]]:
        return [("train", self.train), ("validation", self.validation), ("test", self.test)]


def unpickle_gzip(data: bytes | BinaryIO, *, max_bytes: int = MAX_DECOMPRESSED_BYTES) -> Any:
    """Decompress and safely unpickle. Raises :class:`InvalidDatasetError`."""
    raw: BinaryIO = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    head = raw.read(2)
    raw.seek(-len(head), io.SEEK_CUR)
    if head != _GZIP_MAGIC:
        raise InvalidDatasetError("dataset is not gzip-compressed (bad magic bytes)")
    reader = _BoundedReader(raw, max_bytes)
    try:
        obj = SafeUnpickler(reader, encoding="latin1").load()
        reader.drain()
    except InvalidDatasetError:
        raise
    except _GzipProblem as e:
        raise InvalidDatasetError(str(e)) from e
    except MemoryError as e:
        raise InvalidDatasetError("dataset is too large to load") from e
    except Exception as e:  # any unpickling failure: UnpicklingError, EOFError, ValueError...
        raise InvalidDatasetError(f"dataset is not a valid pickle: {type(e).__name__}: {e}") from e
    return obj


def _validate_split(name: str, split: Any, feature_dim: int) -> Split:
    if not isinstance(split, (tuple, list)) or len(split) != 2:
        raise InvalidDatasetError(
            f"split '{name}' must be an (images, labels) pair, got {type(split).__name__}"
            + (f" of length {len(split)}" if isinstance(split, (tuple, list)) else "")
        )
    images, labels = split
    if not isinstance(images, np.ndarray):
        raise InvalidDatasetError(
            f"split '{name}': images must be a numpy array, got {type(images).__name__}"
        )
    if not isinstance(labels, np.ndarray):
        raise InvalidDatasetError(
            f"split '{name}': labels must be a numpy array, got {type(labels).__name__}"
        )
    if images.dtype.kind not in "fiu":
        raise InvalidDatasetError(
            f"split '{name}': images must be numeric, got dtype {images.dtype}"
        )
    if images.ndim != 2 or images.shape[1] != feature_dim:
        raise InvalidDatasetError(
            f"split '{name}': images must have shape (N, {feature_dim}), got {images.shape}"
        )
    n = images.shape[0]
    if n == 0:
        raise InvalidDatasetError(f"split '{name}' is empty")
    if labels.ndim != 1 or labels.shape[0] != n:
        raise InvalidDatasetError(
            f"split '{name}': labels must have shape ({n},) to match the images, got {labels.shape}"
        )
    feats = images.astype(np.float32, copy=False)
    if not feats.flags.c_contiguous:
        feats = np.ascontiguousarray(feats)
    # min/max propagate NaN, so one pass each spots NaN, inf and out-of-range.
    lo, hi = float(feats.min()), float(feats.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InvalidDatasetError(f"split '{name}': images contain NaN or infinite values")
    if lo < 0.0 or hi > 1.0:
        raise InvalidDatasetError(
            f"split '{name}': pixel values must be in [0, 1], found [{lo:g}, {hi:g}]"
        )
    if labels.dtype.kind in "iu":
        labs = labels.astype(np.int64, copy=False)
    elif labels.dtype.kind == "f":
        if not np.isfinite(labels).all() or not (labels == np.round(labels)).all():
            raise InvalidDatasetError(f"split '{name}': labels must be whole numbers")
        labs = labels.astype(np.int64)
    else:
        raise InvalidDatasetError(
            f"split '{name}': labels must be integers, got dtype {labels.dtype}"
        )
    if int(labs.min()) < 0 or int(labs.max()) > 9:
        raise InvalidDatasetError(
            f"split '{name}': labels must be digits 0-9, found "
            f"[{int(labs.min())}, {int(labs.max())}]"
        )
    return Split(images=feats, labels=labs)


#: One split's checks, also used for each shard of a sharded source.
validate_split = _validate_split


def validate_dataset(obj: Any, *, feature_dim: int, target_digit: int) -> MnistSplits:
    """Check the unpickled object's structure and values."""
    if not isinstance(obj, (tuple, list)) or len(obj) != 3:
        raise InvalidDatasetError(
            "dataset must be a (train, validation, test) triple, got "
            + type(obj).__name__
            + (f" of length {len(obj)}" if isinstance(obj, (tuple, list)) else "")
        )
    train, validation, test = (
        _validate_split(name, split, feature_dim)
        for name, split in zip(SPLIT_NAMES, obj, strict=True)
    )
    if not (train.labels == target_digit).any():
        raise InvalidDatasetError(f"split 'train' has no example of target digit {target_digit}")
    return MnistSplits(train=train, validation=validation, test=test)


def load_mnist(
    data: bytes | BinaryIO,
    *,
    feature_dim: int = 784,
    target_digit: int = 0,
    max_bytes: int = MAX_DECOMPRESSED_BYTES,
) -> MnistSplits:
    """Safely load and validate ``mnist.pkl.gz`` bytes."""
    return validate_dataset(
        unpickle_gzip(data, max_bytes=max_bytes),
        feature_dim=feature_dim,
        target_digit=target_digit,
    )


def relabel(labels: npt.ArrayLike, target: int) -> npt.NDArray[np.float32]:
    """1.0 where the digit is ``target``, else 0.0 (the tutorial's binary task)."""
    out: npt.NDArray[np.float32] = (np.asarray(labels) == target).astype(np.float32)
    return out
