"""recordIO-protobuf, the wire format SageMaker's built-in algorithms read.

:func:`write_dense` produces exactly the bytes of the SageMaker SDK v2's
``sagemaker.amazon.common.write_numpy_to_dense_tensor`` for float32 data, but
vectorised: every row of a dense matrix has the same protobuf framing, so the
whole file is one ``(rows, record_size)`` uint8 array filled by broadcasting.

Format (docs/FORMATS.md): each record is ``uint32 magic 0xCED7230A``, ``uint32
length``, the payload, zero padding to 4 bytes. The payload is an
``aialgs.data.Record``: ``features`` (field 1) and ``label`` (field 2) are
maps ``string -> Value`` keyed ``"values"``; ``Value.float32_tensor`` is field
2; ``Float32Tensor.values`` is field 1 (packed), ``keys`` field 2 and
``shape`` field 3.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_KEY = b"values"


class RecordIOError(ValueError):
    """The bytes are not valid recordIO-protobuf as Linear Learner reads it."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_prefixed(tag: int, payload_len: int) -> bytes:
    return bytes([tag]) + _varint(payload_len)


def _map_entry_header(width: int) -> tuple[bytes, int]:
    """Header bytes before ``width`` float32 values of one map field, and the
    total size of the map entry (header + values)."""
    values_len = 4 * width
    tensor = _len_prefixed(0x0A, values_len)  # Float32Tensor.values, packed
    tensor_len = len(tensor) + values_len
    value = _len_prefixed(0x12, tensor_len)  # Value.float32_tensor
    value_len = len(value) + tensor_len
    key = _len_prefixed(0x0A, len(_KEY)) + _KEY  # MapEntry.key
    entry_head = key + _len_prefixed(0x12, value_len)  # MapEntry.value
    entry_len = len(entry_head) + value_len
    return entry_head + value + tensor, entry_len


def _field_layout(field_tag: int, width: int) -> tuple[bytes, int]:
    """Bytes preceding the values of one Record map field, and its full size."""
    inner_head, entry_len = _map_entry_header(width)
    outer = _len_prefixed(field_tag, entry_len)
    return outer + inner_head, len(outer) + entry_len


@dataclass(frozen=True)
class _Layout:
    feature_head: bytes
    label_head: bytes
    payload_len: int
    record_len: int  # with the 8-byte frame header and the padding


def _layout(dim: int, with_label: bool) -> _Layout:
    if dim < 1:
        raise RecordIOError("feature dimension must be at least 1")
    f_head, f_len = _field_layout(0x0A, dim)
    l_head, l_len = _field_layout(0x12, 1) if with_label else (b"", 0)
    payload = f_len + l_len
    if payload >= 1 << 29:
        raise RecordIOError("record too large for recordIO framing")
    padded = (payload + 3) & ~3
    return _Layout(f_head, l_head, payload, 8 + padded)


def _as_float32_matrix(array: npt.ArrayLike, what: str) -> npt.NDArray[np.float32]:
    arr = np.asarray(array)
    if arr.dtype != np.float32:
        raise RecordIOError(f"{what} must be float32, got {arr.dtype}")
    return arr


def encode_dense_array(
    features: npt.NDArray[np.float32], labels: npt.NDArray[np.float32] | None = None
) -> npt.NDArray[np.uint8]:
    """Encode a float32 matrix (and optional float32 label vector) as
    recordIO-protobuf, one Record per row, into a ``(rows, record_len)`` array
    whose C-order bytes are the file."""
    feats = _as_float32_matrix(features, "features")
    if feats.ndim != 2:
        raise RecordIOError(f"features must be a matrix, got shape {feats.shape}")
    rows, dim = feats.shape
    labs: npt.NDArray[np.float32] | None = None
    if labels is not None:
        labs = _as_float32_matrix(labels, "labels")
        if labs.ndim != 1 or labs.shape[0] != rows:
            raise RecordIOError(f"labels must be a vector of {rows} values, got shape {labs.shape}")
    lay = _layout(dim, labs is not None)
    out = np.empty((rows, lay.record_len), dtype=np.uint8)
    pos = 0

    def put_const(data: bytes) -> None:
        nonlocal pos
        out[:, pos : pos + len(data)] = np.frombuffer(data, dtype=np.uint8)
        pos += len(data)

    put_const(_MAGIC_BYTES + struct.pack("<I", lay.payload_len))
    put_const(lay.feature_head)
    le = np.ascontiguousarray(feats, dtype="<f4")
    out[:, pos : pos + 4 * dim] = le.view(np.uint8).reshape(rows, 4 * dim)
    pos += 4 * dim
    if labs is not None:
        put_const(lay.label_head)
        lab = np.ascontiguousarray(labs, dtype="<f4")
        out[:, pos : pos + 4] = lab.view(np.uint8).reshape(rows, 4)
        pos += 4
    out[:, pos:] = 0  # padding to a multiple of 4 bytes
    return out


