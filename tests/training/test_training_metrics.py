from __future__ import annotations

import numpy as np
import pytest

from training.metrics import binary_metrics, calibrate_threshold, roc_auc, sigmoid


def _scores(seed: int, n: int = 200):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.float32)
    logits = (rng.normal(size=n) + 2.0 * (y - 0.5)).astype(np.float32)
    logits[:40] = np.round(logits[:40])  # ties
    return y, logits


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_binary_metrics_match_scikit_learn(beta):
    from sklearn import metrics as skm

    y, z = _scores(0)
    p = sigmoid(z)
    m = binary_metrics(y, z, 0.6, beta)
    pred = (p >= np.float32(0.6)).astype(int)
    assert m.binary_classification_accuracy == pytest.approx(skm.accuracy_score(y, pred))
    assert m.precision == pytest.approx(skm.precision_score(y, pred))
    assert m.recall == pytest.approx(skm.recall_score(y, pred))
    assert m.binary_f_beta == pytest.approx(skm.fbeta_score(y, pred, beta=beta))
    assert m.roc_auc_score == pytest.approx(skm.roc_auc_score(y, p))
    assert m.objective_loss == pytest.approx(skm.log_loss(y, p.astype(np.float64)), rel=1e-5)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    assert (m.tp, m.fp, m.fn, m.tn) == (tp, fp, fn, tn)
    assert set(m.named("validation")) == {
        "validation:binary_f_beta",
        "validation:binary_classification_accuracy",
        "validation:precision",
        "validation:recall",
        "validation:roc_auc_score",
        "validation:objective_loss",
    }


def test_roc_auc_handles_ties_and_one_class():
    from sklearn import metrics as skm

    y = np.array([0, 1, 0, 1, 1], dtype=np.float32)
    s = np.array([0.5, 0.5, 0.1, 0.9, 0.5], dtype=np.float32)
    assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s))
    assert np.isnan(roc_auc(np.ones(3), np.array([0.1, 0.2, 0.3])))


def test_sigmoid_is_stable_for_extreme_logits():
    out = sigmoid(np.array([-1000.0, 0.0, 1000.0], dtype=np.float32))
    assert out.tolist() == [0.0, 0.5, 1.0]


def _brute_force(y, p, fn):
    """Best value of fn(pred) over every distinct threshold (and 'none positive')."""
    candidates = np.concatenate((np.unique(p), [np.inf]))
    return max(fn((p >= t).astype(int)) for t in candidates)


# The brute force scores a few hundred thresholds per test: plain counts, not
# scikit-learn (its input checks cost a millisecond or two per call). The
# thresholds it picks are then scored with scikit-learn.
def _counts(y, pred):
    actual, pred = np.asarray(y) == 1, np.asarray(pred) == 1
    tp = int(np.sum(actual & pred))
    return tp, int(np.sum(~actual & pred)), int(np.sum(actual & ~pred)), len(actual)


def _accuracy(y, pred):
    _, fp, fn, n = _counts(y, pred)
    return (n - fp - fn) / n


def _prec(y, pred):
    tp, fp, _, _ = _counts(y, pred)
    return tp / (tp + fp) if tp + fp else 0.0


def _recall(y, pred):
    tp, _, fn, _ = _counts(y, pred)
    return tp / (tp + fn) if tp + fn else 0.0


def _fbeta(y, pred, beta):
    precision, recall = _prec(y, pred), _recall(y, pred)
    if precision + recall == 0:
        return 0.0
    return (1 + beta**2) * precision * recall / (beta**2 * precision + recall)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accuracy_threshold_is_optimal(seed):
    from sklearn import metrics as skm

    y, z = _scores(seed)
    p = sigmoid(z)
    t = calibrate_threshold(y, p, "accuracy")
    got = skm.accuracy_score(y, p >= np.float32(t))
    assert got == pytest.approx(_brute_force(y, p, lambda pr: _accuracy(y, pr)))


@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_f_beta_threshold_is_optimal(beta):
    from sklearn import metrics as skm

    y, z = _scores(3)
    p = sigmoid(z)
    t = calibrate_threshold(y, p, "f_beta", beta=beta)
    got = skm.fbeta_score(y, p >= np.float32(t), beta=beta)
    best = _brute_force(y, p, lambda pr: _fbeta(y, pr, beta))
    assert got == pytest.approx(best)


@pytest.mark.parametrize("target", [0.5, 0.8, 0.95])
def test_precision_at_target_recall(target):
    from sklearn import metrics as skm

    y, z = _scores(4)
    p = sigmoid(z)
    t = calibrate_threshold(y, p, "precision_at_target_recall", target_recall=target)
    pred = p >= np.float32(t)
    assert skm.recall_score(y, pred) >= target

    def feasible_precision(pr):
        return _prec(y, pr) if _recall(y, pr) >= target else -1

    precision = skm.precision_score(y, pred, zero_division=0)
    assert precision == pytest.approx(_brute_force(y, p, feasible_precision))


@pytest.mark.parametrize("target", [0.6, 0.8, 0.9])
def test_recall_at_target_precision(target):
    from sklearn import metrics as skm

    y, z = _scores(5)
    p = sigmoid(z)
    t = calibrate_threshold(y, p, "recall_at_target_precision", target_precision=target)
    pred = p >= np.float32(t)
    assert skm.precision_score(y, pred, zero_division=0) >= target

    def feasible_recall(pr):
        return _recall(y, pr) if _prec(y, pr) >= target else -1

    assert skm.recall_score(y, pred) == pytest.approx(_brute_force(y, p, feasible_recall))


def test_loss_function_criterion_uses_one_half():
    y, z = _scores(6)
    assert calibrate_threshold(y, sigmoid(z), "loss_function") == 0.5


def test_threshold_sits_between_scores_not_on_them():
    y = np.array([0, 0, 1, 1], dtype=np.float32)
    p = np.array([0.1, 0.2, 0.6, 0.9], dtype=np.float32)
    t = calibrate_threshold(y, p, "accuracy")
    assert 0.2 < t <= 0.6 and t == pytest.approx(0.4)


def test_all_negative_labels_predict_nothing_positive():
    y = np.zeros(5, dtype=np.float32)
    p = np.array([0.1, 0.2, 0.3, 0.4, 1.0], dtype=np.float32)
    t = calibrate_threshold(y, p, "accuracy")
    assert not (p >= np.float32(t)).any()
