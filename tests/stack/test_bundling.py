"""The one Lambda asset, bundled locally for arm64 (no Docker), from a hash-locked
requirements file, with file modes Lambda can read whatever the umask."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest
from aws_cdk import aws_lambda as lambda_

from stacks.bundling import (
    LOCK,
    REQUIREMENTS,
    RUNTIME_PROVIDED_PACKAGES,
    LocalPythonBundling,
    asset_hash,
    bundle,
    lock_command,
    python_version,
)
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
    with (root / "lambdas" / "requirements.lock").open("a") as f:
        f.write("# touched\n")
    assert asset_hash(root, "3.14") != after_source
    assert asset_hash(root, "3.13") != asset_hash(root, "3.14")


# -- the lock ----------------------------------------------------------------------------

_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^ \\]+) \\$")


def _lock_entries(text: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a ``--generate-hashes`` lock."""
    entries: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for line in text.splitlines():
        match = _PIN.match(line)
        if match:
            current = match.group(1).lower()
            entries[current] = (match.group(2), [])
        elif line.strip().startswith("--hash=sha256:"):
            entries[current][1].append(line.strip().removeprefix("--hash=sha256:").rstrip(" \\"))
        elif line.strip() and not line.lstrip().startswith("#"):
            raise AssertionError(f"unexpected lock line: {line!r}")
    return entries


def test_the_lock_pins_every_package_with_hashes_and_matches_the_top_level_pins() -> None:
    entries = _lock_entries((ROOT / LOCK).read_text())
    pins = {
        name.lower(): version
        for line in (ROOT / REQUIREMENTS).read_text().splitlines()
        if "==" in line and not line.startswith("#")
        for name, version in [line.split("#")[0].strip().split("==")]
    }
    for name, version in pins.items():
        assert entries[name][0] == version, name  # `make lock` after editing the pins
    # Transitive ones too (powertools -> typing-extensions, xray -> wrapt).
    assert {"typing-extensions", "wrapt"} <= set(entries)
    for name, (_version, hashes) in entries.items():
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), name
    assert not set(entries) & set(RUNTIME_PROVIDED_PACKAGES)  # the runtime's boto3 set


def test_make_lock_runs_uv_for_the_runtime_python_on_arm64() -> None:
    command = lock_command(ROOT, python_version(RUNTIME))
    assert command[1:4] == ["pip", "compile", str(REQUIREMENTS)]
    assert "--generate-hashes" in command
    at = command.index("--python-version")
    assert command[at + 1] == python_version(RUNTIME)
    assert command[command.index("--python-platform") + 1] == "aarch64-manylinux_2_28"
    assert command[-1] == str(LOCK)
    assert "lock:" in (ROOT / "Makefile").read_text()


# -- a bundle made under umask 077 ---------------------------------------------------------


def _tiny_project(tmp_path: Path, lock: str) -> Path:
    """lambdas/ and pipeline_core/ with one small locked wheel (fast to fetch)."""
    root = tmp_path / "project"
    (root / "lambdas").mkdir(parents=True)
    (root / "pipeline_core").mkdir()
    (root / "lambdas" / "__init__.py").write_text("")
    (root / "lambdas" / "handler.py").write_text("def handler(e, c):\n    return e\n")
    tool = root / "lambdas" / "tool.sh"
    tool.write_text("#!/bin/sh\necho ok\n")
    tool.chmod(0o700)
    (root / "pipeline_core" / "__init__.py").write_text("")
    (root / "lambdas" / "requirements.lock").write_text(lock)
    return root


def _typing_extensions_lock() -> str:
    text = (ROOT / LOCK).read_text()
    start = text.index("typing-extensions==")
    end = text.index("\n", text.index("    # via", start))
    return text[start:end] + "\n"


def _zip_tree(tree: Path, dest: Path) -> Path:
    """Zip the bundle as the asset is uploaded: every folder and file with its mode."""
    with zipfile.ZipFile(dest, "w") as zf:
        for path in sorted(tree.rglob("*")):
            zf.write(path, path.relative_to(tree).as_posix())
    return dest


def test_a_bundle_made_under_umask_077_has_modes_lambda_can_read(tmp_path: Path) -> None:
    root = _tiny_project(tmp_path, _typing_extensions_lock())
    out = tmp_path / "bundle"
    old = os.umask(0o077)
    try:
        out.mkdir()
        bundle(root, out, python_version(RUNTIME), tmp_path / "cache")
    finally:
        os.umask(old)
    modes = {
        info.filename: stat.S_IMODE(info.external_attr >> 16)
        for info in zipfile.ZipFile(_zip_tree(out, tmp_path / "asset.zip")).infolist()
    }
    assert "typing_extensions.py" in modes and "lambdas/handler.py" in modes
    assert modes["lambdas/tool.sh"] == 0o755
    for name, mode in modes.items():
        if name.endswith("/"):
            assert mode == 0o755, name
        elif name != "lambdas/tool.sh":
            assert mode == 0o644, name


def test_the_bundle_refuses_a_lock_whose_hash_does_not_match(tmp_path: Path) -> None:
    lock = _typing_extensions_lock()
    first = re.search(r"sha256:([0-9a-f]{64})", lock)
    assert first
    tampered = lock.replace(first.group(1), "0" * 64).replace(
        re.findall(r"sha256:([0-9a-f]{64})", lock)[-1], "1" * 64
    )
    root = _tiny_project(tmp_path, tampered)
    with pytest.raises(subprocess.CalledProcessError):
        bundle(root, tmp_path / "bundle", python_version(RUNTIME), tmp_path / "cache")
