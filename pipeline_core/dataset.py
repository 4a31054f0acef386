"""Safe loader and validator for the tutorial's ``mnist.pkl.gz``.

The file is a gzip'd pickle of ``(train, valid, test)``, each ``(images,
labels)``. ``pickle.load`` on an untrusted object runs arbitrary code, so we
unpickle with :class:`SafeUnpickler`, whose ``find_class`` hands out only
guarded stand-ins for the few numpy callables an array pickle needs
(protocols 0-5, and Python 2 pickles read with ``encoding='latin1'``).
Anything else raises :class:`InvalidDatasetError` before it can run. Not even
numpy's own ``__setstate__`` sees the pickle's data: dtypes are rebuilt from
(kind, itemsize, byte order) after their claimed state is compared with
numpy's, and arrays are made from their raw bytes with that rebuilt dtype.

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


#: Array kinds a dataset may hold: booleans, integers, floats. Nothing that
#: carries Python objects, pointers, fields, sub-arrays or metadata.
_PLAIN_KINDS = frozenset("biuf")
_BYTE_ORDERS = frozenset("<>|")


class _DtypeSpec:
    """What ``numpy.dtype(spec, align, copy)`` yields inside the pickle: a plain
    record of the spec and, after the BUILD opcode, of the state the pickle
    claims. Never a live ``np.dtype``: a pickle can rewrite a dtype's flags
    through ``dtype.__setstate__`` (say, claim that float32 holds Python
    objects), and numpy trusts them. :func:`_rebuild_dtype` makes the real
    dtype from (kind, itemsize, byte order) only, after comparing the claimed
    state with the state numpy itself gives that dtype."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _not_plain(what: Any) -> InvalidDatasetError:
    return InvalidDatasetError(
        f"dataset pickle holds an array of dtype {what!r}, which is not allowed: only "
        "numeric arrays (booleans, integers, floats) are"
    )


def _rebuild_dtype(spec: Any) -> np.dtype[Any]:
    """The real dtype for a :class:`_DtypeSpec`, rebuilt from a plain description."""
    if not isinstance(spec, _DtypeSpec):
        raise InvalidDatasetError("dataset pickle passes something other than a dtype")
    try:
        fresh = np.dtype(spec.spec)
    except TypeError as e:
        raise InvalidDatasetError(f"dataset pickle has a bad dtype spec {spec.spec!r}") from e
    if fresh.kind not in _PLAIN_KINDS or fresh.hasobject or fresh.fields or fresh.subdtype:
        raise _not_plain(spec.spec)
    state = spec.state
    order = fresh.byteorder if fresh.byteorder != "=" else ("<" if _LITTLE else ">")
    if state is not None:
        expected = fresh.__reduce__()[2]
        if not isinstance(state, tuple) or len(state) != len(expected):
            raise InvalidDatasetError(
                f"dataset pickle gives dtype {spec.spec!r} a malformed state {state!r}"
            )
        if state[1] not in _BYTE_ORDERS or (state[1] == "|") != (expected[1] == "|"):
            raise InvalidDatasetError(
                f"dataset pickle gives dtype {spec.spec!r} the byte order {state[1]!r}"
            )
        order = state[1]
        claimed, wanted = state[-1], expected[-1]
        if claimed != wanted:
            raise InvalidDatasetError(
                f"dataset pickle rewrites the flags of dtype {spec.spec!r} to {claimed!r} "
                f"(numpy gives it {wanted!r}); refusing to load it"
            )
        if tuple(state[:1]) + tuple(state[2:]) != tuple(expected[:1]) + tuple(expected[2:]):
            raise InvalidDatasetError(
                f"dataset pickle rewrites the state of dtype {spec.spec!r} to {state!r}"
            )
    kind = "b" if fresh.kind == "b" else fresh.kind
    rebuilt = np.dtype(f"{order}{kind}{fresh.itemsize}")
    if rebuilt.hasobject or rebuilt.flags != np.dtype(rebuilt.str).flags:
        raise _not_plain(spec.spec)  # pragma: no cover - numpy invariant
    return rebuilt


