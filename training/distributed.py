"""Multi-instance training: ``InstanceCount`` N runs as N worker processes.

SageMaker gives each instance of a ``ShardedByS3Key`` channel about 1/N of
the channel's S3 objects (API reference, ``S3DataSource.S3DataDistributionType``:
"If there are n ML compute instances launched for a training job, each
instance gets approximately 1/n of the number of S3 objects"); a
``FullyReplicated`` channel (validation) is copied whole to every instance.
The exact mapping is not published, so :func:`sharded_by_s3_key` uses the
simplest rule that meets it: the keys in ListObjectsV2 order (UTF-8 binary
order), key ``i`` to host ``algo-{i mod N + 1}``. Every host gets
``floor(K/N)`` or ``ceil(K/N)`` objects and the shares are disjoint.

The workers train one model data-parallel (Linear Learner is
parallelisable): each reads only its share, they pool the scaler statistics
and counts, split ``mini_batch_size`` between them (it stays the global
batch, so N workers take as many steps per epoch as one instance and the
same hyperparameters give the same quality), take the same number of
minibatch steps per epoch, and every
``sync_every`` steps (and at each epoch's end) average their parameters,
the moving average and the optimizer state through pipes to ``algo-1``,
which averages in host order and sends the result back, so every worker
holds bit-identical parameters after a sync (:mod:`training.parameter_sync`).
``algo-1`` writes the model.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from training.child_env import PROJECT_ROOT, child_env
from training.data import channel_files, load_channel
from training.errors import DataChannelError, DistributedTrainingError
from training.hyperparameters import parse_hyperparameters
from training.parameter_sync import ParameterSync
from training.trainer import EventCallback, TrainingResult, train

log = logging.getLogger("training")

F32 = npt.NDArray[np.float32]
T = TypeVar("T")

#: Minibatch steps between two parameter averages.
SYNC_EVERY = 4
#: The train channel's distribution when none is given.
SHARDED = "ShardedByS3Key"
REPLICATED = "FullyReplicated"


def sharded_by_s3_key(keys: Sequence[T], instance_count: int) -> list[list[T]]:
    """Host ``h``'s share (``h`` = 0..N-1 for ``algo-1``..``algo-N``) of a
    ``ShardedByS3Key`` channel: key ``i`` (in the given, listing order) to
    host ``i mod N``. Raises when there are fewer objects than instances, as
    SageMaker advises against (some instances would get no data)."""
    if instance_count < 1:
        raise DistributedTrainingError(f"instance count must be >= 1, got {instance_count}")
    if len(keys) < instance_count:
        raise DistributedTrainingError(
            f"ShardedByS3Key: {len(keys)} objects for {instance_count} instances; "
            "every instance needs at least one object"
        )
    return [list(keys[h::instance_count]) for h in range(instance_count)]


def load_share(
    files: Sequence[Path], *, feature_dim: int | None, name: str = "train"
) -> tuple[F32, F32]:
    """One worker's rows: its files only, in order."""
    parts = [load_channel(f, feature_dim=feature_dim, name=name) for f in files]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _train_rank(
    rank: int,
    size: int,
    share: Sequence[Path],
    validation: Path | None,
    hyperparameters: Mapping[str, str],
    conns: Sequence[Connection],
    every: int,
    seed: int | None,
    on_event: EventCallback | None = None,
) -> TrainingResult:
    hp = parse_hyperparameters(hyperparameters)
    x, y = load_share(share, feature_dim=hp.feature_dim)
    val = (
        None
        if validation is None
        else load_channel(validation, feature_dim=hp.feature_dim, name="validation")
    )
    kwargs: dict[str, Any] = {} if seed is None else {"seed": seed}
    return train(
        x,
        y,
        hp,
        validation=val,
        on_event=on_event,
        raw_hyperparameters=dict(hyperparameters),
        overwrite_input=True,
        sync=ParameterSync(rank, size, conns, every),
        **kwargs,
    )


