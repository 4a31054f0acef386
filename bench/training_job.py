"""Measure 2: one training job, 0-vs-rest on the tutorial's split.

The local Linear Learner with the tutorial's settings (``mini_batch_size=200``,
everything else default) against scikit-learn's LogisticRegression (lbfgs)
and SGDClassifier (log_loss), fitted on the same arrays in the same process,
alternating, best of ``repeat`` runs each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.common import Measure, confusion
from training.hyperparameters import parse_hyperparameters
from training.trainer import train

TUTORIAL_HP = {
    "feature_dim": "784",
    "predictor_type": "binary_classifier",
    "mini_batch_size": "200",
}


def _ours(data: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
    hp = parse_hyperparameters(TUTORIAL_HP)
    start = time.perf_counter()
    result = train(
        data["train_x"],
        data["train_y"],
        hp,
        validation=(data["valid_x"], data["valid_y"]),
        raw_hyperparameters=TUTORIAL_HP,
    )
    seconds = time.perf_counter() - start
    _, labels = result.model.predict(data["test_x"])
    return seconds, np.asarray(labels)


def _sklearn(make: Callable[[], Any], data: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
    model = make()
    start = time.perf_counter()
    model.fit(data["train_x"], data["train_y"])
    seconds = time.perf_counter() - start
    return seconds, np.asarray(model.predict(data["test_x"]))


def run(data: dict[str, np.ndarray], repeat: int = 3, sgd: bool = True) -> list[Measure]:
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    contenders: dict[str, Callable[[], tuple[float, np.ndarray]]] = {
        "ours": lambda: _ours(data),
        "lbfgs": lambda: _sklearn(lambda: LogisticRegression(max_iter=1000), data),
    }
    if sgd:
        contenders["sgd"] = lambda: _sklearn(
            lambda: SGDClassifier(loss="log_loss", random_state=0), data
        )
    best: dict[str, float] = {k: float("inf") for k in contenders}
    predictions: dict[str, np.ndarray] = {}
    # Alternate the contenders so background noise hits them alike. Each uses
    # its own default threading (scikit-learn: all BLAS threads).
    for _ in range(repeat):
        for name, fn in contenders.items():
            seconds, predicted = fn()
            best[name] = min(best[name], seconds)
            predictions[name] = predicted
    quality = {name: confusion(data["test_y"], p) for name, p in predictions.items()}
    ours_q = quality["ours"]
    measures = [
        Measure(
            name="one training job (mini_batch_size=200), fit time",
            metric="seconds",
            baseline_name="scikit-learn LogisticRegression (lbfgs)",
            baseline=best["lbfgs"],
            ours=best["ours"],
            unit="s",
            goal="no slower than lbfgs, F1 >= 0.955",
            met=bool(best["ours"] <= best["lbfgs"] and ours_q["f1"] >= 0.955),
            details={"quality": quality, "fit_seconds": best},
            note=(
                f"ours acc {ours_q['accuracy']:.4f} F1 {ours_q['f1']:.4f} "
                f"(TP {ours_q['tp']} FP {ours_q['fp']} FN {ours_q['fn']}); "
                f"lbfgs acc {quality['lbfgs']['accuracy']:.4f} F1 {quality['lbfgs']['f1']:.4f}"
            ),
        )
    ]
    if sgd:
        measures.append(
            Measure(
                name="one training job vs SGDClassifier (log_loss), fit time",
                metric="seconds",
                baseline_name="scikit-learn SGDClassifier (log_loss)",
                baseline=best["sgd"],
                ours=best["ours"],
                unit="s",
                goal="(reference)",
                met=None,
                details={"quality": {"ours": ours_q, "sgd": quality["sgd"]}},
                note=f"sgd acc {quality['sgd']['accuracy']:.4f} F1 {quality['sgd']['f1']:.4f}",
            )
        )
    return measures
