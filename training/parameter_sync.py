"""Parameter averaging between the workers of one data-parallel training job.

:class:`ParameterSync` is one worker's end of the exchange. The trainer
(:func:`training.trainer.train`) calls it to pool the scaler statistics and
label counts, to agree on the steps per epoch and to average the parameters
and optimizer state every few steps; :mod:`training.distributed` starts the
workers and wires their pipes. Rank 0 (``algo-1``) sums in rank order and
sends the result back, so every worker holds bit-identical values after a
sync. It depends on neither of them, only on the pipes it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from multiprocessing.connection import Connection

import numpy as np
import numpy.typing as npt

from training.errors import DistributedTrainingError
from training.hyperparameters import Hyperparameters

F32 = npt.NDArray[np.float32]


class ParameterSync:
    """One worker's end of the averaging: rank 0 holds a pipe to every other
    rank; the others hold one pipe to rank 0."""

    def __init__(self, rank: int, size: int, conns: Sequence[Connection], every: int) -> None:
        self.rank, self.size, self.conns, self.every = rank, size, list(conns), max(1, every)
        self.syncs = 0

    def _allreduce_sum(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The sum over ranks (in rank order, so every rank gets the same bits)."""
        if self.rank == 0:
            total = values.astype(np.float64, copy=True)
            for r, conn in enumerate(self.conns, start=1):
                total += _receive(conn, r)
            for conn in self.conns:
                conn.send(("sum", total))
            return total
        conn = self.conns[0]
        conn.send(("part", values))
        return _receive(conn, 0)

    def totals(self, positives: int, rows: int) -> tuple[int, int]:
        total = self._allreduce_sum(np.asarray([positives, rows], dtype=np.float64))
        return int(total[0]), int(total[1])

    def local_batch(self, mini_batch_size: int) -> int:
        """Each worker's minibatch: ``mini_batch_size`` is the global batch,
        split over the workers, so the job takes as many steps per epoch as
        one instance would and the same hyperparameters mean the same model."""
        return max(1, -(-mini_batch_size // self.size))

    def agree_steps(self, steps: int) -> int:
        """Every worker takes the largest share's step count (smaller shares
        wrap around), so the averaging rounds line up."""
        counts = np.zeros(self.size, dtype=np.float64)
        counts[self.rank] = steps
        return int(self._allreduce_sum(counts).max())

    def fit_scaler(self, x: F32, hp: Hyperparameters) -> tuple[F32, F32]:
        """Mean/std over every worker's first ``num_point_for_scaler / N`` rows."""
        d = x.shape[1]
        if not hp.normalize_data:
            return np.zeros(d, dtype=np.float32), np.ones(d, dtype=np.float32)
        take = max(1, -(-hp.num_point_for_scaler // self.size))
        sample = x[:take].astype(np.float64)
        stats = np.concatenate(
            [[float(sample.shape[0])], sample.sum(axis=0), (sample * sample).sum(axis=0)]
        )
        total = self._allreduce_sum(stats)
        count = total[0]
        mean = total[1 : d + 1] / count
        var = np.maximum(total[d + 1 :] / count - mean * mean, 0.0)
        std = np.sqrt(var)
        std[~(std > 1e-12)] = 1.0
        return mean.astype(np.float32), std.astype(np.float32)

    def after_step(self, step: int, steps: int, arrays: Sequence[F32]) -> None:
        """Average ``arrays`` in place every ``every`` steps and after the last."""
        if (step + 1) % self.every and step + 1 != steps:
            return
        flat = np.concatenate([a.ravel() for a in arrays]).astype(np.float64)
        mean = self._allreduce_sum(flat) / self.size
        offset = 0
        for a in arrays:
            a.ravel()[:] = mean[offset : offset + a.size]
            offset += a.size
        self.syncs += 1


def _receive(conn: Connection, rank: int) -> npt.NDArray[np.float64]:
    try:
        kind, payload = conn.recv()
    except EOFError as e:
        raise DistributedTrainingError(f"worker algo-{rank + 1} exited") from e
    if kind == "error":
        raise DistributedTrainingError(f"worker algo-{rank + 1} failed: {payload}")
    result: npt.NDArray[np.float64] = payload
    return result
