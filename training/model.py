"""The trained model, its ``model.tar.gz`` artifact and batch prediction.

Artifact format (version 1, see ``training/README.md``): a gzip tar holding a
single regular file ``model.json``. Weights live in the normalised feature
space, as Linear Learner keeps them; prediction folds the scaler into the
weights once so a request costs one matrix-vector product.
"""

from __future__ import annotations

import io
import json
import math
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from training.errors import ModelArtifactError
from training.hyperparameters import LOSSES, Loss
from training.metrics import scores_from_logits

FORMAT = "mnist-ll/linear-learner"
VERSION = 1
MEMBER = "model.json"
_MAX_MEMBER_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True, eq=False)
class LinearModel:
    """A binary Linear Learner model: ``z = ((x - mean) / std) . w + b``,
    ``score = sigmoid(z)`` (logistic loss) or ``z`` (``hinge_loss``),
    ``predicted_label = score >= threshold``."""

    weights: npt.NDArray[np.float32]
    bias: float
    mean: npt.NDArray[np.float32]
    std: npt.NDArray[np.float32]
    threshold: float
    loss: Loss = "logistic"
    hyperparameters: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    _w_eff: npt.NDArray[np.float32] = field(init=False, repr=False)
    _b_eff: np.float32 = field(init=False, repr=False)
    _t32: np.float32 = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_model(self)
        w = self.weights.astype(np.float64) / self.std.astype(np.float64)
        b = float(self.bias) - float(np.dot(self.mean.astype(np.float64), w))
        object.__setattr__(self, "_w_eff", np.ascontiguousarray(w, dtype=np.float32))
        object.__setattr__(self, "_b_eff", np.float32(b))
        object.__setattr__(self, "_t32", np.float32(self.threshold))

    @property
    def feature_dim(self) -> int:
        return int(self.weights.shape[0])

    def logits(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.feature_dim:
            raise ValueError(
                f"expected rows of {self.feature_dim} features, got shape {tuple(x.shape)}"
            )
        with np.errstate(over="ignore"):  # an overflow is refused where it is rendered
            out: npt.NDArray[np.float32] = x @ self._w_eff
            out += self._b_eff
        return out

    def predict(
        self, features: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int8]]:
        """``(scores, predicted_labels)`` for a ``(N, feature_dim)`` matrix."""
        scores = scores_from_logits(self.logits(features), self.loss)
        labels = (scores >= self._t32).astype(np.int8)
        return scores, labels

    # -- artifact -----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "predictor_type": "binary_classifier",
            "feature_dim": self.feature_dim,
            "weights": self.weights.astype(np.float64).tolist(),
            "bias": float(self.bias),
            "scaler": {
                "mean": self.mean.astype(np.float64).tolist(),
                "std": self.std.astype(np.float64).tolist(),
            },
            "threshold": float(self.threshold),
            "loss": self.loss,
            "hyperparameters": dict(self.hyperparameters),
            "metrics": dict(self.metrics),
            "training": dict(self.training),
        }

    @classmethod
    def from_dict(cls, data: Any) -> LinearModel:
        if not isinstance(data, dict):
            raise ModelArtifactError("model.json must hold a JSON object")
        if data.get("format") != FORMAT:
            raise ModelArtifactError(f"not a {FORMAT} model (format={data.get('format')!r})")
        if data.get("version") != VERSION:
            raise ModelArtifactError(
                f"unsupported model version {data.get('version')!r} (this code reads {VERSION})"
            )
        if data.get("predictor_type") != "binary_classifier":
            raise ModelArtifactError("predictor_type must be binary_classifier")
        dim = data.get("feature_dim")
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ModelArtifactError(f"feature_dim must be a positive integer, got {dim!r}")
        scaler = data.get("scaler")
        if not isinstance(scaler, dict):
            raise ModelArtifactError("scaler must be an object with mean and std")
        loss = data.get("loss", "logistic")  # absent: written before hinge_loss existed
        if loss not in LOSSES:
            raise ModelArtifactError(f"loss must be one of {list(LOSSES)}, got {loss!r}")
        hps = data.get("hyperparameters", {})
        metrics = data.get("metrics", {})
        training = data.get("training", {})
        if not isinstance(hps, dict) or not all(isinstance(v, str) for v in hps.values()):
            raise ModelArtifactError("hyperparameters must map names to strings")
        if not isinstance(metrics, dict) or not all(
            isinstance(v, (int, float)) for v in metrics.values()
        ):
            raise ModelArtifactError("metrics must map names to numbers")
        if not isinstance(training, dict):
            raise ModelArtifactError("training must be an object")
        return cls(
            weights=_vector(data.get("weights"), "weights", dim),
            bias=_number(data.get("bias"), "bias"),
            mean=_vector(scaler.get("mean"), "scaler.mean", dim),
            std=_vector(scaler.get("std"), "scaler.std", dim),
            threshold=_number(data.get("threshold"), "threshold"),
            loss=loss,
            hyperparameters=hps,
            metrics={k: float(v) for k, v in metrics.items()},
            training=training,
        )

    def to_bytes(self) -> bytes:
        """The ``model.tar.gz`` bytes (deterministic: fixed mtime and owner)."""
        payload = json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=True).encode()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo(MEMBER)
            info.size = len(payload)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(payload))
        return buf.getvalue()

    def save(self, path: Path) -> Path:
        """Write ``model.tar.gz`` to ``path`` (a file path) atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{time.monotonic_ns()}.tmp")
        tmp.write_bytes(self.to_bytes())
        tmp.replace(path)
        return path

    @classmethod
    def from_bytes(cls, blob: bytes) -> LinearModel:
        try:
            with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
                try:
                    info = tar.getmember(MEMBER)
                except KeyError:
                    raise ModelArtifactError(f"model.tar.gz has no {MEMBER}") from None
                if not info.isfile():
                    raise ModelArtifactError(f"{MEMBER} is not a regular file")
                if info.size > _MAX_MEMBER_BYTES:
                    raise ModelArtifactError(f"{MEMBER} is too large ({info.size} bytes)")
                member = tar.extractfile(info)
                if member is None:  # pragma: no cover - isfile() checked
                    raise ModelArtifactError(f"cannot read {MEMBER}")
                text = member.read()
        except (tarfile.TarError, EOFError, OSError, ValueError) as e:
            if isinstance(e, ModelArtifactError):
                raise
            raise ModelArtifactError(f"not a readable model.tar.gz: {e}") from e
        try:
            data = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ModelArtifactError(f"{MEMBER} is not valid JSON: {e}") from e
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: Path) -> LinearModel:
        """Read and validate a ``model.tar.gz``; raises :class:`ModelArtifactError`."""
        try:
            blob = Path(path).read_bytes()
        except OSError as e:
            raise ModelArtifactError(f"cannot read model artifact {path}: {e}") from e
        return cls.from_bytes(blob)


def _number(value: Any, what: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ModelArtifactError(f"{what} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ModelArtifactError(f"{what} must be finite")
    return float(value)


def _vector(value: Any, what: str, dim: int) -> npt.NDArray[np.float32]:
    if not isinstance(value, list):
        raise ModelArtifactError(f"{what} must be a list of {dim} numbers")
    if len(value) != dim:
        raise ModelArtifactError(f"{what} has {len(value)} values, feature_dim is {dim}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ModelArtifactError(f"{what} must hold only numbers")
    return np.asarray(value, dtype=np.float32)


def _check_model(model: LinearModel) -> None:
    w, mean, std = model.weights, model.mean, model.std
    for name, arr in (("weights", w), ("scaler.mean", mean), ("scaler.std", std)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.float32 or arr.ndim != 1:
            raise ModelArtifactError(f"{name} must be a float32 vector")
        if not np.isfinite(arr).all():
            raise ModelArtifactError(f"{name} holds non-finite values")
    if w.shape[0] < 1 or mean.shape != w.shape or std.shape != w.shape:
        raise ModelArtifactError(
            f"shape mismatch: weights {w.shape}, mean {mean.shape}, std {std.shape}"
        )
    if not (std > 0).all():
        raise ModelArtifactError("scaler.std must be positive")
    for name, v in (("bias", model.bias), ("threshold", model.threshold)):
        if not math.isfinite(float(v)):
            raise ModelArtifactError(f"{name} must be finite")
