"""The tutorial's flow on the SageMaker Python SDK v3 (``.venv-sdk3``) against
``python -m local services`` with only its env file in the environment (no
``SAGEMAKER_VALIDATE_ROLE``): the SDK validates the env file's role with
``iam:SimulatePrincipalPolicy`` and ``iam:GetRole``, then ModelTrainer on CSV
channels, HyperparameterTuner (6 jobs, 2 at a time), ModelBuilder deploy,
``Endpoint.invoke`` and delete."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SDK3_PYTHON = ROOT / ".venv-sdk3" / "bin" / "python"


@pytest.fixture(scope="module")
def flow(account: dict[str, str]) -> dict[str, object]:
    if not SDK3_PYTHON.exists():
        pytest.fail(".venv-sdk3 is missing: run `make setup`")
    env = {
        # only the env file's variables reach the SDK: no AWS_* or SAGEMAKER_* of ours
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))},
        **account,
        "FLOW_TUNER_SEED": "1",
        "FLOW_FAST_SLEEP": "1",
        "FLOW_SCHEMA_CHECKED_ONCE": "1",
    }
    proc = subprocess.run(
        [str(SDK3_PYTHON), str(Path(__file__).with_name("tutorial_flow_v3.py"))],
        cwd=account["FLOW_WORK"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    Path(account["FLOW_WORK"], "flow_v3.out").write_text(proc.stdout + proc.stderr)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("FLOW-RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-6000:]
    result: dict[str, object] = json.loads(lines[-1][len("FLOW-RESULT ") :])
    # the SDK warns when it cannot reach a verdict on a role (and goes on anyway)
    result["unverified_role_warning"] = "Could not verify permissions" in proc.stderr
    return result


def test_env_file_leaves_role_validation_on(account: dict[str, str]) -> None:
    assert "SAGEMAKER_VALIDATE_ROLE" not in account
    assert account["MNIST_LL_ROLE_ARN"] == "arn:aws:iam::123456789012:role/SageMakerExecutionRole"


def test_v3_trains_tunes_deploys_invokes_and_deletes(flow: dict[str, object]) -> None:
    assert flow["fit_status"] == "Completed"
    assert str(flow["fit_artifact"]).endswith(f"/{flow['fit_job']}/output/model.tar.gz")
    assert flow["tuning_status"] == "Completed" and flow["tuning_counts"] == 6
    assert flow["analytics_rows"] == 6  # tuner.analytics().dataframe(): one row per job
    assert flow["analytics_best"] == pytest.approx(float(str(flow["best_objective"])))
    assert flow["endpoint_status"] == "InService"
    single = flow["single"]
    assert isinstance(single, list) and single[0]["predicted_label"] in (0, 1)
    assert 0.0 <= single[0]["score"] <= 1.0
    confusion = flow["confusion"]
    assert isinstance(confusion, dict) and sum(confusion.values()) == 400  # 100 CSV chunks
    assert float(str(flow["accuracy"])) > 0.95 and float(str(flow["f1"])) > 0.8
    assert flow["deleted"] == ["endpoint", "endpoint-config", "model"]


def test_v3_verifies_the_env_file_role_conclusively(flow: dict[str, object]) -> None:
    assert flow["unverified_role_warning"] is False


def test_v3_refuses_a_role_without_the_permissions_it_simulates(flow: dict[str, object]) -> None:
    """The check the env file's role passes is a real one: the SDK simulates the
    role's policies and names what a bare role lacks."""
    (missing,) = flow["bare_role"]  # type: ignore[misc]
    assert "ecr:GetAuthorizationToken" in missing and "cloudwatch:PutMetricData" in missing
