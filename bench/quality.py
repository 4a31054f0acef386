"""Measures: how the default tuning's test quality spreads over tuner seeds,
and the best any tuned linear model does on this test set (the ceiling).

``seed_spread`` runs the default pipeline's very tuning request
(:func:`pipeline_core.tuning.build_tuning_request` with the default input) on
the local tuner once per ``RandomSeed``, and scores each tuning job's best
model on the test split. It skips the state machine and the endpoint (the
whole-run measures cover those), so many seeds fit in a few minutes.

``linear_ceiling`` fits L2-regularised logistic regression to convergence
(scikit-learn lbfgs on the same standardised features) for a grid of weight
decays, calibrates each threshold for accuracy on validation, as Linear
Learner does, and reports the best test F1 over the grid. Picking the weight
decay by its *test* score makes this an oracle: no honest tuning run can be
expected to beat it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import Measure, confusion
from pipeline_core.config import DEFAULTS
from pipeline_core.inputs import resolve_run
from pipeline_core.recordio import write_dense
from pipeline_core.tuning import build_tuning_request

ACCURACY_BAR = 0.991
F1_BAR = 0.955
#: Weight decays for the ceiling (the loss is mean log-loss + wd/2 |w|^2).
CEILING_WDS = (1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)


def _write_channel(folder: Path, x: np.ndarray, y: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    with open(folder / "part-0.rec", "wb") as fh:
        write_dense(fh, np.ascontiguousarray(x, dtype=np.float32), y.astype(np.float32))
    return folder


def default_request(seed: int) -> dict[str, Any]:
    """The default input's CreateHyperParameterTuningJob request, with ``RandomSeed``."""
    run = resolve_run(
        {"random_seed": seed},
        execution_name=f"bench-seed-{seed}",
        config=DEFAULTS,
        bucket="bench-bucket",
        region="us-east-1",
        default_endpoint_name=f"{DEFAULTS.name_prefix}-endpoint",
        stack_tag="bench",
    )
    return build_tuning_request(
        run,
        DEFAULTS,
        image_uri="linear-learner",
        role_arn="arn:aws:iam::000000000000:role/bench",
        train_uri=run.s3_uri("data/train/"),
        validation_uri=run.s3_uri("data/validation/"),
        output_uri=run.s3_uri("tuning/"),
    )


def seed_spread(data: dict[str, np.ndarray], seeds: int = 40, first_seed: int = 0) -> Measure:
    """The default tuning job once per seed; its best model scored on test."""
    from training.model import LinearModel
    from training.tuner import TuningJob

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-seeds-") as tmp:
        root = Path(tmp)
        channels = {
            "train": _write_channel(root / "train", data["train_x"], data["train_y"]),
            "validation": _write_channel(root / "validation", data["valid_x"], data["valid_y"]),
        }
        for seed in range(first_seed, first_seed + seeds):
            job = TuningJob(default_request(seed), channels, root / f"seed-{seed}")
            described = job.run()
            best = described.get("BestTrainingJob")
            if not best:
                runs.append({"seed": seed, "status": described["HyperParameterTuningJobStatus"]})
                continue
            model = LinearModel.load(job.artifact(best["TrainingJobName"]))
            _, labels = model.predict(data["test_x"])
            quality = confusion(data["test_y"], labels)
            runs.append(
                {
                    "seed": seed,
                    "validation_f1": best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
                    "accuracy": quality["accuracy"],
                    "f1": quality["f1"],
                    "hyperparameters": best["TunedHyperParameters"],
                }
            )
    f1s = np.array([r.get("f1", 0.0) for r in runs])
    accuracies = np.array([r.get("accuracy", 0.0) for r in runs])
    met = int(np.sum((accuracies >= ACCURACY_BAR) & (f1s >= F1_BAR)))
    return Measure(
        name=f"default tuning's best model on test, over {seeds} tuner seeds",
        metric="share of seeds meeting both bars",
        baseline_name="the tutorial's F1",
        baseline=0.952,
        ours=float(np.min(f1s)),
        unit="",
        goal=f"every seed: accuracy >= {ACCURACY_BAR}, F1 >= {F1_BAR}",
        met=met == seeds,
        details={
            "seeds_meeting_both_bars": met,
            "f1_mean": round(float(np.mean(f1s)), 4),
            "f1_p10": round(float(np.percentile(f1s, 10)), 4),
            "f1_min": round(float(np.min(f1s)), 4),
            "f1_max": round(float(np.max(f1s)), 4),
            "accuracy_min": round(float(np.min(accuracies)), 4),
            "runs": runs,
        },
        higher_is_better=True,
        show_ratio=False,
        note=(
            f"{met}/{seeds} seeds meet both bars; F1 mean {np.mean(f1s):.4f}, "
            f"p10 {np.percentile(f1s, 10):.4f}, min {np.min(f1s):.4f}"
        ),
    )


def linear_ceiling(data: dict[str, np.ndarray], wds: tuple[float, ...] = CEILING_WDS) -> Measure:
    """The best test F1 of a converged, tuned logistic regression (an oracle)."""
    from sklearn.linear_model import LogisticRegression

    from training.metrics import calibrate_threshold, sigmoid

    tx = data["train_x"].astype(np.float64)
    mean = tx.mean(axis=0)
    std = tx.std(axis=0)
    std[~(std > 1e-12)] = 1.0

    def scaled(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = (x.astype(np.float64) - mean) / std
        return out

    tx, vx, sx = scaled(tx), scaled(data["valid_x"]), scaled(data["test_x"])
    n = len(tx)
    grid: list[dict[str, Any]] = []
    for wd in wds:
        fit = LogisticRegression(C=1.0 / (wd * n), max_iter=5000, tol=1e-6).fit(tx, data["train_y"])
        valid_scores = sigmoid(fit.decision_function(vx).astype(np.float32))
        threshold = calibrate_threshold(data["valid_y"], valid_scores, "accuracy")
        labels = sigmoid(fit.decision_function(sx).astype(np.float32)) >= threshold
        quality = confusion(data["test_y"], labels)
        grid.append({"wd": wd, **quality})
    best = max(grid, key=lambda g: g["f1"])
    # one more error (FP or FN) lowers F1 by about F1 / (2 TP + FP + FN)
    per_error = best["f1"] / (2 * best["tp"] + best["fp"] + best["fn"])
    room = (best["f1"] - F1_BAR) / per_error
    return Measure(
        name="linear-model ceiling: converged logistic regression, wd picked on test (oracle)",
        metric="test F1",
        baseline_name="the F1 bar",
        baseline=F1_BAR,
        ours=float(best["f1"]),
        unit="",
        goal="(reference: how far above the bar any linear model gets)",
        met=None,
        details={"grid": grid, "best": best},
        higher_is_better=True,
        show_ratio=False,
        note=(
            f"best F1 {best['f1']:.4f} (accuracy {best['accuracy']:.4f}) at wd {best['wd']:g}; "
            f"the F1 bar is {room:.0f} test errors below it"
        ),
    )
