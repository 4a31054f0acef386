"""One Lambda asset for every handler, bundled locally (no Docker).

The bundle holds ``lambdas/``, ``pipeline_core/`` and the wheels from
``lambdas/requirements.txt`` installed for the Lambda's platform (arm64,
the runtime's CPython). boto3 comes from the runtime. The pip result is cached
under ``.build/`` keyed by a hash of the requirements and the target, so
re-synths only copy files.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_

#: Folders of the project copied into the bundle, as importable packages.
PACKAGES: tuple[str, ...] = ("lambdas", "pipeline_core")
REQUIREMENTS = Path("lambdas") / "requirements.txt"
PLATFORMS: tuple[str, ...] = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
#: Pulled in transitively (aws-xray-sdk → botocore) but provided by the
#: Lambda runtime; bundling them would shadow the runtime's matched boto3 set.
RUNTIME_PROVIDED: tuple[str, ...] = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "urllib3",
    "dateutil",
    "python_dateutil",
    "six",
)
_SKIP_DIRS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})


def python_version(runtime: lambda_.Runtime) -> str:
    """``python3.14`` → ``3.14``."""
    name = runtime.name
    if not name.startswith("python"):
        raise ValueError(f"not a Python runtime: {name}")
    return name.removeprefix("python")


def _source_files(root: Path) -> Iterable[Path]:
    for package in PACKAGES:
        base = root / package
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and not _SKIP_DIRS.intersection(path.relative_to(root).parts):
                if path.suffix not in (".pyc", ".pyo"):
                    yield path


def requirements_key(root: Path, version: str) -> str:
    """Cache key of the pip install: requirements text + the target platform."""
    digest = hashlib.sha256()
    req = root / REQUIREMENTS
    digest.update(req.read_bytes() if req.exists() else b"")
    digest.update(f"{version}|{'|'.join(PLATFORMS)}|cp".encode())
    return digest.hexdigest()[:16]


def asset_hash(root: Path, version: str) -> str:
    """Hash of everything that goes into the bundle (sources + deps key)."""
    digest = hashlib.sha256(requirements_key(root, version).encode())
    for path in _source_files(root):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def install_requirements(root: Path, version: str, cache_dir: Path) -> Path:
    """Install the Lambda deps for arm64 into ``cache_dir/<key>`` once; return it."""
    target = cache_dir / f"deps-py{version}-{requirements_key(root, version)}"
    if (target / ".complete").exists():
        return target
    req = root / REQUIREMENTS
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="deps-", dir=cache_dir))
    try:
        if req.exists():
            platform_args = [arg for p in PLATFORMS for arg in ("--platform", p)]
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-compile",
                    *platform_args,
                    "--only-binary=:all:",
                    "--python-version",
                    version,
                    "--implementation",
                    "cp",
                    "--target",
                    str(staging),
                    "-r",
                    str(req),
                ],
                check=True,
            )
        _drop_runtime_provided(staging)
        (staging / ".complete").write_text("ok\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _drop_runtime_provided(site: Path) -> None:
    for entry in list(site.iterdir()):
        base = entry.name.split("-", 1)[0] if entry.name.endswith(".dist-info") else entry.stem
        if base in RUNTIME_PROVIDED or entry.name == "bin":
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def bundle(root: Path, output_dir: Path, version: str, cache_dir: Path) -> None:
    """Fill ``output_dir`` with deps + project packages (the Lambda's /var/task)."""
    deps = install_requirements(root, version, cache_dir)
    shutil.copytree(
        deps,
        output_dir,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(".complete", "__pycache__", "*.pyc"),
    )
    for path in _source_files(root):
        dest = output_dir / path.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)


@jsii.implements(ILocalBundling)
class LocalPythonBundling:
    """Bundles on this machine; jsii calls ``try_bundle`` positionally."""

    def __init__(self, *, root: Path, version: str, cache_dir: Path) -> None:
        self._root = root
        self._version = version
        self._cache_dir = cache_dir

    def try_bundle(self, output_dir: str, *_options: Any, **_kw_options: Any) -> bool:
        bundle(self._root, Path(output_dir), self._version, self._cache_dir)
        return True


def lambda_code(*, root: Path, runtime: lambda_.Runtime) -> lambda_.Code:
    """The shared asset for every pipeline Lambda."""
    version = python_version(runtime)
    # The project root is only a stand-in source path: the custom hash means
    # CDK never fingerprints it, and the local bundler copies what it needs.
    return lambda_.Code.from_asset(
        str(root),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=asset_hash(root, version),
        bundling=BundlingOptions(
            # Only used if local bundling declined, which it never does.
            image=runtime.bundling_image,
            local=LocalPythonBundling(root=root, version=version, cache_dir=root / ".build"),
        ),
    )
