"""Measure 8: time to the first result on a fresh clone.

``git clone`` of this checkout's HEAD into a temporary folder, then, timed
from outside: ``make run`` (the runtime venv installed by uv, the CDK synth,
the local account, the execution; the MNIST cache in place) and, in a second
clone, ``make setup`` (the dev tools, the SDK v2 and v3 venvs, node_modules).
uv keeps a download cache in the user's home, as pip does: on a machine that
never installed these packages the downloads come on top, so the row says
whether the cache was warm.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import Measure

ROOT = Path(__file__).resolve().parent.parent
FIRST_RUN_GOAL_S = 45.0
SETUP_GOAL_S = 30.0


def _uv_cache_warm() -> bool:
    cache = Path(os.environ.get("UV_CACHE_DIR", Path.home() / ".cache" / "uv"))
    return cache.is_dir() and any(cache.iterdir())


def _clone(into: Path) -> Path:
    target = into / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True)
    return target


def _timed_make(checkout: Path, target: str, timeout: int = 900) -> tuple[float, str]:
    env = {**os.environ, "MNIST_LL_OFFLINE": "1", "ARGS": ""}
    env.pop("MAKEFLAGS", None)
    start = time.perf_counter()
    proc = subprocess.run(
        ["make", target],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"make {target} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def _in_fresh_clone(target: str) -> tuple[float, str, bool]:
    """``make <target>`` in a fresh clone: wall seconds, its output, and
    whether uv's download cache was warm."""
    warm = _uv_cache_warm()
    with tempfile.TemporaryDirectory(prefix="bench-clone-") as tmp:
        checkout = _clone(Path(tmp))
        wall, out = _timed_make(checkout, target)
        shutil.rmtree(checkout, ignore_errors=True)
    return wall, out, warm


def _against_goal(name: str, wall: float, goal: float, note: str, **details: object) -> Measure:
    return Measure(
        name=name,
        metric="wall seconds",
        baseline_name="the goal",
        baseline=goal,
        ours=wall,
        unit="s",
        goal=f"<= {goal:.0f} s",
        met=wall <= goal,
        show_ratio=False,
        details={"wall_seconds": wall, **details},
        note=note,
    )


def first_run() -> Measure:
    """A fresh clone's first ``make run``."""
    wall, out, warm = _in_fresh_clone("run")
    total = re.search(r"^total ([0-9.]+)s$", out, re.M)
    run_s = float(total[1]) if total else float("nan")
    return _against_goal(
        "a fresh clone's first make run (MNIST cached)",
        wall,
        FIRST_RUN_GOAL_S,
        f"of which the run (synth, account, execution, report) {run_s:.1f} s; "
        f"uv download cache {'warm' if warm else 'empty'}",
        run_seconds=run_s,
        uv_cache_warm=warm,
    )


def setup() -> Measure:
    """A fresh clone's ``make setup`` (what ``make test`` installs first)."""
    wall, _out, warm = _in_fresh_clone("setup")
    return _against_goal(
        "a fresh clone's make setup (make test's set-up)",
        wall,
        SETUP_GOAL_S,
        "runtime and dev venvs, SDK v2 and v3 venvs, node_modules; "
        f"uv download cache {'warm' if warm else 'empty'}",
        uv_cache_warm=warm,
    )
