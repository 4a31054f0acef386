"""A small dataset in MNIST's layout for the SDK flows."""

from __future__ import annotations

import numpy as np


def make_digits(rows: int, seed: int, dim: int = 784) -> tuple[np.ndarray, np.ndarray]:
    """Noisy copies of ten fixed prototypes: MNIST's layout, learnable, tiny."""
    prototypes = (np.random.default_rng(1234).random((10, dim)) < 0.25).astype(np.float32)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=rows)
    noise = rng.random((rows, dim), dtype=np.float32)
    images = np.clip(0.7 * prototypes[labels] + 0.45 * noise, 0.0, 1.0)
    # every pixel a multiple of 1/255, as in the tutorial's pickle
    images = (np.round(images * 255) / 255).astype(np.float32)
    return images, labels.astype(np.int64)
