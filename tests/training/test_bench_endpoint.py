"""Smoke test of ``bench/endpoint.py`` (``make bench`` runs it at full size)."""

from __future__ import annotations

import numpy as np

from bench.endpoint import run
from training.model import LinearModel

DIM = 5


def test_endpoint_bench_fills_every_measure(tmp_path):
    rng = np.random.default_rng(0)
    model = LinearModel(
        weights=rng.normal(size=DIM).astype(np.float32),
        bias=0.1,
        mean=np.zeros(DIM, np.float32),
        std=np.ones(DIM, np.float32),
        threshold=0.5,
    )
    x = rng.random((250, DIM), dtype=np.float32)
    x[x < 0.5] = 0
    path = model.save(tmp_path / "model.tar.gz")
    for source in (model, path):
        measures = run(
            source,
            x,
            batched_requests=12,
            single_requests=12,
            clients=2,
            batch_rows=100,
            floor_calls=50,
        )
        assert [m.metric for m in measures] == ["rows/s", "p50 seconds"]
        batched, single = measures
        assert batched.ours > 0 and batched.baseline is not None and batched.baseline > 0
        assert batched.goal == "≥ 50k rows/s batched" and isinstance(batched.met, bool)
        assert batched.details["requests"] == 12 and batched.details["rows"] == 1200
        assert 0 < batched.details["ours_over_floor"]
        assert single.goal == "single-row p50 ≤ 2 ms" and isinstance(single.met, bool)
        assert 0 < single.details["p50_ms"] <= single.details["p99_ms"]
        assert single.baseline is not None and single.baseline > 0
