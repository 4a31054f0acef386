"""Inference request parsing and response rendering (Linear Learner's contract).

Requests: ``text/csv`` (features only, one row per line),
``application/json`` (``{"instances": [{"features": [...]}]}`` or
``{"instances": [{"data": {"features": {"values": [...]}}}]}``) and
``application/x-recordio-protobuf``. Responses: ``application/json``
``{"predictions": [{"score": 0.97, "predicted_label": 1}, ...]}`` or
``application/jsonlines`` (one prediction object per line).

CSV bodies of 32 KB and more take a vectorised fast path
(:func:`_parse_csv_fast`); smaller ones, and any body the fast path does not
fully understand, go through numpy's C parser (``loadtxt``), which also words
the errors. Both give what ``float()`` gives, cast to float32. Every row must
have exactly ``feature_dim`` values and every value must be finite.
"""

from __future__ import annotations

import io
import json
import re
import struct
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline_core.recordio import RecordIOError, decode
from training.errors import PayloadError

F32 = npt.NDArray[np.float32]

CONTENT_TYPES = ("text/csv", "application/json", "application/x-recordio-protobuf")
ACCEPT_TYPES = ("application/json", "application/jsonlines", "application/x-recordio-protobuf")


def media_type(header: str | None) -> str:
    """``"text/csv; charset=utf-8"`` -> ``"text/csv"``."""
    return (header or "").split(";", 1)[0].strip().lower()


def choose_accept(header: str | None) -> str:
    """The response type for an ``Accept`` header (JSON by default)."""
    if not header or not header.strip():
        return "application/json"
    for part in header.split(","):
        kind = media_type(part)
        if kind in ACCEPT_TYPES:
            return kind
        if kind in ("*/*", "application/*"):
            return "application/json"
    raise PayloadError(
        f"Accept type {header!r} is not supported; use one of {list(ACCEPT_TYPES)}", 406
    )


def parse_features(body: bytes, content_type: str | None, feature_dim: int) -> F32:
    """A ``(rows, feature_dim)`` float32 matrix from a request body, or
    :class:`PayloadError` with a readable message."""
    kind = media_type(content_type)
    if kind == "text/csv":
        x = parse_csv(body, feature_dim)
    elif kind == "application/json":
        x = parse_json(body, feature_dim)
    elif kind == "application/x-recordio-protobuf":
        x = parse_recordio(body, feature_dim)
    else:
        raise PayloadError(
            f"Content type {content_type!r} is not supported; use one of {list(CONTENT_TYPES)}",
            415,
        )
    if not np.isfinite(x).all():
        raise PayloadError("features must be finite numbers (found NaN or infinity)")
    return x


#: Below this a body is cheaper to hand straight to ``loadtxt``.
FAST_CSV_MIN_BYTES = 32 * 1024


def parse_csv(body: bytes, feature_dim: int) -> F32:
    """Rows of ``feature_dim`` comma-separated numbers."""
    text = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").strip()
    if not text:
        raise PayloadError("empty CSV body: send one row of features per line")
    if len(text) >= FAST_CSV_MIN_BYTES:
        fast = _parse_csv_fast(text, feature_dim)
        if fast is not None:
            return fast
    try:
        x = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.float32, ndmin=2, comments=None)
    except ValueError as e:
        raise PayloadError(f"malformed CSV: {_loadtxt_reason(e)}") from None
    if x.shape[1] != feature_dim:
        raise PayloadError(
            f"CSV rows have {x.shape[1]} values, the model expects feature_dim={feature_dim} "
            "(features only, no label column)"
        )
    return x


# -- the CSV fast path ---------------------------------------------------------
#
# A typical body is a batch of MNIST rows from ``format_csv``: 80% of its
# values are a lone "0", the rest mostly "0.992156863"-like. ``loadtxt`` spends
# ~28 ns on every value. Here whole-body byte masks find the separators and skip
# the lone zeros; every other value is read from the 16 bytes that end it, as two
# 64-bit words, with SWAR arithmetic (eight digits per word in a few integer
# operations), giving an exact integer mantissa M and a count F of digits after
# the ".". When M < 2**53, M / 10**F is one correctly rounded division of two
# exact doubles, so it equals float() (Clinger's fast path). Anything else (an
# exponent, more than 16 bytes, a longer mantissa) is read by float() itself,
# and a body with anything unexpected (spaces, an empty value, a wrong column
# count, a non-number) returns None so that loadtxt parses it or words the error.

