"""One tuning-job training process: ``python -m training._worker``.

The tuner starts this module as a fresh interpreter (never a fork of a
threaded parent, never a re-import of the parent's ``__main__``) with the
BLAS/OpenMP thread variables set to 1, so two jobs on two cores never run
four threads each. It reads ``{"channels", "hyperparameters", "model_dir"}``
as JSON on stdin and writes JSON lines on stdout: ``{"kind": "event", ...}``
messages, then exactly one ``{"kind": "result", ...}`` or
``{"kind": "error", ...}``. Everything else it prints goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import IO, Any

from training.child_env import THREAD_VARS

__all__ = ["THREAD_VARS", "main"]


def _send(out: IO[str], message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def main() -> int:
    for var in THREAD_VARS:
        os.environ[var] = "1"
    protocol = sys.stdout
    sys.stdout = sys.stderr  # keep the protocol stream clean
    try:
        spec = json.loads(sys.stdin.read())
        import logging

        from threadpoolctl import threadpool_limits

        from training.trainer import MetricEvent, TrainingEvent, run_training_job

        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
        threadpool_limits(1)
        _send(protocol, {"kind": "event", "type": "started", "pid": os.getpid()})

        def forward(event: TrainingEvent) -> None:
            if isinstance(event, MetricEvent) and event.epoch is not None:
                _send(
                    protocol,
                    {
                        "kind": "event",
                        "type": "metric",
                        "name": event.name,
                        "value": event.value,
                        "epoch": event.epoch,
                    },
                )

        channels = {name: Path(path) for name, path in spec["channels"].items()}
        instances = int(spec.get("instance_count", 1))
        if instances > 1:
            from training.distributed import run_distributed_training_job

            result = run_distributed_training_job(
                channels,
                spec["hyperparameters"],
                Path(spec["model_dir"]),
                instances,
                distribution=spec.get("distribution"),
                on_event=forward,
            )
        else:
            result = run_training_job(
                channels, spec["hyperparameters"], Path(spec["model_dir"]), on_event=forward
            )
        _send(
            protocol,
            {
                "kind": "result",
                "metrics": result.metrics,
                "epochs_run": result.epochs_run,
                "stopped_early": result.stopped_early,
                "seconds": result.seconds,
                "instance_count": instances,
                "pid": os.getpid(),
            },
        )
        return 0
    except Exception as e:  # every failure becomes the job's FailureReason
        traceback.print_exc()
        _send(
            protocol,
            {
                "kind": "error",
                "type": type(e).__name__,
                "message": str(e) or type(e).__name__,
                "pid": os.getpid(),
            },
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
