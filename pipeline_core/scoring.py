"""Threshold-free metrics of a scored test set, with numpy only (the Lambda
has no scikit-learn): ROC and precision-recall curves, their areas, a
threshold sweep and a calibration table. docs/REPORT.md defines each number.

The model predicts 1 when ``score >= threshold``; every curve here treats a
threshold the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

#: The sweep table's fixed thresholds: 0.05, 0.10, ..., 0.95.
SWEEP = tuple(round(0.05 * i, 2) for i in range(1, 20))
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class Scored:
    """Every test record in test order: its 0/1 label, the model's score and
    its predicted label."""

    labels: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float64]
    predicted: npt.NDArray[np.int64]

    @classmethod
    def of(cls, labels: npt.ArrayLike, scores: npt.ArrayLike, predicted: npt.ArrayLike) -> Scored:
        return cls(
            np.asarray(labels).astype(np.int64),
            np.asarray(scores, dtype=np.float64),
            np.asarray(predicted).astype(np.int64),
        )

    def csv(self) -> bytes:
        """``predictions.csv``: header ``label,score,predicted_label``, a row per
        record; ``repr`` keeps each score exactly as the model answered it."""
        rows = map(
            "{},{!r},{}".format, self.labels.tolist(), self.scores.tolist(), self.predicted.tolist()
        )
        return ("label,score,predicted_label\n" + "\n".join(rows) + "\n").encode("ascii")


def _descending(
    labels: npt.NDArray[np.int64], scores: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """At each distinct score, highest first: (threshold, true positives,
    false positives) of predicting 1 for ``score >= threshold``."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the end of each tie group
    tps = np.cumsum(y)[last].astype(np.float64)
    return s[last], tps, (last + 1) - tps


def roc_auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float | None:
    """The area under the ROC curve as the Mann-Whitney rank statistic (tied
    scores share their average rank, i.e. a tie counts one half). ``None``
    with only one class."""
    y = np.asarray(labels).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(s, kind="stable")
    sorted_s = s[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], len(s)]
    average = (starts + ends + 1) / 2.0  # 1-based ranks, averaged over each tie group
    ranks = np.empty(len(s), dtype=np.float64)
    ranks[order] = np.repeat(average, ends - starts)
    rank_sum = float(ranks[y == 1].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def average_precision(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float | None:
    """The area under the precision-recall curve as average precision,
    ``sum_k (R_k - R_k-1) * P_k`` over distinct thresholds (no interpolation,
    as scikit-learn's ``average_precision_score``). ``None`` without positives."""
    y = np.asarray(labels).astype(np.int64)
    positives = int(y.sum())
    if positives == 0:
        return None
    _, tps, fps = _descending(y, np.asarray(scores, dtype=np.float64))
    precision = tps / (tps + fps)
    recall = tps / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_curve(scored: Scored) -> tuple[list[float], list[float]]:
    """(false positive rates, true positive rates) from (0, 0) to (1, 1)."""
    _, tps, fps = _descending(scored.labels, scored.scores)
    positives, negatives = max(tps[-1], 1.0), max(fps[-1], 1.0)
    return [0.0, *(fps / negatives).tolist()], [0.0, *(tps / positives).tolist()]


def pr_curve(scored: Scored) -> tuple[list[float], list[float]]:
    """(recalls, precisions), threshold descending."""
    _, tps, fps = _descending(scored.labels, scored.scores)
    recall = tps / max(tps[-1], 1.0)
    return recall.tolist(), (tps / (tps + fps)).tolist()


def rates(tp: int, fp: int, tn: int, fn: int) -> dict[str, float]:
    """Accuracy, precision, recall and F1; a zero denominator gives 0.0."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    total = tp + fp + tn + fn
    return {
        "accuracy": (tp + tn) / total if total else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def at_threshold(scored: Scored, threshold: float) -> dict[str, Any]:
    """The confusion counts and rates of ``score >= threshold``."""
    predicted = scored.scores >= threshold
    actual = scored.labels == 1
    counts = {
        "tp": int(np.sum(actual & predicted)),
        "fp": int(np.sum(~actual & predicted)),
        "tn": int(np.sum(~actual & ~predicted)),
        "fn": int(np.sum(actual & ~predicted)),
    }
    return {"threshold": float(threshold), **counts, **rates(**counts)}


def sweep(scored: Scored, model_threshold: float | None) -> list[dict[str, Any]]:
    """:data:`SWEEP` and the model's own threshold, ascending; the model's row
    has ``chosen: true``."""
    rows = [{**at_threshold(scored, t), "chosen": False} for t in SWEEP]
    if model_threshold is not None:
        rows.append({**at_threshold(scored, model_threshold), "chosen": True})
    return sorted(rows, key=lambda r: (r["threshold"], r["chosen"]))


def implied_threshold(scored: Scored) -> dict[str, Any]:
    """The threshold the model used, read off its own predictions: it lies in
    ``(highest score predicted 0, lowest score predicted 1]``; ``value`` is the
    upper end, where ``score >= value`` reproduces every prediction. ``value``
    is None when no record was predicted 1 or the predictions do not follow
    one threshold (``consistent`` false)."""
    pos = scored.scores[scored.predicted == 1]
    neg = scored.scores[scored.predicted == 0]
    lowest_positive = float(pos.min()) if len(pos) else None
    highest_negative = float(neg.max()) if len(neg) else None
    consistent = (
        lowest_positive is None
        or highest_negative is None
        or bool(highest_negative < lowest_positive)
    )
    return {
        "value": lowest_positive if consistent else None,
        "lowest_positive_score": lowest_positive,
        "highest_negative_score": highest_negative,
        "consistent": consistent,
    }


def calibration(scored: Scored, bins: int = CALIBRATION_BINS) -> list[dict[str, Any]]:
    """Equal-width bins over [0, 1] (scores outside are clipped into the end
    bins): each bin's record count, mean score and observed rate of label 1."""
    index = np.clip(np.floor(scored.scores * bins), 0, bins - 1).astype(np.int64)
    counts = np.bincount(index, minlength=bins)
    score_sums = np.bincount(index, weights=scored.scores, minlength=bins)
    label_sums = np.bincount(index, weights=scored.labels.astype(np.float64), minlength=bins)
    out: list[dict[str, Any]] = []
    for i in range(bins):
        n = int(counts[i])
        out.append(
            {
                "low": i / bins,
                "high": (i + 1) / bins,
                "count": n,
                "mean_score": float(score_sums[i] / n) if n else None,
                "observed_rate": float(label_sums[i] / n) if n else None,
            }
        )
    return out


def thin(xs: Sequence[float], ys: Sequence[float], limit: int = 400) -> list[tuple[float, float]]:
    """At most about ``limit`` points of a curve, always keeping both ends
    (a drawing needs no more; the areas use every point)."""
    n = len(xs)
    step = max(1, -(-n // limit))
    keep = list(range(0, n, step))
    if keep[-1] != n - 1:
        keep.append(n - 1)
    return [(float(xs[i]), float(ys[i])) for i in keep]
