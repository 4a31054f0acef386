"""Linear Learner hyperparameters, parsed from the strings SageMaker passes.

:func:`parse_hyperparameters` takes the ``HyperParameters`` map of a
CreateTrainingJob request (every value a string) and returns a typed, frozen
:class:`Hyperparameters`. Unknown names, malformed values and out-of-range
values raise :class:`~training.errors.HyperparameterError` naming the
parameter. ``auto`` values stay ``None``; the trainer resolves them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeVar

from training.errors import HyperparameterError

Criterion = Literal[
    "accuracy",
    "f_beta",
    "precision_at_target_recall",
    "recall_at_target_precision",
    "loss_function",
]
CRITERIA: tuple[Criterion, ...] = (
    "accuracy",
    "f_beta",
    "precision_at_target_recall",
    "recall_at_target_precision",
    "loss_function",
)
Optimizer = Literal["adam", "sgd", "rmsprop"]
#: The binary classifier's losses: ``auto`` is ``logistic``.
Loss = Literal["logistic", "hinge_loss"]
LOSSES: tuple[Loss, ...] = ("logistic", "hinge_loss")

#: Documented Linear Learner hyperparameters that only apply to regressors or
#: multiclass classifiers (or to a regression loss). The real
#: algorithm accepts and ignores them for a binary classifier, and so do we
#: (their values must still parse as the documentation says).
IGNORED_FOR_BINARY: dict[str, Callable[[str, str], Any]] = {}

#: Names SageMaker itself adds to a training job's hyperparameters. Accepted
#: and ignored (``_tuning_objective_metric`` is kept for the record).
INTERNAL = frozenset({"_tuning_objective_metric", "_kvstore", "_num_gpus", "_num_kv_servers"})


@dataclass(frozen=True)
class Hyperparameters:
    """Typed Linear Learner settings for a binary classifier. ``None`` = auto."""

    predictor_type: str = "binary_classifier"
    feature_dim: int | None = None
    epochs: int = 15
    mini_batch_size: int = 1000
    learning_rate: float | None = None
    wd: float | None = None
    l1: float | None = None
    optimizer: Optimizer = "adam"
    momentum: float = 0.0
    beta_1: float = 0.9
    beta_2: float = 0.999
    bias_lr_mult: float | None = None
    bias_wd_mult: float = 0.0
    use_bias: bool = True
    normalize_data: bool = True
    unbias_data: bool | None = None
    num_point_for_scaler: int = 10_000
    num_models: int | None = None
    num_calibration_samples: int = 10_000_000
    init_method: Literal["uniform", "normal"] = "uniform"
    init_scale: float = 0.07
    init_sigma: float = 0.01
    init_bias: float = 0.0
    loss: Loss = "logistic"
    margin: float = 1.0
    early_stopping_patience: int = 3
    early_stopping_tolerance: float = 0.001
    binary_classifier_model_selection_criteria: Criterion = "accuracy"
    f_beta: float = 1.0
    target_precision: float = 0.8
    target_recall: float = 0.8
    positive_example_weight_mult: float | Literal["balanced", "auto"] = 1.0
    use_lr_scheduler: bool = True
    lr_scheduler_step: int | None = None
    lr_scheduler_factor: float | None = None
    lr_scheduler_minimum_lr: float | None = None
    tuning_objective_metric: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


T = TypeVar("T")


def _auto(parse: Callable[[str, str], T]) -> Callable[[str, str], T | None]:
    def parse_or_auto(name: str, raw: str) -> T | None:
        return None if raw.strip().lower() == "auto" else parse(name, raw)

    return parse_or_auto


def _int(lo: int, hi: int | None = None) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise HyperparameterError(name, f"expected an integer, got {raw!r}") from None
        if value < lo or (hi is not None and value > hi):
            bound = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
            raise HyperparameterError(name, f"{value} is out of range (must be {bound})")
        return value

    return parse


def _float(
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise HyperparameterError(name, f"expected a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise HyperparameterError(name, f"must be finite, got {raw!r}")
        too_low = lo is not None and (value <= lo if lo_open else value < lo)
        too_high = hi is not None and (value >= hi if hi_open else value > hi)
        if too_low or too_high:
            left = "(" if lo_open else "["
            right = ")" if hi_open else "]"
            lo_s = "-inf" if lo is None else f"{lo:g}"
            hi_s = "inf" if hi is None else f"{hi:g}"
            raise HyperparameterError(
                name, f"{value:g} is out of range (must be in {left}{lo_s}, {hi_s}{right})"
            )
        return value

    return parse


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise HyperparameterError(name, f"expected true or false, got {raw!r}")


def _choice(*options: str, aliases: Mapping[str, str] | None = None) -> Callable[[str, str], Any]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        value = (aliases or {}).get(value, value)
        if value not in options:
            raise HyperparameterError(name, f"expected one of {list(options)}, got {raw!r}")
        return value

    return parse


def _predictor_type(name: str, raw: str) -> str:
    value = raw.strip()
    if value in ("regressor", "multiclass_classifier"):
        raise HyperparameterError(
            name,
            f"'{value}' is a Linear Learner predictor type this local trainer does not "
            "support; only 'binary_classifier' is implemented",
        )
    if value != "binary_classifier":
        raise HyperparameterError(name, f"expected 'binary_classifier', got {raw!r}")
    return value


def _loss(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value in ("auto", "logistic"):
        return "logistic"
    if value == "hinge_loss":
        return "hinge_loss"
    raise HyperparameterError(
        name,
        f"expected auto, logistic or hinge_loss for a binary_classifier, got {raw!r}",
    )


def _pos_weight(name: str, raw: str) -> float | str:
    value = raw.strip().lower()
    if value in ("balanced", "auto"):
        return value
    return _float(0.0, lo_open=True)(name, raw)


def _normalize_label(name: str, raw: str) -> None:
    value = raw.strip().lower()
    if value == "true":
        raise HyperparameterError(name, "label normalization only applies to regressors")
    if value not in ("auto", "false"):
        raise HyperparameterError(name, f"expected auto or false, got {raw!r}")


def _fixed_auto_bool(default: bool) -> Callable[[str, str], bool]:
    def parse_fixed(name: str, raw: str) -> bool:
        return default if raw.strip().lower() == "auto" else _bool(name, raw)

    return parse_fixed


def _fixed_auto(default: float, parse: Callable[[str, str], float]) -> Callable[[str, str], float]:
    def parse_fixed(name: str, raw: str) -> float:
        return default if raw.strip().lower() == "auto" else parse(name, raw)

    return parse_fixed


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "predictor_type": _predictor_type,
    "feature_dim": _auto(_int(1, 1_000_000)),
    "epochs": _int(1, 100_000),
    "mini_batch_size": _int(1, 100_000),
    "learning_rate": _auto(_float(0.0, lo_open=True)),
    "wd": _auto(_float(0.0)),
    "l1": _auto(_float(0.0)),
    "optimizer": _choice("adam", "sgd", "rmsprop", aliases={"auto": "adam"}),
    "momentum": _fixed_auto(0.0, _float(0.0, 1.0, hi_open=True)),
    "beta_1": _fixed_auto(0.9, _float(0.0, 1.0, hi_open=True)),
    "beta_2": _fixed_auto(0.999, _float(0.0, 1.0, hi_open=True)),
    "bias_lr_mult": _auto(_float(0.0, lo_open=True)),
    "bias_wd_mult": _fixed_auto(0.0, _float(0.0)),
    "use_bias": _bool,
    "normalize_data": _fixed_auto_bool(True),
    "unbias_data": _auto(_bool),
    "normalize_label": _normalize_label,
    "num_point_for_scaler": _int(1),
    "num_models": _auto(_int(1, 256)),
    "num_calibration_samples": _int(1),
    "init_method": _choice("uniform", "normal"),
    "init_scale": _float(0.0, lo_open=True),
    "init_sigma": _float(0.0, lo_open=True),
    "init_bias": _float(),
    "loss": _loss,
    "margin": _float(0.0, lo_open=True),
    "early_stopping_patience": _int(1),
    "early_stopping_tolerance": _float(0.0, lo_open=True),
    "binary_classifier_model_selection_criteria": _choice(*CRITERIA),
    "f_beta": _float(0.0, lo_open=True),
    "target_precision": _float(0.0, 1.0, lo_open=True),
    "target_recall": _float(0.0, 1.0, lo_open=True),
    "positive_example_weight_mult": _pos_weight,
    "use_lr_scheduler": _bool,
    "lr_scheduler_step": _auto(_int(1)),
    "lr_scheduler_factor": _auto(_float(0.0, 1.0, lo_open=True)),
    "lr_scheduler_minimum_lr": _auto(_float(0.0)),
}

#: Every hyperparameter name :func:`parse_hyperparameters` accepts.
SUPPORTED = frozenset(_PARSERS) | INTERNAL


def parse_hyperparameters(raw: Mapping[str, str]) -> Hyperparameters:
    """Parse SageMaker's string hyperparameters into :class:`Hyperparameters`.

    ``predictor_type`` is required, as in SageMaker. Raises
    :class:`HyperparameterError` naming the first bad parameter.
    """
    if not isinstance(raw, Mapping):
        raise HyperparameterError("<all>", "hyperparameters must be a map of names to strings")
    values: dict[str, Any] = {}
    for name in sorted(raw):
        value = raw[name]
        if not isinstance(name, str):
            raise HyperparameterError(str(name), "names must be strings")
        if name in IGNORED_FOR_BINARY:
            if not isinstance(value, str):
                raise HyperparameterError(name, f"values must be strings, got {value!r}")
            IGNORED_FOR_BINARY[name](name, value)  # checked, then ignored
            continue
        if name not in SUPPORTED:
            raise HyperparameterError(name, "unknown Linear Learner hyperparameter")
        if not isinstance(value, str):
            raise HyperparameterError(
                name, f"values must be strings as SageMaker passes them, got {value!r}"
            )
        if name == "_tuning_objective_metric":
            values["tuning_objective_metric"] = value
            continue
        if name in INTERNAL or name == "normalize_label":
            if name == "normalize_label":
                _normalize_label(name, value)
            continue
        values[name] = _PARSERS[name](name, value)
    if "predictor_type" not in values:
        raise HyperparameterError("predictor_type", "is required (binary_classifier)")
    hp = Hyperparameters(**values)
    if hp.lr_scheduler_minimum_lr is not None and hp.learning_rate is not None:
        if hp.lr_scheduler_minimum_lr > hp.learning_rate:
            raise HyperparameterError("lr_scheduler_minimum_lr", "must not exceed learning_rate")
    return hp


def to_strings(values: Mapping[str, Any]) -> dict[str, str]:
    """Turn JSON-ish values (numbers, booleans) into SageMaker's strings."""
    out: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, (int, float, str)):
            out[name] = str(value)
        else:
            raise HyperparameterError(str(name), f"cannot be given as {type(value).__name__}")
    return out


IGNORED_FOR_BINARY.update(
    {
        "num_classes": _int(3, 1_000_000),
        "accuracy_top_k": _int(1),
        "balance_multiclass_weights": _bool,
        "huber_delta": _float(0.0),
        "quantile": _float(0.0, 1.0, lo_open=True, hi_open=True),
        "loss_insensitivity": _float(0.0, lo_open=True),
        "unbias_label": _auto(_bool),
    }
)