class _ArrayBuilder:
    """What ``_reconstruct(ndarray, (0,), b'b')`` yields inside the pickle. The
    BUILD opcode hands it ``ndarray.__setstate__``'s state, from which it makes
    the array itself (rebuilt dtype, checked size): numpy's own ``__setstate__``
    never sees anything from the pickle."""

    def __init__(self) -> None:
        self.array: npt.NDArray[Any] | None = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise InvalidDatasetError("dataset pickle has a malformed array state")
        if len(state) == 5:
            version, *rest = state
            if version != 1:
                raise InvalidDatasetError(f"dataset pickle has array state version {version!r}")
            state = tuple(rest)
        shape, dtype_spec, fortran, raw = state
        dtype = _rebuild_dtype(dtype_spec)
        if not isinstance(fortran, (bool, int)):
            raise InvalidDatasetError("dataset pickle has a bad array order flag")
        if isinstance(raw, str):  # Python 2 pickles read with encoding='latin1'
            raw = raw.encode("latin1")
        if not isinstance(raw, (bytes, bytearray)):
            raise InvalidDatasetError("dataset pickle gives an array no raw data")
        self.array = _from_bytes(raw, dtype, shape, "F" if fortran else "C")


_LITTLE = np.little_endian


def _from_bytes(buf: Any, dtype: np.dtype[Any], shape: Any, order: str) -> npt.NDArray[Any]:
    if not isinstance(shape, tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise InvalidDatasetError("dataset pickle has a bad array shape")
    count = 1
    for d in shape:
        count *= d
    size = memoryview(buf).nbytes
    if size != count * dtype.itemsize:
        raise InvalidDatasetError(
            f"dataset pickle has inconsistent array data: {size} bytes for shape {shape} "
            f"of {dtype.str}"
        )
    try:
        return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order)  # type: ignore[call-overload,no-any-return]
    except (TypeError, ValueError) as e:
        raise InvalidDatasetError(f"dataset pickle has inconsistent array data: {e}") from e


def _safe_reconstruct(subtype: Any, shape: Any, dtype: Any) -> _ArrayBuilder:
    if subtype is not _NDArrayType:
        raise InvalidDatasetError("dataset pickle reconstructs something other than ndarray")
    if not isinstance(shape, tuple) or len(shape) != 1 or shape[0] != 0:
        raise InvalidDatasetError("dataset pickle uses an unexpected array placeholder shape")
    if isinstance(dtype, str):
        dtype = dtype.encode("latin1")
    if not isinstance(dtype, bytes) or dtype not in (b"b", b"B"):
        raise InvalidDatasetError("dataset pickle uses an unexpected array placeholder dtype")
    return _ArrayBuilder()


def _safe_dtype(obj: Any, align: Any = False, copy: Any = False) -> _DtypeSpec:
    if not isinstance(obj, str) or len(obj) > 8:
        raise InvalidDatasetError(f"dataset pickle has an unexpected dtype spec {obj!r}")
    if align not in (False, True, 0, 1) or copy not in (False, True, 0, 1):
        raise InvalidDatasetError(f"dataset pickle calls numpy.dtype({obj!r}) unexpectedly")
    return _DtypeSpec(obj)


def _safe_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> npt.NDArray[Any]:
    rebuilt = _rebuild_dtype(dtype)
    if order not in ("C", "F"):
        raise InvalidDatasetError(f"dataset pickle has bad array order {order!r}")
    if not isinstance(buf, (bytes, bytearray, pickle.PickleBuffer)):
        raise InvalidDatasetError("dataset pickle gives _frombuffer no buffer")
    return _from_bytes(buf, rebuilt, shape, order)


def _materialize(obj: Any, seen: dict[int, Any] | None = None) -> Any:
    """The unpickled object with every array builder replaced by its array; a
    stray dtype (or an array whose state never came) is refused."""
    seen = {} if seen is None else seen
    if id(obj) in seen:
        return seen[id(obj)]
    out: Any
    if isinstance(obj, _ArrayBuilder):
        if obj.array is None:
            raise InvalidDatasetError("dataset pickle leaves an array without data")
        out = obj.array
    elif isinstance(obj, _DtypeSpec):
        raise InvalidDatasetError("dataset pickle holds a bare dtype, which is not allowed")
    elif isinstance(obj, tuple):
        out = tuple(_materialize(item, seen) for item in obj)
    elif isinstance(obj, list):
        out = [_materialize(item, seen) for item in obj]
    elif isinstance(obj, dict):
        out = {k: _materialize(v, seen) for k, v in obj.items()}
    else:
        out = obj
    seen[id(obj)] = out
    return out


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
        obj = _materialize(SafeUnpickler(reader, encoding="latin1").load())
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
