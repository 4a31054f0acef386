"""`python -m local run` (what `make run` calls), on a small generated dataset."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MNIST_LL_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "local", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_run_writes_report_plots_and_bucket_copy_over_an_earlier_run(
    small_dataset: Path, tmp_path: Path
) -> None:
    """One run into a folder an earlier run (``again-1``) left: its report,
    pictures and bucket copy are replaced, not mixed with this run's."""
    out = tmp_path / "demo"
    earlier = out / "bucket" / "runs" / "again-1"
    earlier.mkdir(parents=True)
    (earlier / "report.json").write_text("{}")
    for name in ("report.json", "report.html", "predictions.csv", "sample_digit.png"):
        (out / name).write_text("from again-1")
    payload = {"source": str(small_dataset), "max_jobs": 2, "max_parallel_jobs": 2}
    proc = _run(
        "run",
        "--input",
        json.dumps(payload),
        "--out",
        str(out),
        "--name",
        "cli-ok",
        "--keep-bucket",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "SUCCEEDED"
    assert report["execution_name"] == "cli-ok"
    cm = report["confusion_matrix"]
    assert set(cm) == {"tp", "fp", "tn", "fn"}
    assert sum(cm.values()) == 400
    assert set(report["metrics"]) >= {"accuracy", "precision", "recall", "f1"}
    best = report["best_training_job"]
    assert best["name"] and best["hyperparameters"]
    assert best["objective"]["metric"] == "validation:binary_f_beta"
    for state in ("ConvertDataset", "StartTuning", "Deploy", "Evaluate"):
        assert state in report["timings"]
    assert (out / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "sample_digit.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "bucket" / "runs" / "cli-ok" / "report.json").exists()
    assert (out / "bucket" / "runs" / "cli-ok" / "data" / "train" / "train.rec").exists()
    assert "runs/cli-ok/report.json" in report["bucket"]["keys"]
    assert "cost (cloud estimate, not charged locally): ~$" in proc.stdout
    # The tutorial's crosstab, and off a terminal one line per phase: the poll
    # loops repeat nothing, tuning ends with its jobs and best objective.
    assert "predictions" in proc.stdout and "actuals" in proc.stdout
    lines = proc.stdout.splitlines()
    phases = [line.split()[0] for line in lines if line.startswith("  ") and "(+" in line]
    assert phases == ["input", "data", "tuning", "registry", "deploy", "evaluate"], lines
    assert "WaitForTuning" not in proc.stdout and "DescribeTuning" not in proc.stdout
    assert sum("2/2 jobs done, best validation:binary_f_beta" in line for line in lines) == 1
    assert len(lines) <= 40, len(lines)
    # Nothing of the earlier run is left beside this one's files.
    assert sorted(p.name for p in (out / "bucket" / "runs").iterdir()) == ["cli-ok"]
    for name in ("report.html", "predictions.csv", "sample_digit.png"):
        assert (out / name).read_bytes() != b"from again-1", name
    # Evaluate's page and scores, copied into the run folder; the last line says what to open.
    html = out / "report.html"
    assert lines[-1] == f"open {html}"
    stored = report["evaluation"]  # the bucket's report.json, which the page shows
    assert stored["metrics"]["auc"] is not None
    assert f'data-value="{stored["metrics"]["auc"]!r}"' in html.read_text()
    rows = (out / "predictions.csv").read_text().splitlines()
    assert rows[0] == "label,score,predicted_label" and len(rows) == 1 + stored["rows"]
    if (ROOT / ".git").exists():  # a checkout: the commit the code ran from
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        assert stored["lineage"]["git_commit"] == commit


def test_a_bad_input_fails_before_anything_starts_and_writes_no_folder(
    small_dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bad"
    payload = json.dumps({"source": str(small_dataset), "target_digit": "zero"})
    proc = _run("run", "--input", payload, "--out", str(out))
    assert proc.returncode == 2
    assert "InvalidInput: target_digit: must be an integer" in proc.stderr
    assert not out.exists()


def test_a_failed_gate_reports_one_sentence_and_leaves_no_earlier_picture(
    small_dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "gate"
    out.mkdir()
    for stale in ("confusion_matrix.png", "sample_digit.png", "report.json"):
        (out / stale).write_text("from an earlier run")
    (out / "mine.txt").write_text("not the tool's")
    # An F1 is at most 1: no model reaches a gate of 1.5.
    payload = {"source": str(small_dataset), "max_jobs": 1, "max_parallel_jobs": 1}
    proc = _run("run", "--input", json.dumps({**payload, "min_objective": 1.5}), "--out", str(out))
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "FAILED" and report["error"] == "QualityGateFailedError"
    assert re.fullmatch(
        r"best validation:binary_f_beta [01]\.\d{3} < min_objective 1\.5; "
        r"lower min_objective, widen the ranges or raise max_jobs",
        report["message"],
    ), report["message"]
    assert f"(QualityGateFailedError): {report['message']}" in proc.stdout
    assert '"gate"' not in proc.stdout  # not the raw tuning JSON
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt", "report.json"]


def test_bad_command_line_input_is_a_usage_error() -> None:
    proc = _run("run", "--input", "{not json")
    assert proc.returncode == 2
    assert "--input is not valid JSON" in proc.stderr
    proc = _run("run", "--input", "[1, 2]")
    assert proc.returncode == 2
    assert "JSON object" in proc.stderr


def test_help_lists_the_options() -> None:
    proc = _run("run", "--help")
    assert proc.returncode == 0
    for option in ("--input", "--out", "--serve"):
        assert option in proc.stdout


def test_serve_keeps_the_endpoint_up_until_interrupted(small_dataset: Path, tmp_path: Path) -> None:
    import re
    import signal
    import time
    import urllib.request

    payload = json.dumps(
        {"source": str(small_dataset), "max_jobs": 1, "max_parallel_jobs": 1, "min_objective": 0}
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local",
            "run",
            "--input",
            payload,
            "--out",
            str(tmp_path / "s"),
            "--serve",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "MNIST_LL_OFFLINE": "1"},
    )
    try:
        url = None
        deadline = time.monotonic() + 240
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            match = re.search(
                r"URL:\s+(http://127\.0\.0\.1:\d+/endpoints/[\w-]+/invocations)", line
            )
            if match:
                url = match.group(1)
                break
        assert url, "the run never printed the endpoint URL"
        # The printed boto3 example runs as printed (its row included).
        snippet = []
        while len(snippet) < 2:
            line = proc.stdout.readline().strip()
            assert line, "the run never printed the boto3 example"
            if line.startswith(("row_csv = ", "boto3.client(")):
                snippet.append(line)
        code = "\n".join(
            [
                "import boto3",
                snippet[0],
                f"answer = {snippet[1]}",
                "print(answer['Body'].read().decode())",
            ]
        )
        called = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
        )
        assert called.returncode == 0, called.stderr[-2000:]
        assert json.loads(called.stdout)["predictions"][0]["predicted_label"] in (0, 1)
        request = urllib.request.Request(
            url,
            data=",".join(["0.5"] * 784).encode(),
            headers={"Content-Type": "text/csv"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
        assert len(body["predictions"]) == 1
        assert set(body["predictions"][0]) == {"score", "predicted_label"}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_aborts_the_run_like_ctrl_c_and_removes_the_temp_folder(
    small_dataset: Path, tmp_path: Path
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "term"
    payload = {"source": str(small_dataset), "max_jobs": 4, "max_parallel_jobs": 1}
    proc = subprocess.Popen(
        [sys.executable, "-m", "local", "run", "--input", json.dumps(payload), "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "MNIST_LL_OFFLINE": "1", "TMPDIR": str(tmp)},
    )
    started = time.monotonic()
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("  tuning     (+"):  # the tuning job runs: jobs to stop
                break
        assert any(line.startswith("  tuning     (+") for line in seen), "".join(seen)[-3000:]
        assert list(tmp.glob("mnist-ll-run-*")), "the run's temp folder should exist by now"
        sent_after = time.monotonic() - started
        print(f"SIGTERM {sent_after:.1f}s into the run")
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, rest[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "ABORTED", report
    assert "SIGTERM" in report["message"]
    assert not list(tmp.glob("mnist-ll-run-*")), f"temp folder left (SIGTERM at {sent_after:.1f}s)"
    # The tuning job was stopped, not left running: ExecutionEnded saw ABORTED.
    assert "ABORTED" in rest
