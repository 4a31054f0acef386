"""A small generated dataset in MNIST's layout, for the tests that run the
pipeline or the SDK flows on it."""

from __future__ import annotations

import numpy as np


def make_digits(
    rows: int, seed: int, dim: int = 784, wrong_labels: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy copies of ten fixed prototypes in [0, 1]: learnable, but not
    trivially. Like the tutorial's pickle, every pixel is a multiple of 1/255
    (so the endpoint's CSV holds few distinct values, as it does for MNIST).
    About ``wrong_labels`` of the labels are off by one."""
    prototypes = (np.random.default_rng(1234).random((10, dim)) < 0.25).astype(np.float32)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=rows)
    noise = rng.random((rows, dim), dtype=np.float32)
    images = np.clip(0.7 * prototypes[labels] + 0.45 * noise, 0.0, 1.0)
    images = (np.round(images * 255) / 255).astype(np.float32)
    if wrong_labels:
        flip = rng.random(rows) < wrong_labels
        labels = np.where(flip, (labels + 1) % 10, labels)
    return images, labels.astype(np.int64)
