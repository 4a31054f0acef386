"""Shared fixtures: small synthetic binary problems with a known answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline_core.recordio import write_dense

D = 10
TRUE_W = np.array([2.0, -1.5, 1.0, 0.0, 0.0, 0.5, 0.0, 0.0, -0.5, 0.0])
TRUE_B = -1.0


def make_data(n: int, seed: int, noise: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Logistic-ish data: label 1 iff x.w + b + noise > 0 (about 30% positives)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D)).astype(np.float32)
    x[:, 6] = 3.0  # a constant feature: the scaler must not divide by zero
    z = x @ TRUE_W + TRUE_B + noise * rng.normal(size=n)
    return x, (z > 0).astype(np.float32)


def write_channel(path: Path, x: np.ndarray, y: np.ndarray, parts: int = 1) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for i, (xs, ys) in enumerate(
        zip(np.array_split(x, parts), np.array_split(y, parts), strict=True)
    ):
        with open(path / f"part-{i}.rec", "wb") as f:
            write_dense(f, np.ascontiguousarray(xs), np.ascontiguousarray(ys))
    return path


@pytest.fixture(scope="session")
def data() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        "train": make_data(3000, 1),
        "validation": make_data(1000, 2),
        "test": make_data(1000, 3),
    }


@pytest.fixture(scope="session")
def channels(tmp_path_factory: pytest.TempPathFactory, data) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("channels")
    return {
        "train": write_channel(root / "train", *data["train"], parts=2),
        "validation": write_channel(root / "validation", *data["validation"]),
    }


BASE_HP = {"predictor_type": "binary_classifier", "feature_dim": str(D), "mini_batch_size": "100"}