_U = np.uint64
_W = 16  # bytes read per value
_H7F = _U(0x7F7F7F7F7F7F7F7F)
_H80 = _U(0x8080808080808080)
_ASCII0 = _U(0x3030303030303030)
_DOTS = _U(0x1E1E1E1E1E1E1E1E)  # "." ^ "0" in every byte
_GT9 = _U(0x7676767676767676)  # 0x7F - 9: the high bit shows a byte > 9
_P1 = _U(0x000000FF000000FF)
_M1 = _U(100 + (1_000_000 << 32))
_M2 = _U(1 + (10_000 << 32))
_MOVEMASK = _U(0x0102040810204080)


def _tables() -> tuple[npt.NDArray[np.void], npt.NDArray[np.void], I64]:
    """By value length k: the bytes to keep and the sign's 0x80 flag (16-byte
    windows), and by "." bitmap: digits after the "." (-1: several)."""
    keep = np.zeros((_W + 1, _W), dtype=np.uint8)
    sign = np.zeros((_W + 1, _W), dtype=np.uint8)
    for k in range(1, _W + 1):
        keep[k, _W - k :] = 0xFF
        sign[k, _W - k] = 0x80
    frac = np.full(1 << _W, -1, dtype=np.int64)
    frac[0] = 0
    for p in range(_W):
        frac[1 << p] = _W - 1 - p
    return keep.view("V16").ravel(), sign.view("V16").ravel(), frac


_POW10_I = 10 ** np.arange(_W + 1, dtype=np.int64)
_POW10_F = 10.0 ** np.arange(_W + 1)
_EXACT = 2**53
_SLOW_TOKEN = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
#: More values than this outside the fast path: loadtxt is quicker than float().
_MAX_SLOW = 256
_CHUNK = 2048  # values read at once: larger temporaries page-fault (see _scratch)
_scratch_local = threading.local()
#: Larger buffers are not kept (at most 5 x this per thread: the server parses
#: bodies up to 1 MB on its event loop, bigger ones in pool threads).
_SCRATCH_MAX = 1536 * 1024

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
_KEEP, _SIGN, _FRAC = _tables()


