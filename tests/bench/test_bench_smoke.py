"""Keep the benchmark scripts working: each measure on tiny inputs.

Only that they run and fill their fields is checked here; the numbers mean
something only in `make bench`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import lambda_sizing, local_run, quality, recordio_write, training_job
from bench.__main__ import machine, table, write_markdown
from bench.common import Measure, confusion
from local.account.mnist_cache import write_dataset


def _data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, rows)
    x = np.clip(
        rng.random((rows, 784), dtype=np.float32) * 0.3 + (labels == 0)[:, None] * 0.5, 0, 1
    )
    return x.astype(np.float32), labels.astype(np.int64)


def test_recordio_measure_compares_with_the_sdk_byte_for_byte() -> None:
    x, y = _data(300, 1)
    m = recordio_write.run(x, (y == 0).astype(np.float32))
    assert m.baseline is not None and m.ours > 0
    assert m.details["byte_identical"] is True


def _split(rows: tuple[int, int, int], seed: int) -> dict[str, np.ndarray]:
    """Train/validation/test in the bench's layout, label 1 for digit 0."""
    split: dict[str, np.ndarray] = {}
    for i, (name, n) in enumerate(zip(("train", "valid", "test"), rows, strict=True)):
        x, y = _data(n, seed + i)
        split[f"{name}_x"], split[f"{name}_y"] = x, (y == 0).astype(np.float32)
    return split


def test_training_measure_reports_quality_for_every_contender() -> None:
    measures = training_job.run(_split((2000, 500, 500), 2), repeat=1)
    assert {"ours", "lbfgs", "sgd"} <= set(measures[0].details["quality"])
    assert measures[0].details["quality"]["ours"]["accuracy"] > 0.9


def test_convert_sizing_runs_in_a_fresh_process(tmp_path: Path) -> None:
    source = write_dataset(tmp_path / "d.pkl.gz", [_data(300, 5), _data(100, 6), _data(100, 7)])
    m = lambda_sizing.convert_step(source, memory_mb=3008)
    assert 0 < m.ours < 3008
    assert m.details["recordio_written_mb"] > 0


def test_cost_counts_transitions_lambda_time_and_training() -> None:
    report = {
        "state_transitions": 40,
        "state_counts": {"WaitForTuning": 5, "DescribeTuning": 5, "TuningStatus": 5},
        "training_jobs": 6,
        "lambda_invocations": 20,
        "lambda_seconds": {"lambdas.convert.handler": 3.0},
    }
    m = local_run.cost(report, {"lambdas.convert.handler": 3008})
    assert m.details["state_transitions_local_run"] == 40
    # 15 local polling transitions swapped for 3 x (9 tuning + 8 endpoint) cloud ones
    assert m.details["state_transitions_cloud_estimate"] == 40 - 15 + 3 * 17
    assert m.details["training_jobs"] == 6
    assert m.ours > m.details["training_usd"] > 0


def test_markdown_has_machine_and_one_row_per_measure(tmp_path: Path) -> None:
    measures = [
        Measure("a", "seconds", "base", 2.0, 1.0, "s", "goal", True),
        Measure("b", "USD", "base", None, 0.5, "USD", "goal", None),
    ]
    out = tmp_path / "B.md"
    write_markdown(out, machine(speed_steps=1_000), measures, 1.0)
    text = out.read_text()
    assert "| a | base |" in text and "2.00x" in text  # 2.0 s baseline, 1.0 s ours
    assert "- speed reference (start): " in text and "loop of 1,000 steps" in text
    assert len(table(measures)) == 4
    assert confusion(np.array([1, 0, 1]), np.array([1, 1, 0]))["tp"] == 1


def test_quality_spread_runs_the_pipeline_per_execution_name(tmp_path: Path) -> None:
    source = write_dataset(tmp_path / "d.pkl.gz", [_data(600, 8), _data(200, 9), _data(200, 10)])
    m = local_run.quality_spread(runs=1, source=str(source))
    assert [r["status"] for r in m.details["runs"]] == ["SUCCEEDED"]
    assert m.ours > 0


def test_seed_spread_tunes_once_per_seed_with_the_default_request() -> None:
    request = quality.default_request(5)
    assert request["HyperParameterTuningJobConfig"]["RandomSeed"] == 5
    assert request["HyperParameterTuningJobConfig"]["ResourceLimits"] == {
        "MaxNumberOfTrainingJobs": 6,
        "MaxParallelTrainingJobs": 2,
    }
    m = quality.seed_spread(_split((1500, 400, 400), 11), seeds=2)
    assert [r["seed"] for r in m.details["runs"]] == [0, 1]
    assert all(0.9 < r["accuracy"] <= 1.0 for r in m.details["runs"])
    assert m.details["seeds_meeting_both_bars"] <= 2


def test_linear_ceiling_picks_the_best_weight_decay_on_test() -> None:
    m = quality.linear_ceiling(_split((1500, 400, 400), 11), wds=(1e-3, 10.0))
    grid = m.details["grid"]
    assert [g["wd"] for g in grid] == [1e-3, 10.0]
    assert m.ours == max(g["f1"] for g in grid)


def test_scale_out_measures_a_map_child_and_two_workers() -> None:
    from bench import scale_out

    x, digits = _data(400, 11)
    children = scale_out.shard_children(
        x, digits, total_rows=600, shard_counts=(2, 4), memory_mb=3008
    )
    rows = children.details["by_shard_count"]
    assert [r["rows_per_shard"] for r in rows] == [300, 150]
    assert all(0 < r["child_peak_mb"] < 3008 and r["recordio_objects"] == 1 for r in rows)
    workers = scale_out.workers(_split((1200, 300, 300), 12), seeds=1)
    assert set(workers.details["mean_test_f1"]) == {"1", "2"}
    # The row says what it emulates and claims no speed-up.
    assert "InstanceCount=2" in workers.note and "ShardedByS3Key" in workers.note
    assert "not a cloud speed-up" in workers.note and workers.ratio is None
    lines = scale_out.cloud_model(children, workers, max_concurrency=40)
    assert any(line.startswith("| 1,000,000 |") for line in lines)


def test_fresh_clone_rows_judge_the_wall_time_against_their_goals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import fresh_clone

    walls = iter([(52.0, "report: r\ntotal 21.5s\nopen r/report.html\n"), (12.0, "")])
    monkeypatch.setattr(fresh_clone, "_clone", lambda into: into)
    monkeypatch.setattr(fresh_clone, "_timed_make", lambda checkout, target: next(walls))
    run = fresh_clone.first_run()
    assert (run.ours, run.met, run.details["run_seconds"]) == (52.0, False, 21.5)
    setup = fresh_clone.setup()
    assert (setup.ours, setup.met) == (12.0, True)
