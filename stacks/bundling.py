"""One Lambda asset for every handler, bundled locally (no Docker).

The bundle holds ``lambdas/``, ``pipeline_core/`` and the wheels pinned in
``lambdas/requirements.lock``, installed for the Lambda's platform (arm64, the
runtime's CPython) with ``--require-hashes``: every package, transitive ones
included, is pinned with its hashes by ``uv pip compile`` (``make lock``
regenerates it from ``lambdas/requirements.txt``). boto3 and its dependencies
come from the runtime and are left out of the lock. The pip result is cached
under ``.build/`` keyed by a hash of the lock and the target, so re-synths only
copy files. Every file of the bundle ends 0644 (0755 if executable) and every
folder 0755, whatever the umask: Lambda must read them as another user.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
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
#: The top-level pins (edited by hand) and the hash-locked file made from them.
REQUIREMENTS = Path("lambdas") / "requirements.txt"
LOCK = Path("lambdas") / "requirements.lock"
PLATFORMS: tuple[str, ...] = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
#: uv's name for the platform the lock is resolved for.
LOCK_PLATFORM = "aarch64-manylinux_2_28"
#: Bump when the bundle's layout or modes change, so the asset hash follows.
BUNDLE_FORMAT = "2"
FILE_MODE = 0o644
EXEC_MODE = 0o755
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
#: The same, as package names for ``uv pip compile --no-emit-package``.
RUNTIME_PROVIDED_PACKAGES: tuple[str, ...] = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "urllib3",
    "python-dateutil",
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
    """Cache key of the pip install: the lock (pins and hashes) + the target platform."""
    digest = hashlib.sha256()
    lock = root / LOCK
    digest.update(lock.read_bytes() if lock.exists() else b"")
    digest.update(f"{version}|{'|'.join(PLATFORMS)}|cp".encode())
    return digest.hexdigest()[:16]


def lock_command(root: Path, version: str, output: Path | None = None) -> list[str]:
    """``uv pip compile`` of the Lambda requirements: every transitive package
    pinned with ``--hash``, resolved for the runtime's Python on arm64 Linux."""
    uv = Path(sys.executable).with_name("uv")
    return [
        str(uv) if uv.exists() else "uv",
        "pip",
        "compile",
        str(REQUIREMENTS),
        "--generate-hashes",
        "--quiet",
        "--python-version",
        version,
        "--python-platform",
        LOCK_PLATFORM,
        *(arg for p in RUNTIME_PROVIDED_PACKAGES for arg in ("--no-emit-package", p)),
        "--output-file",
        str(output or LOCK),
    ]


def asset_hash(root: Path, version: str) -> str:
    """Hash of everything that goes into the bundle: the lock (through the
    install's key), every source file and the bundle format (modes)."""
    digest = hashlib.sha256(f"{requirements_key(root, version)}|{BUNDLE_FORMAT}".encode())
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
    req = root / LOCK
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
                    # The lock pins every package with its hashes: nothing else comes in.
                    "--require-hashes",
                    "--no-deps",
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
        if (target / ".complete").exists():  # a concurrent bundle finished first: keep its
            shutil.rmtree(staging, ignore_errors=True)
            return target
        if target.exists():  # an incomplete leftover
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
    normalize_modes(output_dir)


def normalize_modes(tree: Path) -> None:
    """0755 for folders and executables, 0644 for every other file, whatever the
    umask was when pip or the copy made them (symlinks are left alone)."""
    os.chmod(tree, EXEC_MODE)
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, EXEC_MODE)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            executable = os.stat(path).st_mode & stat.S_IXUSR
            os.chmod(path, EXEC_MODE if executable else FILE_MODE)


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


def main(argv: list[str] | None = None) -> int:
    """``python -m stacks.bundling lock``: regenerate ``lambdas/requirements.lock``."""
    import argparse

    from stacks.functions import RUNTIME

    parser = argparse.ArgumentParser(prog="python -m stacks.bundling")
    parser.add_argument("command", choices=["lock"])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args(argv)
    command = lock_command(args.root, python_version(RUNTIME))
    return subprocess.run(command, cwd=args.root, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
