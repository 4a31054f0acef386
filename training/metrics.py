"""Binary-classification metrics and decision-threshold calibration.

Metric names match what Linear Learner emits (``validation:binary_f_beta``
...). A row is predicted positive when ``score >= threshold``. With the
logistic loss ``score`` is P(label = 1), the sigmoid of the linear output;
with ``hinge_loss`` it is the linear output itself (an SVM's decision value,
which has no probability meaning). Everything here is vectorised numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from training.hyperparameters import Criterion, Loss

FloatArray = npt.NDArray[Any]

#: SageMaker metric suffixes, in the order they are logged.
METRIC_KEYS = (
    "binary_f_beta",
    "binary_classification_accuracy",
    "precision",
    "recall",
    "roc_auc_score",
    "objective_loss",
)


def sigmoid(logits: FloatArray) -> npt.NDArray[np.float32]:
    """Numerically stable logistic function, float32 out."""
    z = np.asarray(logits, dtype=np.float32)
    out = np.empty_like(z)
    np.negative(np.abs(z), out=out)
    np.exp(out, out=out)  # e = exp(-|z|) in (0, 1]
    pos = z >= 0
    # z >= 0: 1 / (1 + e); z < 0: e / (1 + e)
    denom = 1.0 + out
    np.divide(np.where(pos, np.float32(1.0), out), denom, out=out)
    return out


def log_loss_from_logits(
    labels: FloatArray, logits: FloatArray, weights: FloatArray | None = None
) -> float:
    """Mean logistic loss ``log(1 + e^z) - y z`` (weighted mean if ``weights``)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    losses = np.logaddexp(0.0, z) - y * z
    if weights is None:
        return float(losses.mean()) if losses.size else float("nan")
    w = np.asarray(weights, dtype=np.float64)
    return float((losses * w).sum() / w.sum())


def hinge_loss_from_logits(
    labels: FloatArray, logits: FloatArray, margin: float = 1.0, weights: FloatArray | None = None
) -> float:
    """Mean hinge loss ``max(0, margin - t z)`` with ``t = 2 y - 1`` in {-1, +1}."""
    z = np.asarray(logits, dtype=np.float64)
    t = 2.0 * np.asarray(labels, dtype=np.float64) - 1.0
    losses = np.maximum(margin - t * z, 0.0)
    if weights is None:
        return float(losses.mean()) if losses.size else float("nan")
    w = np.asarray(weights, dtype=np.float64)
    return float((losses * w).sum() / w.sum())


def objective_loss(
    labels: FloatArray, logits: FloatArray, loss: Loss = "logistic", margin: float = 1.0
) -> float:
    """The training loss's mean over these rows (the ``objective_loss`` metric)."""
    if loss == "hinge_loss":
        return hinge_loss_from_logits(labels, logits, margin)
    return log_loss_from_logits(labels, logits)


def scores_from_logits(logits: FloatArray, loss: Loss = "logistic") -> npt.NDArray[np.float32]:
    """What a prediction's ``score`` is: the sigmoid for the logistic loss, the
    linear output itself for ``hinge_loss``."""
    if loss == "hinge_loss":
        return np.array(logits, dtype=np.float32)
    return sigmoid(logits)


def neutral_threshold(loss: Loss = "logistic") -> float:
    """The uncalibrated decision threshold: P = 1/2, or the hinge's 0."""
    return 0.0 if loss == "hinge_loss" else 0.5