def _scratch(size: int) -> npt.NDArray[np.uint8]:
    """Five byte buffers per thread, reused: fresh arrays this size are page faults."""
    bufs: npt.NDArray[np.uint8] | None = getattr(_scratch_local, "bufs", None)
    if bufs is None or bufs.shape[1] < size:
        bufs = np.empty((5, max(size * 5 // 4, 1 << 16)), dtype=np.uint8)
        if bufs.shape[1] > _SCRATCH_MAX:
            bufs = np.empty((5, size), dtype=np.uint8)
        else:
            _scratch_local.bufs = bufs
    return bufs


def _parse_csv_fast(body: bytes, feature_dim: int) -> F32 | None:
    """``body`` (stripped, ``\\n`` line ends) as a float32 matrix, or ``None``
    when it holds anything the fast path does not handle."""
    n = len(body)
    if n == 0 or feature_dim < 1:
        return None
    scratch = _scratch(n + _W + 1)
    e = scratch[0, : n + _W + 1]
    e[:_W] = 44
    e[_W : _W + n] = np.frombuffer(body, dtype=np.uint8)
    e[_W + n] = 44
    buf = e[_W - 1 :]  # "," + body + ","
    sep = scratch[1, : n + 2].view(bool)
    newline = scratch[2, : n + 2].view(bool)
    tmp = scratch[3, : n + 2].view(bool)
    np.equal(buf, 44, out=sep)
    np.equal(buf, 10, out=newline)
    np.logical_or(sep, newline, out=sep)
    np.logical_and(sep[1:], sep[:-1], out=tmp[1:])
    if tmp[1:].any():
        return None  # an empty value or a blank line
    sl, sc, sr = sep[:-2], sep[1:-1], sep[2:]  # before, at and after each body byte
    nl = np.flatnonzero(newline[1:-1])
    # the value index of a byte is the number of separators before it: a prefix
    # popcount over 64-bit words of the separator bitmap
    bits = np.zeros((n + 127) // 64 * 8, dtype=np.uint8)
    packed = np.packbits(sc, bitorder="little")
    bits[: packed.size] = packed
    words64: U64 = bits.view("<u8")
    cum = np.zeros(words64.size + 1, dtype=np.int64)
    np.cumsum(np.bitwise_count(words64), out=cum[1:])
    count = int(cum[-1]) + 1
    rows, rem = divmod(count, feature_dim)
    if rem:
        return None

    def value_index(pos: I64) -> I64:
        w = pos >> 6
        below = (_U(1) << (pos & 63).astype(np.uint64)) - _U(1)
        out: I64 = cum[w] + np.bitwise_count(words64[w] & below)
        return out

    if nl.size != rows - 1 or (value_index(nl) != np.arange(1, rows) * feature_dim - 1).any():
        return None  # rows of different lengths
    skip = scratch[4, :n].view(bool)
    np.equal(buf[1:-1], 48, out=skip)
    np.logical_and(skip, sl, out=skip)
    np.logical_and(skip, sr, out=skip)
    np.logical_or(skip, sc, out=skip)  # separators and lone "0" values
    mark = newline[: n + 1]  # no longer needed as newlines
    np.greater(sl, skip, out=mark[:n])  # the first byte of each value to read
    mark[n] = False
    ends = tmp[:n]
    np.greater(sr, skip, out=ends)  # the last byte: mark the separator after it
    np.logical_or(mark[1:], ends, out=mark[1:])
    out = np.zeros(count, dtype=np.float32)
    pos = np.flatnonzero(mark)
    if pos.size == 0:
        return out.reshape(rows, feature_dim)
    starts = pos[0::2]
    ends = pos[1::2]
    windows = np.ndarray((e.size - 15,), dtype="V16", buffer=e, strides=(1,))
    hard: list[tuple[int, int, int]] = []
    # in chunks: small temporaries are reused by malloc, large ones page-fault
    for c in range(0, starts.size, _CHUNK):
        start, end = starts[c : c + _CHUNK], ends[c : c + _CHUNK]
        index = value_index(start)
        slow = _read_values(e, windows, start, end, out, index)
        if slow.size:
            if len(hard) + slow.size > _MAX_SLOW:
                return None
            hard += zip(index[slow].tolist(), start[slow].tolist(), end[slow].tolist(), strict=True)
    for i, a, b in hard:
        token = body[a:b]
        if not _SLOW_TOKEN.fullmatch(token):
            return None
        out[i] = float(token)
    return out.reshape(rows, feature_dim)


def _read_values(
    e: npt.NDArray[np.uint8],
    windows: npt.NDArray[np.void],
    start: I64,
    end: I64,
    out: F32,
    index: I64,
) -> I64:
    """Write the values at body offsets ``start:end`` to ``out[index]``; return
    the positions (in ``start``) of those left for ``float()``."""
    length = end - start
    k = np.minimum(length, _W)
    # the 16 bytes ending at each value, as two little-endian words: window
    # byte p (0..15) is byte p % 8 of word p // 8; the value fills bytes 16-k..15
    x: U64 = windows[end].view("<u8").reshape(-1, 2)
    x ^= _ASCII0
    x &= _KEEP[k].view("<u8").reshape(-1, 2)
    first = e[start + _W]
    negative = first == 45
    signed = negative | (first == 43)
    gt9 = ((x & _H7F) + _GT9) | x
    gt9 &= _H80  # 0x80 in each byte that is not a digit
    y = x ^ _DOTS
    dot = ~(((y & _H7F) + _H7F) | y | _H7F)  # 0x80 in each "."
    allowed = dot
    if signed.any():
        allowed = dot | np.where(signed[:, None], _SIGN[k].view("<u8").reshape(-1, 2), _U(0))
    bad = gt9 & ~allowed
    x &= ~((gt9 >> _U(7)) * _U(0xFF))  # now digits only: "." and sign read as 0
    mm = ((dot >> _U(7)) * _MOVEMASK) >> _U(56)  # one bit per byte
    code = mm[:, 0] | (mm[:, 1] << _U(8))
    frac = _FRAC[code]  # digits after the "." (-1: more than one ".")
    has_dot = code != 0
    x = x * _U(10) + (x >> _U(8))  # SWAR: 8 digit bytes -> one number per word
    x = (((x & _P1) * _M1) + (((x >> _U(16)) & _P1) * _M2)) >> _U(32)
    mant: I64 = (x[:, 0] * _U(100_000_000) + x[:, 1]).view(np.int64)
    slow = (length > _W) | (bad[:, 0] != 0) | (bad[:, 1] != 0) | (frac < 0)
    slow |= k - signed - has_dot < 1  # no digit at all
    np.maximum(frac, 0, out=frac)
    right = mant % _POW10_I[frac]
    mant = np.where(has_dot, right + (mant - right) // 10, mant)  # drop the "."'s 0
    slow |= mant >= _EXACT
    value = mant / _POW10_F[frac]
    np.negative(value, out=value, where=negative)
    out[index] = value
    positions: I64 = np.flatnonzero(slow)
    return positions


def _loadtxt_reason(error: ValueError) -> str:
    text = str(error)
    if "number of columns changed" in text:
        return text.split(";", 1)[0] + " (every row needs the same number of values)"
    return text


def parse_json(body: bytes, feature_dim: int) -> F32:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PayloadError(f"malformed JSON: {e}") from None
    instances = doc.get("instances") if isinstance(doc, dict) else None
    if not isinstance(instances, list) or not instances:
        raise PayloadError(
            'JSON body must be {"instances": [{"features": [...]}, ...]} '
            '(or {"instances": [{"data": {"features": {"values": [...]}}}]})'
        )
    rows: list[Any] = []
    for i, inst in enumerate(instances):
        feats = inst.get("features") if isinstance(inst, dict) else None
        if feats is None and isinstance(inst, dict) and isinstance(inst.get("data"), dict):
            inner = inst["data"].get("features")
            feats = inner.get("values") if isinstance(inner, dict) else None
        if not isinstance(feats, list):
            raise PayloadError(f"instance {i} has no features list")
        if len(feats) != feature_dim:
            raise PayloadError(
                f"instance {i} has {len(feats)} features, the model expects "
                f"feature_dim={feature_dim}"
            )
        rows.append(feats)
    try:
        x = np.array(rows, dtype=np.float32)
    except (TypeError, ValueError):
        raise PayloadError("features must be numbers") from None
    if x.shape != (len(rows), feature_dim):
        raise PayloadError("features must be flat lists of numbers")
    return x


def parse_recordio(body: bytes, feature_dim: int) -> F32:
    if not body:
        raise PayloadError("empty recordIO-protobuf body")
    try:
        x, _ = decode(body, feature_dim)
    except RecordIOError as e:
        raise PayloadError(f"malformed recordIO-protobuf: {e}") from None
    if x.shape[0] == 0:
        raise PayloadError("recordIO-protobuf body holds no records")
    return x


def render(scores: F32, labels: npt.NDArray[np.int8], accept: str) -> bytes:
    """Serialise predictions as ``accept`` (``application/json``, ``jsonlines``
    or ``application/x-recordio-protobuf``). A score that is not finite (a
    hinge model's decision value overflows float32 on huge inputs) cannot be
    written as JSON: the request is refused (400) naming the row."""
    finite = np.isfinite(scores)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise PayloadError(
            f"the score of row {row} is not finite: the input is outside the range "
            "the model can score"
        )
    if accept == "application/x-recordio-protobuf":
        return render_recordio(scores, labels)
    items = [
        f'{{"score":{s!r},"predicted_label":{lab}}}'
        for s, lab in zip(scores.astype(np.float64).tolist(), labels.tolist(), strict=True)
    ]
    if accept == "application/jsonlines":
        return ("\n".join(items) + "\n").encode()
    return ('{"predictions":[' + ",".join(items) + "]}").encode()


def _pb_len(tag: int, payload: bytes) -> bytes:
    size = len(payload)
    varint = bytearray()
    while True:
        byte = size & 0x7F
        size >>= 7
        varint.append(byte | 0x80 if size else byte)
        if not size:
            break
    return bytes([tag]) + bytes(varint) + payload


def _label_entry(key: str, value: float) -> bytes:
    """One ``Record.label`` map entry: ``key`` -> Value{float32_tensor{values: [value]}}."""
    tensor = _pb_len(0x0A, np.float32(value).astype("<f4").tobytes())  # values, packed
    entry = _pb_len(0x0A, key.encode()) + _pb_len(0x12, _pb_len(0x12, tensor))
    return _pb_len(0x12, entry)  # Record.label (field 2)


def render_recordio(scores: F32, labels: npt.NDArray[np.int8]) -> bytes:
    """Linear Learner's recordIO-protobuf response: one ``Record`` per row whose
    ``label`` map holds ``predicted_label`` and ``score`` (what the SDK's
    ``LinearLearnerPredictor`` reads with ``RecordDeserializer``)."""
    out = bytearray()
    for score, label in zip(scores.tolist(), labels.tolist(), strict=True):
        payload = _label_entry("predicted_label", float(label)) + _label_entry("score", score)
        out += struct.pack("<II", 0xCED7230A, len(payload)) + payload
        out += b"\x00" * (-len(payload) % 4)
    return bytes(out)
