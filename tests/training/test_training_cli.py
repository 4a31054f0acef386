from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BASE_HP

from training.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "argv", [["--help"], ["train", "--help"], ["tune", "--help"], ["serve", "--help"]]
)
def test_help_exits_zero(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_module_entry_point_runs():
    out = subprocess.run(
        [sys.executable, "-m", "training", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0 and "train" in out.stdout


def test_train_writes_a_model_and_prints_metrics(channels, tmp_path, capsys):
    hp = json.dumps({**BASE_HP, "epochs": 2})  # numbers are converted to SageMaker strings
    code = main(
        [
            "train",
            "--train",
            str(channels["train"]),
            "--validation",
            str(channels["validation"]),
            "--hyperparameters",
            hp,
            "--output",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert "validation:binary_f_beta" in summary["metrics"]
    assert (tmp_path / "model.tar.gz").is_file()


def test_train_hyperparameters_from_file(channels, tmp_path):
    path = tmp_path / "hp.json"
    path.write_text(json.dumps({**BASE_HP, "epochs": "1"}))
    code = main(
        [
            "train",
            "--train",
            str(channels["train"]),
            "--hyperparameters",
            f"@{path}",
            "--output",
            str(tmp_path / "out"),
            "--quiet",
        ]
    )
    assert code == 0


def test_bad_hyperparameter_exits_2_naming_it(channels, tmp_path, capsys):
    hp = json.dumps({**BASE_HP, "epochs": "-3"})
    code = main(
        [
            "train",
            "--train",
            str(channels["train"]),
            "--hyperparameters",
            hp,
            "--output",
            str(tmp_path),
        ]
    )
    assert code == 2 and "'epochs'" in capsys.readouterr().err


def test_bad_json_and_missing_data_exit_2(channels, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(
            [
                "train",
                "--train",
                str(channels["train"]),
                "--hyperparameters",
                "{nope",
                "--output",
                str(tmp_path),
            ]
        )
    assert info.value.code == 2
    code = main(["train", "--train", str(tmp_path / "missing"), "--output", str(tmp_path)])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_tune_rejects_a_bad_request(channels, tmp_path, capsys):
    code = main(
        [
            "tune",
            "--request",
            '{"HyperParameterTuningJobName": "x"}',
            "--train",
            str(channels["train"]),
            "--output",
            str(tmp_path),
        ]
    )
    assert code == 2 and "HyperParameterTuningJobConfig" in capsys.readouterr().err


def test_serve_rejects_a_corrupt_model(tmp_path, capsys):
    bad = tmp_path / "model.tar.gz"
    bad.write_bytes(b"nope")
    assert main(["serve", "--model", str(bad), "--port", "0"]) == 2
    assert "model.tar.gz" in capsys.readouterr().err
