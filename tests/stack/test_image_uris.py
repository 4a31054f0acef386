"""Linear Learner image URI: the SDK's table, resolved per region at deploy time."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from stacks import image_uris
from stacks.asl import lambda_functions
from tests.stack.conftest import Synth
from tests.stack.helpers import ROOT

SDK_PYTHON = ROOT / ".venv-sdk" / "bin" / "python"
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1"]


def image_for(s: Synth, region: str) -> str:
    functions = lambda_functions(s.json, region=region)
    (image,) = {
        f["environment"]["LINEAR_LEARNER_IMAGE"]
        for f in functions.values()
        if "LINEAR_LEARNER_IMAGE" in f["environment"]
    }
    return image


def test_us_east_1_resolves_to_the_tutorial_image(synthesized: Synth) -> None:
    assert image_for(synthesized, "us-east-1") == (
        "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
    )


def test_china_uses_the_china_domain(synthesized: Synth) -> None:
    assert image_for(synthesized, "cn-north-1") == (
        "390948362332.dkr.ecr.cn-north-1.amazonaws.com.cn/linear-learner:1"
    )


def test_mapping_covers_every_region_of_the_vendored_table(synthesized: Synth) -> None:
    mappings = synthesized.json["Mappings"]
    (table,) = [m for m in mappings.values() if "us-east-1" in m]
    assert {r: v["account"] for r, v in table.items()} == image_uris.registries()
    assert len(table) > 30


def test_vendored_table_names_its_source() -> None:
    data = json.loads(image_uris.DATA_FILE.read_text())
    assert "sagemaker==" in data["source"]
    assert (image_uris.DATA_FILE.parent / "README.md").exists()


def test_matches_the_sagemaker_sdk_for_several_regions(synthesized: Synth) -> None:
    if not SDK_PYTHON.exists():
        pytest.fail(".venv-sdk is missing: run `make setup` (it creates the SDK reference venv)")
    script = (
        "import json, sys, sagemaker.image_uris as i; "
        "print(json.dumps({r: i.retrieve('linear-learner', r) for r in sys.argv[1:]}))"
    )
    result = subprocess.run(
        [str(SDK_PYTHON), "-c", script, *REGIONS],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
            "PATH": "/usr/bin:/bin",
            "HOME": str(Path.home()),
        },
    )
    assert result.returncode == 0, result.stderr
    expected = json.loads(result.stdout.strip().splitlines()[-1])
    assert {r: image_for(synthesized, r) for r in REGIONS} == expected
