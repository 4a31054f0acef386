"""``python -m local services`` for the SDK flows: one account per test module,
on a small generated dataset in MNIST's layout."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.account.mnist_cache import FILE_NAME, write_dataset
from tests.sdk.digits import make_digits

ROOT = Path(__file__).resolve().parents[2]


def read_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        assert line.startswith("export "), line
        key, _, value = line[len("export ") :].partition("=")
        env[key] = shlex.split(value)[0] if value else ""
    return env


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """``python -m local services --env-file F`` on a small generated dataset:
    the env file's variables, plus ``FLOW_WORK`` (a work folder)."""
    work = tmp_path_factory.mktemp("account")
    cache = work / "cache"
    cache.mkdir()
    write_dataset(
        cache / FILE_NAME, [make_digits(1500, 1), make_digits(400, 2), make_digits(400, 3)]
    )
    env_file = work / "local-aws.env"
    log = (work / "services.log").open("w")
    proc = subprocess.Popen(
        # Any free ports: the fixed defaults may be held by a developer's own account.
        [
            sys.executable,
            "-m",
            "local",
            "services",
            "--env-file",
            str(env_file),
            "--no-pipeline",
            "--port",
            "0",
            "--sagemaker-port",
            "0",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log,
        env={
            **os.environ,
            "MNIST_LL_CACHE": str(cache),
            "MNIST_LL_OFFLINE": "1",
            # every local SageMaker response is checked against its output shape
            "MNIST_LL_CHECK_RESPONSES": "1",
        },
    )
    try:
        deadline = time.monotonic() + 60
        while "is up" not in (work / "services.log").read_text():
            assert proc.poll() is None, (work / "services.log").read_text()
            assert time.monotonic() < deadline, "services did not start"
            time.sleep(0.2)
        yield {**read_env_file(env_file), "FLOW_WORK": str(work)}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
