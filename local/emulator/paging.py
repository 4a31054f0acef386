"""List-call behaviour shared by the local SageMaker's ``List*`` operations:
filters (``NameContains``, ``StatusEquals``, ``CreationTimeAfter``/``Before``,
``LastModifiedTimeAfter``/``Before``), ``SortBy``/``SortOrder`` and paging
with ``MaxResults``/``NextToken``, as the service documents them (``Search``
pages with :func:`cut` too)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from local.emulator.errors import ServiceError

#: SortBy value -> the summary member it sorts on.
SORT_KEYS = {"Name": "Name", "CreationTime": "CreationTime", "Status": "Status"}


def _timestamp(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return float(value)
    return 0.0


def _beyond(value: Any, bound: float, after: bool) -> bool:
    stamp = _timestamp(value)
    return stamp > bound if after else stamp < bound


def page(
    items: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    *,
    name_key: str,
    status_key: str | None = None,
    default_sort: str = "CreationTime",
    default_order: str = "Descending",
) -> tuple[list[dict[str, Any]], str | None]:
    """Filter, sort and cut ``items`` (summaries) for one List call; returns
    the page and the ``NextToken`` for the next one (``None`` at the end)."""
    selected = [dict(i) for i in items]
    contains = params.get("NameContains")
    if contains:
        selected = [i for i in selected if contains.lower() in str(i.get(name_key, "")).lower()]
    status = params.get("StatusEquals")
    if status and status_key:
        selected = [i for i in selected if i.get(status_key) == status]
    for param, key, after in (
        ("CreationTimeAfter", "CreationTime", True),
        ("CreationTimeBefore", "CreationTime", False),
        ("LastModifiedTimeAfter", "LastModifiedTime", True),
        ("LastModifiedTimeBefore", "LastModifiedTime", False),
    ):
        if params.get(param) is not None:
            bound = _timestamp(params[param])
            selected = [i for i in selected if key in i and _beyond(i[key], bound, after)]
    sort_by = params.get("SortBy", default_sort)
    if sort_by == "Name":
        key_of: Any = lambda i: str(i.get(name_key, ""))  # noqa: E731
    elif sort_by == "Status" and status_key:
        key_of = lambda i: str(i.get(status_key, ""))  # noqa: E731
    else:
        key_of = lambda i: _timestamp(i.get("CreationTime"))  # noqa: E731
    order = params.get("SortOrder", default_order)
    selected.sort(key=key_of, reverse=order == "Descending")
    return cut(selected, params)


def cut(
    items: Sequence[Mapping[str, Any]], params: Mapping[str, Any], default_size: int = 100
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of ``items`` (already filtered and sorted) by ``MaxResults`` and
    ``NextToken``; returns it and the ``NextToken`` for the next one."""
    start = _decode_token(params.get("NextToken"))
    size = int(params.get("MaxResults") or default_size)
    chunk = [dict(i) for i in items[start : start + size]]
    more = start + size < len(items)
    return chunk, (_encode_token(start + size) if more else None)


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: Any) -> int:
    if not token:
        return 0
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(str(token).encode()))["offset"])
    except Exception as e:
        raise ServiceError("ValidationException", "Invalid pagination token") from e
    if offset < 0:
        raise ServiceError("ValidationException", "Invalid pagination token")
    return offset


def listing(result_key: str, items: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {result_key: items}
    if token:
        out["NextToken"] = token
    return out
