"""`make run ARGS='…'` passes JSON through untouched (the README's examples)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from local.cli.make_args import ArgsSyntaxError, split_args

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '--input {"target_digit":3} --out runs/demo',
            ["--input", '{"target_digit":3}', "--out", "runs/demo"],
        ),
        ('--input {"a": 1, "b": [1, 2]}', ["--input", '{"a": 1, "b": [1, 2]}']),
        ("--input '{\"a\": \"x y\"}' --serve", ["--input", '{"a": "x y"}', "--serve"]),
        ('--out "my runs/demo"', ["--out", "my runs/demo"]),
        ("--input @my-input.json", ["--input", "@my-input.json"]),
        ("", []),
    ],
)  # fmt: skip
def test_split_args_keeps_json_whole(text: str, expected: list[str]) -> None:
    assert split_args(text) == expected


@pytest.mark.parametrize("text", ['--input {"a": 1', "--input '{", "--input ]"])
def test_split_args_rejects_unbalanced_input(text: str) -> None:
    with pytest.raises(ArgsSyntaxError):
        split_args(text)


def test_make_run_with_json_args_runs_the_pipeline(small_dataset: Path, tmp_path: Path) -> None:
    payload = json.dumps(
        {"source": str(small_dataset), "max_jobs": 1, "max_parallel_jobs": 1, "min_objective": 0}
    )
    out = tmp_path / "demo"
    proc = subprocess.run(
        ["make", "-s", "run", f"ARGS=--input {payload} --out {out} --name make-run-1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MNIST_LL_OFFLINE": "1"},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "SUCCEEDED"
    assert report["execution_name"] == "make-run-1"
    # Evaluate's page and scores, copied into the run folder; the last line says what to open.
    html = out / "report.html"
    assert html.is_file() and (out / "predictions.csv").is_file()
    assert proc.stdout.strip().splitlines()[-1] == f"open {html}"
    stored = report["evaluation"]  # the bucket's report.json, which the page shows
    assert stored["metrics"]["auc"] is not None
    if (ROOT / ".git").exists():  # a checkout: the commit the code ran from
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        assert stored["lineage"]["git_commit"] == commit
    assert f'data-value="{stored["metrics"]["auc"]!r}"' in html.read_text()
    rows = (out / "predictions.csv").read_text().splitlines()
    assert rows[0] == "label,score,predicted_label" and len(rows) == 1 + stored["rows"]
