"""Reading training channels: recordIO-protobuf files on local disk.

A channel is a directory of files (read in name order, hidden files skipped,
as SageMaker's File mode lays them out) or a single file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from pipeline_core.recordio import RecordIOError, decode
from training.errors import DataChannelError


def channel_files(path: Path) -> list[Path]:
    """The files making up a channel, in the order they are read."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise DataChannelError(f"channel directory {path} holds no files")
        return files
    raise DataChannelError(f"channel path {path} does not exist")


def load_channel(
    path: Path, *, feature_dim: int | None = None, name: str = "channel"
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """``(features (N, D) float32, labels (N,) float32 of 0/1)`` from a channel.

    Raises :class:`DataChannelError` for unreadable or malformed data, missing
    labels, non-binary labels, non-finite values or an empty channel.
    """
    parts_x: list[npt.NDArray[np.float32]] = []
    parts_y: list[npt.NDArray[np.float32]] = []
    for file in channel_files(path):
        try:
            x, y = decode(file.read_bytes(), feature_dim)
        except (RecordIOError, OSError) as e:
            raise DataChannelError(f"{name} channel: {file}: {e}") from e
        if x.shape[0] == 0:
            continue
        if y is None:
            raise DataChannelError(f"{name} channel: {file} has records without labels")
        parts_x.append(x)
        parts_y.append(y)
    if not parts_x:
        raise DataChannelError(f"{name} channel {path} holds no records")
    widths = {x.shape[1] for x in parts_x}
    if len(widths) != 1:
        raise DataChannelError(f"{name} channel: files differ in feature count {sorted(widths)}")
    x_all = parts_x[0] if len(parts_x) == 1 else np.concatenate(parts_x)
    y_all = parts_y[0] if len(parts_y) == 1 else np.concatenate(parts_y)
    if not np.isfinite(x_all).all():
        raise DataChannelError(f"{name} channel: features hold NaN or infinity")
    if not np.isin(y_all, (0.0, 1.0)).all():
        bad = np.unique(y_all[~np.isin(y_all, (0.0, 1.0))])[:5]
        raise DataChannelError(
            f"{name} channel: binary_classifier labels must be 0 or 1, found {bad.tolist()}"
        )
    return x_all, y_all
