"""Shared pieces of the benchmarks: timing, the result record, the dataset."""

from __future__ import annotations

import gc
import gzip
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from bench.load import LoadRecord

T = TypeVar("T")


@dataclass
class Measure:
    """One row of BENCHMARKS.md."""

    name: str
    metric: str
    baseline_name: str
    baseline: float | None
    ours: float
    unit: str
    goal: str
    met: bool | None
    details: dict[str, Any] = field(default_factory=dict)
    #: For rates (rows/s): a larger ``ours`` is better.
    higher_is_better: bool = False
    #: A short line for the summary table (quality numbers and such).
    note: str = ""
    #: False where the baseline is context, not a contender (e.g. a price).
    show_ratio: bool = True
    #: The 1-minute load around the measure (``make bench`` sets it).
    load: LoadRecord | None = None

    @property
    def ratio(self) -> float | None:
        """How many times better ours is than the baseline (> 1: ours better)."""
        if not self.show_ratio or self.baseline is None or self.ours == 0 or self.baseline == 0:
            return None
        return self.ours / self.baseline if self.higher_is_better else self.baseline / self.ours


def best_of(fn: Callable[[], T], repeat: int = 3) -> tuple[float, T]:
    """Minimum wall time over ``repeat`` runs (the least noisy estimate here)."""
    best = float("inf")
    result: T | None = None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    assert result is not None
    return best, result


def load_tutorial_split(path: Path, target: int = 0) -> dict[str, np.ndarray]:
    """The tutorial's split with label 1 for ``target``."""
    with gzip.open(path, "rb") as fh:
        (tx, ty), (vx, vy), (sx, sy) = pickle.load(fh)

    def lab(y: np.ndarray) -> np.ndarray:
        out: np.ndarray = (np.asarray(y) == target).astype(np.float32)
        return out

    return {
        "train_x": np.asarray(tx, dtype=np.float32),
        "train_y": lab(ty),
        "valid_x": np.asarray(vx, dtype=np.float32),
        "valid_y": lab(vy),
        "test_x": np.asarray(sx, dtype=np.float32),
        "test_y": lab(sy),
    }


def confusion(actual: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    a = actual.astype(bool)
    p = predicted.astype(bool)
    tp = int(np.sum(a & p))
    fp = int(np.sum(~a & p))
    fn = int(np.sum(a & ~p))
    tn = int(np.sum(~a & ~p))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "accuracy": (tp + tn) / len(a),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }
