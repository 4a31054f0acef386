"""One embedded pipeline per test module: moto, the local SageMaker and the
synthesized state machine, on a small generated MNIST-like dataset."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from local.account.mnist_cache import write_dataset


def make_digits(rows: int, seed: int, dim: int = 784) -> tuple[np.ndarray, np.ndarray]:
    """Ten noisy prototypes in [0, 1]: learnable, but not trivially. Like the
    tutorial's pickle, every pixel is a multiple of 1/255 (so the endpoint's
    CSV holds few distinct values, as it does for MNIST)."""
    rng = np.random.default_rng(1234)
    prototypes = (rng.random((10, dim)) < 0.25).astype(np.float32)
    local = np.random.default_rng(seed)
    labels = local.integers(0, 10, size=rows)
    noise = local.random((rows, dim), dtype=np.float32)
    images = np.clip(0.7 * prototypes[labels] + 0.45 * noise, 0.0, 1.0)
    images = (np.round(images * 255) / 255).astype(np.float32)
    # A few wrong labels keep every metric below 1, so a gate of 1.0 must fail.
    flip = local.random(rows) < 0.03
    labels = np.where(flip, (labels + 1) % 10, labels)
    return images, labels.astype(np.int64)


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "mnist-small.pkl.gz"
    return write_dataset(path, [make_digits(1500, 1), make_digits(400, 2), make_digits(400, 3)])


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from local.account.backend import LinearLearnerBackend
    from local.account.runner import LocalPipeline

    work = tmp_path_factory.mktemp("pipeline")
    lines: list[str] = []
    with LocalPipeline(
        work_dir=work,
        backend=LinearLearnerBackend(work_dir=work / "backend"),
        poll_seconds=1,
        printer=lines.append,
    ) as running:
        assert running.sagemaker is not None
        # Every local SageMaker response is checked against botocore's output shape.
        running.sagemaker.check_responses = True
        yield running
        assert running.sagemaker.response_problems == []
