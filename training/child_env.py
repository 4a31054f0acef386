"""The environment of the child interpreters the local Linear Learner starts.

Tuning-job workers (``python -m training._worker``) and the extra hosts of a
multi-instance job (``python -m training.distributed``) are fresh
interpreters started from the project root, with this package importable
and every BLAS/OpenMP pool capped at one thread before numpy loads, so two
jobs on two cores never run four threads each. Standard library only: the
worker imports it before anything heavy.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Thread-count variables the BLAS/OpenMP libraries read when they load.
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
#: The directory holding the ``training`` package: a child's working directory.
PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)


def child_env() -> dict[str, str]:
    """This process's environment with one BLAS thread and the project on
    ``PYTHONPATH`` (ahead of whatever was there)."""
    env = dict(os.environ)
    env.update({var: "1" for var in THREAD_VARS})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PROJECT_ROOT, env.get("PYTHONPATH")) if p)
    return env
