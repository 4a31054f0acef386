"""Measure 1: recordIO-protobuf write of the train split, ours vs the SDK v2."""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

from bench.common import Measure, best_of
from pipeline_core import recordio

ROOT = Path(__file__).resolve().parent.parent
SDK_PYTHON = ROOT / ".venv-sdk" / "bin" / "python"

_SDK_SCRIPT = textwrap.dedent(
    """
    import io, sys, time, numpy as np
    from sagemaker.amazon.common import write_numpy_to_dense_tensor
    x = np.load(sys.argv[1]); y = np.load(sys.argv[2])
    best = float("inf")
    for _ in range(int(sys.argv[4])):
        buf = io.BytesIO()
        t = time.perf_counter()
        write_numpy_to_dense_tensor(buf, x, y)
        best = min(best, time.perf_counter() - t)
    open(sys.argv[3], "wb").write(buf.getvalue())
    print(best)
    """
)


def run(features: np.ndarray, labels: np.ndarray, sdk_repeat: int = 1) -> Measure:
    ours_s, buf = best_of(lambda: _write(features, labels), repeat=5)
    data = buf.getvalue()
    megabytes = len(data) / 1e6
    baseline: float | None = None
    identical: bool | None = None
    with tempfile.TemporaryDirectory() as tmp:
        xp, yp, out = (Path(tmp) / n for n in ("x.npy", "y.npy", "sdk.rec"))
        np.save(xp, features)
        np.save(yp, labels)
        if SDK_PYTHON.exists():
            proc = subprocess.run(
                [str(SDK_PYTHON), "-c", _SDK_SCRIPT, str(xp), str(yp), str(out), str(sdk_repeat)],
                capture_output=True,
                text=True,
                env={"SAGEMAKER_SUPPRESS_V2_WARNING": "1", "PATH": "/usr/bin:/bin"},
                check=True,
            )
            baseline = float(proc.stdout.strip().splitlines()[-1])
            identical = out.read_bytes() == data
        else:
            print("  (no .venv-sdk: run `make setup` for the SDK baseline)", file=sys.stderr)
    met = None if baseline is None else bool(identical and baseline / ours_s >= 20)
    return Measure(
        name="recordIO write, train split (50,000 x 784 + labels)",
        metric="seconds",
        baseline_name="sagemaker SDK v2 write_numpy_to_dense_tensor",
        baseline=baseline,
        ours=ours_s,
        unit="s",
        goal=">= 20x faster, byte-identical",
        met=met,
        details={
            "megabytes": round(megabytes, 1),
            "ours_mb_per_s": round(megabytes / ours_s, 1),
            "baseline_mb_per_s": None if baseline is None else round(megabytes / baseline, 1),
            "byte_identical": identical,
        },
        note=f"byte-identical: {identical}; {megabytes / ours_s:.0f} MB/s",
    )


def _write(features: np.ndarray, labels: np.ndarray) -> io.BytesIO:
    buf = io.BytesIO()
    recordio.write_dense(buf, features, labels)
    return buf
