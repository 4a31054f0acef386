"""``python -m local services`` for the SDK flows: one account per test module,
on a small generated dataset in MNIST's layout."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from local.account.mnist_cache import FILE_NAME, write_dataset
from tests.digits import make_digits

ROOT = Path(__file__).resolve().parents[2]


def read_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        assert line.startswith("export "), line
        key, _, value = line[len("export ") :].partition("=")
        env[key] = shlex.split(value)[0] if value else ""
    return env


@contextmanager
def running_services(
    work: Path, *args: str, env: Mapping[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str]]]:
    """``python -m local services --env-file F`` on a small generated dataset
    in ``work/cache``, on any free ports (the fixed defaults may be held by a
    developer's own account); its stderr goes to ``work/services.log``. Yields
    the process and the env file's variables once it is up; SIGTERM at the end
    (a test may have sent it already)."""
    cache = work / "cache"
    cache.mkdir()
    write_dataset(
        cache / FILE_NAME, [make_digits(1500, 1), make_digits(400, 2), make_digits(400, 3)]
    )
    env_file = work / "local-aws.env"
    log_path = work / "services.log"
    command = [sys.executable, "-m", "local", "services", "--env-file", str(env_file)]
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [*command, "--port", "0", "--sagemaker-port", "0", *args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={
                **os.environ,
                "MNIST_LL_CACHE": str(cache),
                "MNIST_LL_OFFLINE": "1",
                **(env or {}),
            },
        )
        try:
            deadline = time.monotonic() + 120
            while "is up" not in log_path.read_text():
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "services did not start"
                time.sleep(0.2)
            yield proc, read_env_file(env_file)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The env file's variables of a services account without the pipeline,
    plus ``FLOW_WORK`` (a work folder)."""
    work = tmp_path_factory.mktemp("account")
    # every local SageMaker response is checked against its output shape
    checked = {"MNIST_LL_CHECK_RESPONSES": "1"}
    with running_services(work, "--no-pipeline", env=checked) as (_proc, env):
        yield {**env, "FLOW_WORK": str(work)}
