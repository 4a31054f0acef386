"""The report's metric functions against scikit-learn (a dev dependency only)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline_core import scoring
from pipeline_core.scoring import Scored


def _scores(n: int, seed: int, *, decimals: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(np.int64)
    s = np.clip(0.3 * y + rng.normal(0.35, 0.2, n), 0.0, 1.0)
    if decimals is not None:  # few distinct values: many ties, across classes too
        s = np.round(s, decimals)
    return y, s


@pytest.mark.parametrize(
    ("n", "seed", "decimals"),
    [(1000, 0, None), (1000, 1, 2), (500, 2, 1), (10_000, 3, 3), (7, 4, 0)],
)
def test_auc_and_average_precision_equal_scikit_learn_with_and_without_ties(
    n: int, seed: int, decimals: int | None
) -> None:
    from sklearn.metrics import average_precision_score, roc_auc_score

    y, s = _scores(n, seed, decimals=decimals)
    if y.min() == y.max():
        y[0] = 1 - y[0]
    assert scoring.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-9)
    assert scoring.average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-9)


def test_all_scores_tied_give_auc_one_half_and_ap_the_positive_share() -> None:
    from sklearn.metrics import roc_auc_score

    y = np.array([0, 1, 0, 0, 1, 0])
    s = np.full(6, 0.4)
    assert scoring.roc_auc(y, s) == 0.5 == roc_auc_score(y, s)
    assert scoring.average_precision(y, s) == pytest.approx(2 / 6)


def test_one_class_has_no_auc() -> None:
    assert scoring.roc_auc([0, 0, 0], [0.1, 0.2, 0.3]) is None
    assert scoring.roc_auc([1, 1], [0.1, 0.2]) is None
    assert scoring.average_precision([0, 0], [0.1, 0.2]) is None


def test_curves_run_from_the_origin_to_the_corner() -> None:
    from sklearn.metrics import roc_auc_score

    y, s = _scores(300, 5, decimals=2)
    scored = Scored.of(y, s, s >= 0.5)
    fpr, tpr = scoring.roc_curve(scored)
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc_score(y, s), abs=1e-9)
    recall, precision = scoring.pr_curve(scored)
    assert recall[-1] == 1.0 and precision[-1] == pytest.approx(y.mean())


def test_implied_threshold_reproduces_every_prediction() -> None:
    y, s = _scores(2000, 6)
    predicted = (s >= 0.4213).astype(np.int64)
    scored = Scored.of(y, s, predicted)
    basis = scoring.implied_threshold(scored)
    assert basis["consistent"] and basis["highest_negative_score"] < 0.4213 <= basis["value"]
    row = scoring.at_threshold(scored, basis["value"])
    actual = y == 1
    assert row["tp"] == int(np.sum(actual & (predicted == 1)))
    assert row["fp"] == int(np.sum(~actual & (predicted == 1)))
    assert row["fn"] == int(np.sum(actual & (predicted == 0)))


def test_predictions_that_follow_no_threshold_have_no_implied_one() -> None:
    scored = Scored.of([0, 1, 0], [0.2, 0.3, 0.9], [0, 1, 0])  # 0.9 predicted 0, 0.3 predicted 1
    basis = scoring.implied_threshold(scored)
    assert basis["value"] is None and basis["consistent"] is False
    assert scoring.implied_threshold(Scored.of([0, 1], [0.2, 0.3], [0, 0]))["value"] is None


def test_sweep_has_the_fixed_thresholds_and_marks_the_models_own() -> None:
    y, s = _scores(500, 7)
    rows = scoring.sweep(Scored.of(y, s, s >= 0.52), 0.52)
    assert [r["threshold"] for r in rows if not r["chosen"]] == list(scoring.SWEEP)
    assert len(scoring.SWEEP) == 19 and scoring.SWEEP[0] == 0.05 and scoring.SWEEP[-1] == 0.95
    (chosen,) = [r for r in rows if r["chosen"]]
    assert chosen["threshold"] == 0.52
    assert [r["threshold"] for r in rows] == sorted(r["threshold"] for r in rows)
    assert chosen["tp"] + chosen["fn"] == int(y.sum())


def test_calibration_bins_count_every_record_once() -> None:
    y, s = _scores(1000, 8)
    s[:3] = [-0.5, 1.0, 1.7]  # outside [0, 1): clipped into the end bins
    bins = scoring.calibration(Scored.of(y, s, s >= 0.5))
    assert len(bins) == 10 and sum(b["count"] for b in bins) == 1000
    for b in bins:
        inside = (np.clip(np.floor(s * 10), 0, 9) == round(b["low"] * 10)).nonzero()[0]
        assert b["count"] == len(inside)
        if b["count"]:
            assert b["mean_score"] == pytest.approx(s[inside].mean())
            assert b["observed_rate"] == pytest.approx(y[inside].mean())


def test_predictions_csv_has_a_header_and_a_row_per_record_in_order() -> None:
    scored = Scored.of([1, 0, 0], [0.9300000071525574, 0.1, 1e-07], [1, 0, 0])
    lines = scored.csv().decode().splitlines()
    assert lines == [
        "label,score,predicted_label",
        "1,0.9300000071525574,1",
        "0,0.1,0",
        "0,1e-07,0",
    ]


def test_thin_keeps_both_ends_and_at_most_about_the_limit() -> None:
    xs = list(range(10_001))
    points = scoring.thin(xs, xs, limit=400)
    assert points[0] == (0.0, 0.0) and points[-1] == (10_000.0, 10_000.0)
    assert len(points) <= 402
