"""Inference request parsing and response rendering (Linear Learner's contract).

Requests: ``text/csv`` (features only, one row per line),
``application/json`` (``{"instances": [{"features": [...]}]}`` or
``{"instances": [{"data": {"features": {"values": [...]}}}]}``) and
``application/x-recordio-protobuf``. Responses: ``application/json``
``{"predictions": [{"score": 0.97, "predicted_label": 1}, ...]}`` or
``application/jsonlines`` (one prediction object per line).

CSV goes through numpy's C parser (``loadtxt``, the fastest parser numpy
has: about twice ``fromstring``). Every row must have exactly
``feature_dim`` values and every value must be finite.
"""

from __future__ import annotations

import io
import json
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


def parse_csv(body: bytes, feature_dim: int) -> F32:
    """Rows of ``feature_dim`` comma-separated numbers (numpy's C parser)."""
    text = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").strip()
    if not text:
        raise PayloadError("empty CSV body: send one row of features per line")
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