def _worker_main() -> int:
    """Hosts ``algo-2``..``algo-N``: ``python -m training.distributed`` (a fresh
    interpreter, never a re-import of the parent's ``__main__``) with a JSON
    spec on stdin and its end of a socket pair as file descriptor ``fd``."""
    spec = json.loads(sys.stdin.read())
    conn = Connection(int(spec["fd"]))
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)  # algo-1 reports
    try:
        _train_rank(
            int(spec["rank"]),
            int(spec["size"]),
            [Path(p) for p in spec["share"]],
            None if spec["validation"] is None else Path(spec["validation"]),
            spec["hyperparameters"],
            [conn],
            int(spec["every"]),
            spec["seed"],
        )
        return 0
    except Exception as e:  # reported to algo-1, which fails the job
        try:
            conn.send(("error", f"{type(e).__name__}: {e}"))
        except (OSError, ValueError):
            pass
        return 1
    finally:
        conn.close()


def _spawn(rank: int, spec: dict[str, Any]) -> tuple[Connection, subprocess.Popen[bytes]]:
    mine, theirs = socket.socketpair()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "training.distributed"],
            stdin=subprocess.PIPE,
            env=child_env(),
            cwd=PROJECT_ROOT,
            pass_fds=(theirs.fileno(),),
        )
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({**spec, "rank": rank, "fd": theirs.fileno()}).encode())
        proc.stdin.close()
    finally:
        theirs.close()  # only the child holds it now: its death reads as EOF here
    return Connection(mine.detach()), proc


def train_distributed(
    channels: Mapping[str, Path],
    hyperparameters: Mapping[str, str],
    instance_count: int,
    *,
    distribution: Mapping[str, str] | None = None,
    on_event: EventCallback | None = None,
    sync_every: int = SYNC_EVERY,
    seed: int | None = None,
) -> TrainingResult:
    """Train one model on ``instance_count`` worker processes; returns
    ``algo-1``'s :class:`~training.trainer.TrainingResult`."""
    if "train" not in channels:
        raise DataChannelError("the train channel is required")
    files = channel_files(Path(channels["train"]))
    kind = (distribution or {}).get("train", SHARDED)
    if kind == SHARDED:
        shares = sharded_by_s3_key(files, instance_count)
    else:  # FullyReplicated: every host reads everything
        shares = [list(files) for _ in range(instance_count)]
    validation = Path(channels["validation"]) if "validation" in channels else None
    for rank, share in enumerate(shares):
        log.info(
            "#data: host=algo-%d reads %d of %d train objects", rank + 1, len(share), len(files)
        )
    spec: dict[str, Any] = {
        "size": instance_count,
        "validation": None if validation is None else str(validation),
        "hyperparameters": dict(hyperparameters),
        "every": sync_every,
        "seed": seed,
    }
    conns: list[Connection] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for rank in range(1, instance_count):
            conn, proc = _spawn(rank, {**spec, "share": [str(p) for p in shares[rank]]})
            conns.append(conn)
            procs.append(proc)
        result = _train_rank(
            0,
            instance_count,
            shares[0],
            validation,
            hyperparameters,
            conns,
            sync_every,
            seed,
            on_event,
        )
        for rank, proc in enumerate(procs, start=2):
            code = proc.wait(timeout=60)
            if code != 0:
                raise DistributedTrainingError(f"worker algo-{rank} exited with {code}")
        return result
    finally:
        for conn in conns:
            conn.close()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def run_distributed_training_job(
    channels: Mapping[str, Path],
    hyperparameters: Mapping[str, str],
    model_dir: Path,
    instance_count: int,
    *,
    distribution: Mapping[str, str] | None = None,
    on_event: EventCallback | None = None,
) -> TrainingResult:
    """A multi-instance SageMaker-style training job: ``algo-1`` writes
    ``model_dir/model.tar.gz``."""
    unknown = sorted(set(channels) - {"train", "validation", "test"})
    if unknown:
        raise DataChannelError(f"unknown channels {unknown} (expected train, validation)")
    result = train_distributed(
        channels, hyperparameters, instance_count, distribution=distribution, on_event=on_event
    )
    result.model.training["instance_count"] = instance_count
    path = result.model.save(Path(model_dir) / "model.tar.gz")
    log.info("#model: host=algo-1 wrote %s", path)
    return result


__all__ = [
    "REPLICATED",
    "SHARDED",
    "SYNC_EVERY",
    "DistributedTrainingError",
    "ParameterSync",
    "load_share",
    "run_distributed_training_job",
    "sharded_by_s3_key",
    "train_distributed",
]


if __name__ == "__main__":
    sys.exit(_worker_main())
