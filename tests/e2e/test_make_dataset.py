"""`python -m local make-dataset`: layout, formats, sizes, determinism, realism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_digits

from local.cli.main import main
from local.cli.make_dataset import generate, plan, warp
from pipeline_core.dataset import MnistSplits, Split
from pipeline_core.shards import read_csv


@pytest.fixture(scope="module")
def mnist() -> MnistSplits:
    parts = [make_digits(n, seed) for n, seed in ((500, 1), (200, 2), (200, 3))]
    return MnistSplits(*(Split(images=x, labels=y) for x, y in parts))


def test_layout_and_sizes_follow_the_rows_and_shards(tmp_path: Path, mnist: MnistSplits) -> None:
    summary = generate(tmp_path, rows=1200, shards=4, fmt="npz", mnist=mnist, progress=None)
    assert summary == {
        "train": {"rows": 1200, "objects": 4},
        "validation": {"rows": 200, "objects": 1},
        "test": {"rows": 200, "objects": 1},
    }
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == [
        f"part-0000{i}.npz" for i in range(4)
    ]
    with np.load(tmp_path / "train" / "part-00000.npz") as shard:
        assert sorted(shard.files) == ["x", "y"]
        x, y = shard["x"], shard["y"]
    assert x.shape == (300, 784) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert set(np.unique(y)) <= set(range(10))


def test_the_same_seed_writes_the_same_files(tmp_path: Path, mnist: MnistSplits) -> None:
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        generate(tmp_path / name, rows=300, shards=2, fmt="csv", seed=seed, mnist=mnist)
    a, b, c = ((tmp_path / n / "train" / "part-00001.csv").read_bytes() for n in "abc")
    assert a == b and a != c


def test_csv_has_the_label_first_and_reads_back_as_the_digits(
    tmp_path: Path, mnist: MnistSplits
) -> None:
    generate(tmp_path, rows=120, shards=1, fmt="csv", mnist=mnist)
    raw = (tmp_path / "test" / "part-00000.csv").read_bytes()
    x, y = read_csv(raw, "test/part-00000.csv", feature_dim=784)
    assert x.shape == (20, 784) and set(np.unique(y)) <= set(range(10))
    assert raw.split(b"\n", 1)[0].split(b",", 1)[0] in {str(d).encode() for d in range(10)}


def test_warp_moves_ink_but_keeps_the_digit() -> None:
    x, _ = make_digits(50, 9)
    out = warp(x, np.random.default_rng(0))
    assert out.shape == x.shape and not np.array_equal(out, x)
    # A small shift/rotation: images stay closer to their own source than to others.
    own = np.linalg.norm(out - x, axis=1)
    other = np.linalg.norm(out - np.roll(x, 1, axis=0), axis=1)
    assert (own < other).mean() > 0.9


def test_plan_refuses_more_shards_than_rows() -> None:
    with pytest.raises(ValueError, match="shards <= rows"):
        plan(3, 4)


def test_cli_reports_a_bad_request_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["make-dataset", "--out", str(tmp_path), "--rows", "2", "--shards", "3"])
    assert code == 2 and "shards <= rows" in capsys.readouterr().err
