"""The one Lambda asset, bundled locally for arm64 (no Docker)."""

from __future__ import annotations

import shutil
from pathlib import Path

from aws_cdk import aws_lambda as lambda_

from stacks.bundling import LocalPythonBundling, asset_hash, python_version
from stacks.functions import RUNTIME
from tests.stack.helpers import ROOT


def test_python_version_follows_the_runtime() -> None:
    assert python_version(lambda_.Runtime.PYTHON_3_13) == "3.13"
    assert python_version(RUNTIME) == RUNTIME.name.removeprefix("python")


def test_local_bundling_builds_an_arm64_package(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    out.mkdir()
    version = python_version(RUNTIME)
    bundler = LocalPythonBundling(root=ROOT, version=version, cache_dir=ROOT / ".build")
    assert bundler.try_bundle(str(out), object()) is True

    assert (out / "pipeline_core" / "config.py").exists()
    assert (out / "lambdas" / "requirements.txt").exists()
    assert (out / "aws_lambda_powertools").is_dir()
    assert (out / "aws_xray_sdk").is_dir()
    tag = f"cpython-{version.replace('.', '')}-aarch64-linux-gnu"
    assert list((out / "numpy" / "_core").glob(f"_multiarray_umath.{tag}.so"))
    # boto3/botocore come from the runtime: bundling them would shadow it.
    for provided in ("boto3", "botocore", "s3transfer", "urllib3"):
        assert not (out / provided).exists(), provided
    assert not list(out.rglob("__pycache__"))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert size < 200 * 1024 * 1024  # well under Lambda's 250 MB unzipped limit


def test_asset_hash_changes_with_sources_and_requirements(tmp_path: Path) -> None:
    root = tmp_path / "project"
    for package in ("lambdas", "pipeline_core"):
        shutil.copytree(
            ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    before = asset_hash(root, "3.14")
    assert asset_hash(root, "3.14") == before
    (root / "pipeline_core" / "config.py").write_text("# changed\n", encoding="utf-8")
    after_source = asset_hash(root, "3.14")
    assert after_source != before
    with (root / "lambdas" / "requirements.txt").open("a") as f:
        f.write("# touched\n")
    assert asset_hash(root, "3.14") != after_source
    assert asset_hash(root, "3.13") != asset_hash(root, "3.14")
