"""One embedded pipeline per test module: moto, the local SageMaker and the
synthesized state machine, on a small generated MNIST-like dataset."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from local.account.mnist_cache import write_dataset
from tests import digits


def make_digits(rows: int, seed: int, dim: int = 784) -> tuple[np.ndarray, np.ndarray]:
    """:func:`tests.digits.make_digits` with 3% wrong labels: they keep every
    metric below 1, so a gate of 1.0 must fail."""
    return digits.make_digits(rows, seed, dim, wrong_labels=0.03)


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
