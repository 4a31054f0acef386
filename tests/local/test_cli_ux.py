"""What the command lines say and leave behind, without running a pipeline."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from local.account.input_check import InputCheckError, check_input
from local.account.runner import lease_wait_line
from local.account.synth import override_retry_interval
from local.cli import report as rpt
from local.cli.main import build_parser
from local.cli.services_cmd import PortTakenError, approval_line, check_port

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path = ROOT) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "local", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MNIST_LL_OFFLINE": "1", "PYTHONPATH": str(ROOT)},
        check=False,
    )
    return proc, time.monotonic() - started


def test_a_misspelt_input_key_fails_at_once_naming_the_right_key_and_writes_nothing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "never"
    proc, seconds = _cli("run", "--input", '{"target_digt":0}', "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2
    assert "InvalidInput: unknown key target_digt: did you mean target_digit?" in proc.stderr
    assert not out.exists() and not (tmp_path / "runs").exists()
    # No account, no synth: about a second and a half on a loaded 2-core machine.
    assert seconds < 10, seconds
    assert "starting the local AWS account" not in proc.stdout


def test_the_input_check_uses_the_synths_config_and_local_sources(tmp_path: Path) -> None:
    spec = check_input({"source": str(tmp_path), "max_jobs": 2, "max_parallel_jobs": 1}, "n-1")
    assert spec.max_jobs == 2 and spec.source == str(tmp_path)
    with pytest.raises(InputCheckError, match="max_parallel_jobs: 3 must not exceed max_jobs"):
        check_input({"max_jobs": 2, "max_parallel_jobs": 3}, "n-1")
    # cdk.json's pipeline context counts: a stack that caps max_jobs refuses more.
    (tmp_path / "cdk.json").write_text(
        json.dumps({"context": {"pipeline": {"max_jobs": 3, "max_jobs_limit": 4}}})
    )
    with pytest.raises(InputCheckError, match=r"max_jobs: 5 is outside \[1, 4\]"):
        check_input({"max_jobs": 5}, "n-1", root=tmp_path)


def test_clear_outputs_removes_what_a_run_writes_and_nothing_else(tmp_path: Path) -> None:
    for name in ("report.json", "confusion_matrix.png", "sample_digit.png", "notes.txt"):
        (tmp_path / name).write_text("old")
    (tmp_path / "bucket" / "runs").mkdir(parents=True)
    (tmp_path / "mine").mkdir()
    removed = rpt.clear_outputs(tmp_path)
    assert sorted(p.name for p in removed) == [
        "bucket",
        "confusion_matrix.png",
        "report.json",
        "sample_digit.png",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "notes.txt"]
    assert rpt.clear_outputs(tmp_path / "absent") == []


def _failed(kind: str, error: str, cause: str) -> dict[str, Any]:
    key = "taskFailedEventDetails" if kind == "TaskFailed" else "executionFailedEventDetails"
    return {"type": kind, key: {"error": error, "cause": cause}}


def test_a_held_lease_prints_who_holds_it() -> None:
    cause = json.dumps(
        {
            "errorType": "EndpointBusyError",
            "errorMessage": "endpoint mnist-ll-e is being deployed by execution run-7 "
            "(lease expires at epoch 1); run again once that deployment ends",
        }
    )
    line = lease_wait_line(_failed("TaskFailed", "EndpointBusyError", cause))
    assert line is not None and line.strip() == "waiting for the endpoint lease held by run-7"
    assert lease_wait_line(_failed("ExecutionFailed", "EndpointBusyError", cause)) is None
    assert lease_wait_line(_failed("TaskFailed", "NameCollisionError", cause)) is None


def test_the_local_lease_retry_interval_replaces_only_the_busy_retry() -> None:
    definition: dict[str, Any] = {
        "States": {
            "Deploy": {
                "Retry": [
                    {"ErrorEquals": ["Lambda.ServiceException"], "IntervalSeconds": 2},
                    {"ErrorEquals": ["EndpointBusyError"], "IntervalSeconds": 120},
                ]
            },
            "Map": {
                "ItemProcessor": {
                    "States": {"X": {"Retry": [{"ErrorEquals": ["EndpointBusyError"]}]}}
                }
            },
        }
    }
    assert override_retry_interval(definition, "EndpointBusyError", 2) == 2
    retries = definition["States"]["Deploy"]["Retry"]
    assert [r["IntervalSeconds"] for r in retries] == [2, 2]
    inner = definition["States"]["Map"]["ItemProcessor"]["States"]["X"]["Retry"][0]
    assert inner["IntervalSeconds"] == 2


def test_services_says_how_to_approve_a_waiting_version() -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1"
    event = {"detail": {"ModelPackageArn": arn, "ModelApprovalStatus": "PendingManualApproval"}}
    assert approval_line(event) == (
        f"waiting for approval: {arn} — approve with: python -m local approve {arn}"
    )
    assert (
        approval_line({"detail": {"ModelPackageArn": arn, "ModelApprovalStatus": "Approved"}})
        is None
    )


def test_a_taken_port_names_the_flag_to_change() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(PortTakenError, match=f"port {port} .*Pass --sagemaker-port N"):
            check_port(port, "--sagemaker-port", "the local SageMaker")
    check_port(0, "--port", "moto")  # 0: any free port, never taken


def test_services_keeps_fixed_default_ports() -> None:
    args = build_parser().parse_args(["services"])
    assert (args.port, args.sagemaker_port) == (5055, 5056)


@pytest.mark.parametrize("command", ["run", "services", "approve", "make-dataset"])
def test_help_reads_as_plain_text(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    text = capsys.readouterr().out
    assert "``" not in text and "`" not in text and ":mod:" not in text and "::" not in text
    if command == "make-dataset":
        # The layout keeps its lines (RawDescriptionHelpFormatter).
        assert "\n    OUT/train/part-00000.npz" in text


def test_services_refuses_a_taken_port_before_starting_anything() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = str(held.getsockname()[1])
        proc, seconds = _cli("services", "--port", port, "--sagemaker-port", "0", "--no-pipeline")
    assert proc.returncode == 2
    assert f"port {port} (moto) is taken" in proc.stderr and "Pass --port N" in proc.stderr
    assert "dataset:" not in proc.stderr and seconds < 10
