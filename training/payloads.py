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
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline_core.recordio import RecordIOError, decode
from training.errors import PayloadError

F32 = npt.NDArray[np.float32]

CONTENT_TYPES = ("text/csv", "application/json", "application/x-recordio-protobuf")
ACCEPT_TYPES = ("application/json", "application/jsonlines")


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
_ALL = _U(0xFFFFFFFFFFFFFFFF)
_P1 = _U(0x000000FF000000FF)
_M1 = _U(100 + (1_000_000 << 32))
_M2 = _U(1 + (10_000 << 32))
_POW10_I = 10 ** np.arange(_W + 1, dtype=np.int64)
_POW10_F = 10.0 ** np.arange(_W + 1)
_EXACT = 2**53
_SLOW_TOKEN = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
#: More values than this outside the fast path: loadtxt is quicker than float().
_MAX_SLOW = 256
_scratch_local = threading.local()
_SCRATCH_MAX = 8 * 1024 * 1024

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


def _scratch(size: int) -> npt.NDArray[np.uint8]:
    """Five byte buffers per thread, reused: fresh arrays this size are page faults."""
    bufs: npt.NDArray[np.uint8] | None = getattr(_scratch_local, "bufs", None)
    if bufs is None or bufs.shape[1] < size:
        bufs = np.empty((5, max(size, 1 << 16) * 5 // 4), dtype=np.uint8)
        if bufs.shape[1] <= _SCRATCH_MAX:
            _scratch_local.bufs = bufs
    return bufs


def _keep_low(v: U64, nbytes: I64) -> U64:
    """``v`` with all but its ``nbytes`` (0..8) low bytes cleared."""
    shift = (np.clip(nbytes, 0, 8) * 8).astype(np.uint64)
    mask: U64 = np.where(shift >= 64, _ALL, (_U(1) << shift) - _U(1))
    return v & mask


def _digits8(v: U64) -> U64:
    """Eight digit bytes (0..9, most significant first in a big-endian word) as a number."""
    v = v.byteswap()  # the first character into the low byte
    v = v * _U(10) + (v >> _U(8))
    out: U64 = (((v & _P1) * _M1) + (((v >> _U(16)) & _P1) * _M2)) >> _U(32)
    return out


def _zero_bytes(v: U64) -> U64:
    """0x80 in each byte of ``v`` that is 0, else 0 (exact: no borrows between bytes)."""
    out: U64 = ~(((v & _H7F) + _H7F) | v | _H7F)
    return out


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
    start = pos[0::2]
    end = pos[1::2]
    length = end - start
    k = np.minimum(length, _W)
    # the 16 bytes ending at each value's end, as big-endian words (hi, lo)
    words = np.ndarray((e.size - 7,), dtype=">u8", buffer=e, strides=(1,))
    hi = _keep_low(words[end].astype(np.uint64) ^ _ASCII0, k - 8)
    lo = _keep_low(words[end + 8].astype(np.uint64) ^ _ASCII0, k)
    first = e[start + _W]
    negative = first == 45
    signed = negative | (first == 43)
    if signed.any():  # clear the sign byte (it is the first of the k kept bytes)
        in_lo = k <= 8
        shift = (np.where(in_lo, k - 1, k - 9) * 8).astype(np.uint64)
        sign = np.where(signed, (np.where(in_lo, lo, hi) >> shift) & _U(0xFF), _U(0)) << shift
        lo -= np.where(in_lo, sign, _U(0))
        hi -= np.where(in_lo, _U(0), sign)
    dot_hi = _zero_bytes(hi ^ _DOTS)
    dot_lo = _zero_bytes(lo ^ _DOTS)
    bad = ((((hi & _H7F) + _GT9) | hi) & _H80 & ~dot_hi) | (
        (((lo & _H7F) + _GT9) | lo) & _H80 & ~dot_lo
    )
    dots = np.bitwise_count(dot_hi).astype(np.int64) + np.bitwise_count(dot_lo)
    slow = (length > _W) | (bad != 0) | (dots > 1) | (k - signed - dots < 1)
    hi ^= (dot_hi >> _U(7)) * _U(0x1E)  # the "." becomes a 0 digit
    lo ^= (dot_lo >> _U(7)) * _U(0x1E)
    mant: I64 = (_digits8(hi) * _U(100_000_000) + _digits8(lo)).view(np.int64)
    # digits after the ".": bytes below its 0x80 flag
    frac = np.where(
        dot_lo != 0,
        (np.bitwise_count(dot_lo - _U(1)).astype(np.int64) - 7) >> 3,
        np.where(
            dot_hi != 0, ((np.bitwise_count(dot_hi - _U(1)).astype(np.int64) - 7) >> 3) + 8, 0
        ),
    )
    has_dot = dots == 1
    right = mant % _POW10_I[frac]
    mant = np.where(has_dot, right + (mant - right) // 10, mant)
    slow |= (mant >= _EXACT) | (mant < 0)
    value = mant / _POW10_F[frac]
    np.negative(value, out=value, where=negative)
    index = value_index(start)
    out[index] = value
    hard = np.flatnonzero(slow)
    if hard.size:
        if hard.size > _MAX_SLOW:
            return None
        for i, a, b in zip(
            index[hard].tolist(), start[hard].tolist(), end[hard].tolist(), strict=True
        ):
            token = body[a:b]
            if not _SLOW_TOKEN.fullmatch(token):
                return None
            out[i] = float(token)
    return out.reshape(rows, feature_dim)


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
    """Serialise predictions as ``accept`` (``application/json`` or ``jsonlines``)."""
    items = [
        f'{{"score":{s!r},"predicted_label":{lab}}}'
        for s, lab in zip(scores.astype(np.float64).tolist(), labels.tolist(), strict=True)
    ]
    if accept == "application/jsonlines":
        return ("\n".join(items) + "\n").encode()
    return ('{"predictions":[' + ",".join(items) + "]}").encode()