def encode_dense(
    features: npt.NDArray[np.float32], labels: npt.NDArray[np.float32] | None = None
) -> bytes:
    """:func:`encode_dense_array` as ``bytes``."""
    return encode_dense_array(features, labels).tobytes()


def write_dense(
    file: BinaryIO,
    features: npt.NDArray[np.float32],
    labels: npt.NDArray[np.float32] | None = None,
) -> int:
    """Write ``features``/``labels`` to ``file`` (byte-identical to the SDK's
    ``write_numpy_to_dense_tensor``); returns the bytes written."""
    out = encode_dense_array(features, labels)
    file.write(out.data.cast("B"))
    return int(out.nbytes)


# -- reading ------------------------------------------------------------------


def split_records(data: bytes | memoryview) -> list[memoryview]:
    """Split recordIO framing into payloads, validating magic and padding."""
    view = memoryview(data)
    payloads: list[memoryview] = []
    pos = 0
    total = len(view)
    while pos < total:
        if pos + 8 > total:
            raise RecordIOError(f"truncated record header at byte {pos}")
        magic, length = struct.unpack_from("<II", view, pos)
        if magic != MAGIC:
            raise RecordIOError(f"bad recordIO magic 0x{magic:08X} at byte {pos}")
        if length >> 29:
            raise RecordIOError(f"multi-part records are not supported (byte {pos})")
        start = pos + 8
        end = start + length
        if end > total:
            raise RecordIOError(f"truncated record payload at byte {pos}")
        payloads.append(view[start:end])
        pos = start + ((length + 3) & ~3)
    return payloads


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise RecordIOError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise RecordIOError("varint too long")


