"""Typed checks of the fields of a CreateHyperParameterTuningJob request.

Each check returns the field's value or raises
:class:`~training.errors.TuningRequestError` naming the field, so a bad
request fails before any training job starts.
"""

from __future__ import annotations

import math
from typing import Any

from training.errors import TuningRequestError


def string(value: Any, what: str) -> str:
    """``value`` if it is a string."""
    if not isinstance(value, str):
        raise TuningRequestError(f"{what} must be a string, got {value!r}")
    return value


def number(value: Any, what: str, integer: bool) -> float:
    """A finite number (an integer with ``integer``) given as a string."""
    raw = string(value, what)
    try:
        parsed = float(int(raw)) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise TuningRequestError(f"{what} must be {kind} as a string, got {raw!r}") from None
    if not math.isfinite(parsed):
        raise TuningRequestError(f"{what} must be finite")
    return parsed


def positive_int(value: Any, what: str) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) of at least 1."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TuningRequestError(f"{what} must be a positive integer")
    return value