def roc_auc(labels: FloatArray, scores: FloatArray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied ranks averaged).
    NaN when only one class is present."""
    y = np.asarray(labels) > 0.5
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts, dtype=np.float64)
    mid_rank = upper - (counts - 1) / 2.0  # 1-based average rank of each distinct score
    pos_rank_sum = float(mid_rank[inverse[y]].sum())
    return (pos_rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _f_beta(precision: FloatArray, recall: FloatArray, beta: float) -> npt.NDArray[np.float64]:
    b2 = beta * beta
    num = (1.0 + b2) * precision * recall
    den = b2 * precision + recall
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


@dataclass(frozen=True)
class BinaryMetrics:
    """Validation (or training) metrics at one decision threshold."""

    binary_f_beta: float
    binary_classification_accuracy: float
    precision: float
    recall: float
    roc_auc_score: float
    objective_loss: float
    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int

    def named(self, prefix: str) -> dict[str, float]:
        """``{"<prefix>:binary_f_beta": ..., ...}`` as SageMaker names them."""
        return {f"{prefix}:{key}": float(getattr(self, key)) for key in METRIC_KEYS}


def binary_metrics(
    labels: FloatArray,
    logits: FloatArray,
    threshold: float,
    beta: float = 1.0,
    scores: FloatArray | None = None,
    *,
    loss: Loss = "logistic",
    margin: float = 1.0,
) -> BinaryMetrics:
    """All Linear Learner binary metrics for ``logits`` at ``threshold`` (on
    the score scale of ``loss``; ``objective_loss`` is that loss's mean).
    Precision (recall) is 0 when nothing is predicted (nothing is) positive."""
    y = np.asarray(labels) > 0.5
    s = scores_from_logits(logits, loss) if scores is None else np.asarray(scores, dtype=np.float32)
    pred = s >= np.float32(threshold)
    tp = int(np.count_nonzero(pred & y))
    fp = int(np.count_nonzero(pred & ~y))
    fn = int(np.count_nonzero(~pred & y))
    tn = int(y.size - tp - fp - fn)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f = float(_f_beta(np.asarray(precision), np.asarray(recall), beta))
    return BinaryMetrics(
        binary_f_beta=f,
        binary_classification_accuracy=(tp + tn) / y.size if y.size else float("nan"),
        precision=precision,
        recall=recall,
        roc_auc_score=roc_auc(y, s),
        objective_loss=objective_loss(y, logits, loss, margin),
        threshold=float(threshold),
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
    )


def calibrate_threshold(
    labels: FloatArray,
    scores: FloatArray,
    criterion: Criterion,
    *,
    beta: float = 1.0,
    target_precision: float = 0.8,
    target_recall: float = 0.8,
    loss: Loss = "logistic",
) -> float:
    """The decision threshold that optimises ``criterion`` on these labels.

    - ``accuracy`` / ``f_beta``: maximise that metric;
    - ``precision_at_target_recall``: maximise precision with recall >= target
      (if no threshold reaches the target, maximise accuracy);
    - ``recall_at_target_precision``: maximise recall with precision >= target
      (if no threshold reaches the target, maximise precision);
    - ``loss_function``: :func:`neutral_threshold` (the model is chosen by
      loss, the label by P >= 1/2, or by the hinge's decision value >= 0).

    Among equally good thresholds the middle one is taken, and the threshold
    sits halfway between the neighbouring scores, so the calibration data are
    classified exactly as optimised and nearby scores fall the same way.
    """
    if criterion == "loss_function":
        return neutral_threshold(loss)
    s = np.asarray(scores, dtype=np.float32)
    y = np.asarray(labels) > 0.5
    n = s.size
    if n == 0:
        return neutral_threshold(loss)
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    y_sorted = y[order]
    tp = np.concatenate(([0], np.cumsum(y_sorted, dtype=np.int64)))
    fp = np.arange(n + 1, dtype=np.int64) - tp
    n_pos = int(tp[-1])
    n_neg = n - n_pos
    # Cutting after k rows is only possible where the score changes.
    cut_ok = np.ones(n + 1, dtype=bool)
    cut_ok[1:n] = s_sorted[:-1] != s_sorted[1:]
    k = np.flatnonzero(cut_ok)
    tp_k = tp[k].astype(np.float64)
    fp_k = fp[k].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(k > 0, tp_k / np.maximum(k, 1), 0.0)
        recall = tp_k / n_pos if n_pos else np.zeros_like(tp_k)
    accuracy = (tp_k + (n_neg - fp_k)) / n
    objective: npt.NDArray[np.float64]
    if criterion == "accuracy":
        objective = accuracy
    elif criterion == "f_beta":
        objective = _f_beta(precision, recall, beta)
    elif criterion == "precision_at_target_recall":
        feasible = recall >= target_recall - 1e-12
        objective = np.where(feasible, precision, -1.0) if feasible.any() else accuracy
    elif criterion == "recall_at_target_precision":
        feasible = precision >= target_precision - 1e-12
        objective = np.where(feasible, recall, -1.0) if feasible.any() else precision
    else:  # pragma: no cover - Criterion is a closed Literal
        raise ValueError(f"unknown criterion {criterion}")
    best = objective.max()
    tied = np.flatnonzero(objective >= best - 1e-12)
    cut = int(k[tied[len(tied) // 2]])
    return _threshold_for_cut(s_sorted, cut)


def _threshold_for_cut(s_sorted: npt.NDArray[np.float32], cut: int) -> float:
    """A float32 threshold ``t`` with exactly the top ``cut`` scores ``>= t``."""
    n = s_sorted.size
    if cut == 0:
        return float(np.nextafter(s_sorted[0], np.float32(np.inf)))
    if cut == n:
        return float(s_sorted[-1])
    hi, lo = s_sorted[cut - 1], s_sorted[cut]
    mid = np.float32((np.float64(hi) + np.float64(lo)) / 2.0)
    if not lo < mid <= hi:
        mid = hi
    return float(mid)