def _fields(buf: memoryview) -> list[tuple[int, int, object]]:
    """Parse one protobuf message into (field, wire_type, value) triples."""
    out: list[tuple[int, int, object]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        field_no, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
            out.append((field_no, wire, value))
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            if pos + length > len(buf):
                raise RecordIOError("truncated length-delimited field")
            out.append((field_no, wire, buf[pos : pos + length]))
            pos += length
        elif wire == 5:
            out.append((field_no, wire, buf[pos : pos + 4]))
            pos += 4
        elif wire == 1:
            out.append((field_no, wire, buf[pos : pos + 8]))
            pos += 8
        else:
            raise RecordIOError(f"unsupported protobuf wire type {wire}")
    return out


_TENSOR_DTYPES = {1: "<f4", 2: "<f4", 3: "<f8", 4: "<i4"}  # Value oneof -> values


def _decode_value(buf: memoryview) -> tuple[np.ndarray, np.ndarray | None, list[int]]:
    """Decode a ``Value`` into (values, keys or None, shape)."""
    for field_no, wire, payload in _fields(buf):
        if wire != 2 or field_no not in (2, 3, 4):
            continue
        dtype = {2: "<f4", 3: "<f8", 4: "<i4"}[field_no]
        values: list[np.ndarray] = []
        keys: list[int] = []
        shape: list[int] = []
        assert isinstance(payload, memoryview)
        for t_field, t_wire, t_val in _fields(payload):
            if t_field == 1:
                if t_wire == 2:
                    assert isinstance(t_val, memoryview)
                    if dtype == "<i4":
                        ints: list[int] = []
                        p = 0
                        while p < len(t_val):
                            v, p = _read_varint(t_val, p)
                            ints.append(v - (1 << 64) if v >> 63 else v)
                        values.append(np.asarray(ints, dtype=np.int64))
                    else:
                        values.append(np.frombuffer(t_val, dtype=dtype))
                elif t_wire in (1, 5):
                    assert isinstance(t_val, memoryview)
                    values.append(np.frombuffer(t_val, dtype=dtype))
                else:
                    assert isinstance(t_val, int)
                    values.append(np.asarray([t_val], dtype=np.int64))
            elif t_field in (2, 3):
                target = keys if t_field == 2 else shape
                if t_wire == 2:
                    assert isinstance(t_val, memoryview)
                    p = 0
                    while p < len(t_val):
                        v, p = _read_varint(t_val, p)
                        target.append(v)
                else:
                    assert isinstance(t_val, int)
                    target.append(t_val)
        arr = np.concatenate(values).astype(np.float64) if values else np.zeros(0, dtype=np.float64)
        return arr, (np.asarray(keys, dtype=np.int64) if keys else None), shape
    raise RecordIOError("Value holds no supported tensor")


def _decode_map(buf: memoryview) -> tuple[str, memoryview]:
    key = ""
    value: memoryview | None = None
    for field_no, wire, payload in _fields(buf):
        assert isinstance(payload, (memoryview, int))
        if field_no == 1 and wire == 2 and isinstance(payload, memoryview):
            key = bytes(payload).decode("utf-8")
        elif field_no == 2 and wire == 2 and isinstance(payload, memoryview):
            value = payload
    if value is None:
        raise RecordIOError("map entry without a value")
    return key, value


def _decode_record_slow(payload: memoryview, dim: int | None) -> tuple[np.ndarray, float | None]:
    features: np.ndarray | None = None
    label: float | None = None
    for field_no, wire, entry in _fields(payload):
        if wire != 2 or not isinstance(entry, memoryview):
            continue
        key, value = _decode_map(entry)
        if key != "values":
            continue
        vals, keys, shape = _decode_value(value)
        if field_no == 1:
            if keys is None and shape and vals.size != int(np.prod(shape)):
                keys = np.zeros(0, dtype=np.int64)  # sparse row with no non-zeros
            if keys is not None:
                width = dim if dim is not None else (int(shape[0]) if shape else None)
                if width is None:
                    raise RecordIOError("sparse record without shape or feature_dim")
                if keys.size and (keys.max() >= width):
                    raise RecordIOError(f"sparse key {int(keys.max())} >= {width}")
                dense = np.zeros(width, dtype=np.float64)
                dense[keys] = vals
                features = dense
            else:
                features = vals
        elif field_no == 2:
            if vals.size != 1:
                raise RecordIOError(f"label must hold one value, got {vals.size}")
            label = float(vals[0])
    if features is None:
        raise RecordIOError("record has no 'values' features")
    return features, label


def decode(
    data: bytes | memoryview, feature_dim: int | None = None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]:
    """Decode recordIO-protobuf into ``(features (N, D) float32, labels (N,) or
    None)``. Dense float32 files written by :func:`write_dense` (or the SDK)
    take a vectorised path; anything else is parsed record by record."""
    view = memoryview(data)
    fast = _decode_fast(view)
    if fast is not None:
        feats, labs = fast
        if feature_dim is not None and feats.shape[1] != feature_dim:
            raise RecordIOError(
                f"records have {feats.shape[1]} features, expected feature_dim={feature_dim}"
            )
        return feats, labs
    payloads = split_records(view)
    if not payloads:
        return np.zeros((0, feature_dim or 0), dtype=np.float32), None
    rows: list[np.ndarray] = []
    labels: list[float] = []
    has_labels: bool | None = None
    for i, p in enumerate(payloads):
        feat, lab = _decode_record_slow(p, feature_dim)
        if feature_dim is not None and feat.size != feature_dim:
            raise RecordIOError(
                f"record {i} has {feat.size} features, expected feature_dim={feature_dim}"
            )
        if has_labels is None:
            has_labels = lab is not None
        elif has_labels != (lab is not None):
            raise RecordIOError(f"record {i}: labels present on some records only")
        rows.append(feat)
        if lab is not None:
            labels.append(lab)
    widths = {r.size for r in rows}
    if len(widths) != 1:
        raise RecordIOError(f"records have differing feature counts {sorted(widths)}")
    feats_out = np.vstack(rows).astype(np.float32)
    labs_out = np.asarray(labels, dtype=np.float32) if has_labels else None
    return feats_out, labs_out


def _decode_fast(
    view: memoryview,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None] | None:
    """Vectorised decode when every record has the dense layout we write."""
    if len(view) < 8:
        return None
    magic, length = struct.unpack_from("<II", view, 0)
    if magic != MAGIC or length >> 29:
        return None
    padded = 8 + ((length + 3) & ~3)
    if len(view) % padded:
        return None
    first = bytes(view[8 : 8 + length])
    for with_label in (True, False):
        # Find the feature width from the first record's layout.
        dim = _guess_dim(first, with_label)
        if dim is None:
            continue
        lay = _layout(dim, with_label)
        if lay.payload_len != length or lay.record_len != padded:
            continue
        rows = len(view) // padded
        arr = np.frombuffer(view, dtype=np.uint8).reshape(rows, padded)
        head = _MAGIC_BYTES + struct.pack("<I", length) + lay.feature_head
        if not (arr[:, : len(head)] == np.frombuffer(head, dtype=np.uint8)).all():
            return None
        pos = len(head)
        feats = arr[:, pos : pos + 4 * dim].copy().view("<f4").reshape(rows, dim)
        pos += 4 * dim
        labs = None
        if with_label:
            lh = np.frombuffer(lay.label_head, dtype=np.uint8)
            if not (arr[:, pos : pos + len(lh)] == lh).all():
                return None
            pos += len(lh)
            labs = arr[:, pos : pos + 4].copy().view("<f4").reshape(rows)
            pos += 4
        if pos < padded and arr[:, pos:].any():
            return None
        return feats.astype(np.float32, copy=False), (
            None if labs is None else labs.astype(np.float32, copy=False)
        )
    return None


def _guess_dim(first: bytes, with_label: bool) -> int | None:
    label_len = _field_layout(0x12, 1)[1] if with_label else 0
    feat_total = len(first) - label_len
    # Feature field size is monotonic in dim; search the few candidate dims.
    lo, hi = 1, max(1, feat_total // 4)
    while lo <= hi:
        mid = (lo + hi) // 2
        size = _field_layout(0x0A, mid)[1]
        if size == feat_total:
            return mid
        if size < feat_total:
            lo = mid + 1
        else:
            hi = mid - 1
    return None
