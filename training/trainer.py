"""The local Linear Learner trainer (binary classifier; logistic or hinge loss).

All ``K`` models of ``num_models`` train together: the weights are one
``(D, K)`` float32 matrix, so a minibatch step is two small matrix products
plus elementwise optimizer updates, whatever ``K`` is. After every epoch the
models are scored on the validation channel (the training channel if there
is none); each model keeps its best epoch by validation loss, early stopping
watches the best loss over all models, and at the end every model's decision
threshold is calibrated for the selection criterion and the best model wins.

``loss=hinge_loss`` trains a linear SVM: labels become ``t = 2 y - 1``, the
loss is ``max(0, margin - t z)`` and its subgradient ``-t`` where
``t z < margin`` (0 elsewhere). Its scores are the decision values ``z``
themselves, so thresholds are calibrated on that scale (0 is neutral).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from training.data import load_channel
from training.errors import DataChannelError, HyperparameterError
from training.hyperparameters import Hyperparameters, parse_hyperparameters
from training.metric_definitions import metric_lines
from training.metrics import (
    METRIC_KEYS,
    BinaryMetrics,
    binary_metrics,
    calibrate_threshold,
    log_loss_from_logits,
    scores_from_logits,
)
from training.model import LinearModel
from training.parameter_sync import ParameterSync

log = logging.getLogger("training")

F32 = npt.NDArray[np.float32]

#: With ``num_models=auto``: learning-rate multipliers x weight decays tried.
AUTO_LR_MULTS = (1.0, 3.0, 10.0)
AUTO_WDS = (0.0, 1e-5, 1e-4)
#: ``learning_rate=auto`` for a single model, per optimizer.
AUTO_LR = {"adam": 0.003, "rmsprop": 0.003, "sgd": 0.1}
AUTO_BIAS_LR_MULT = {"adam": 30.0, "rmsprop": 30.0, "sgd": 1.0}
_EPS = 1e-8
_SEED = 0x11EA
#: The evaluated (and kept) weights are an exponential moving average of the
#: iterates spanning this fraction of an epoch: less minibatch noise.
AVERAGE_SPAN_EPOCHS = 0.5


@dataclass(frozen=True)
class MetricEvent:
    """One metric value; ``epoch`` is ``None`` for the final value."""

    name: str
    value: float
    epoch: int | None


@dataclass(frozen=True)
class ProgressEvent:
    """End of an epoch: rows seen, wall time and throughput."""

    epoch: int
    epochs: int
    rows: int
    seconds: float
    rows_per_second: float
    train_loss: float


TrainingEvent = MetricEvent | ProgressEvent
EventCallback = Callable[[TrainingEvent], None]


@dataclass(frozen=True)
class ModelSettings:
    """Per-model settings of the ``K`` models trained together."""

    learning_rate: npt.NDArray[np.float32]
    wd: npt.NDArray[np.float32]
    l1: npt.NDArray[np.float32]
    positive_weight: npt.NDArray[np.float32]

    @property
    def count(self) -> int:
        return int(self.learning_rate.shape[0])

    def describe(self, k: int) -> dict[str, float]:
        return {
            "learning_rate": float(self.learning_rate[k]),
            "wd": float(self.wd[k]),
            "l1": float(self.l1[k]),
            "positive_example_weight_mult": float(self.positive_weight[k]),
        }


@dataclass(frozen=True)
class TrainingResult:
    model: LinearModel
    metrics: dict[str, float]
    epochs_run: int
    stopped_early: bool
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def model_settings(hp: Hyperparameters, n_pos: int, n_neg: int) -> ModelSettings:
    """Resolve ``auto`` values into the ``K`` models' settings.

    ``num_models=1``: ``learning_rate`` auto is :data:`AUTO_LR`, ``wd``/``l1``
    auto are 0, ``positive_example_weight_mult`` auto is 1. ``num_models``
    auto (or > 1): the grid :data:`AUTO_LR_MULTS` x :data:`AUTO_WDS` around
    those values over whatever is auto (settings given explicitly stay
    fixed), plus ``balanced`` weighting for half the models when the weight is
    auto; it is cut or cycled to ``num_models`` if that is given.
    """
    base_lr = hp.learning_rate if hp.learning_rate is not None else AUTO_LR[hp.optimizer]
    balanced = (n_neg / n_pos) if n_pos > 0 and n_neg > 0 else 1.0
    pw_fixed: float | None
    if hp.positive_example_weight_mult == "balanced":
        pw_fixed = balanced
    elif hp.positive_example_weight_mult == "auto":
        pw_fixed = None
    else:
        pw_fixed = float(hp.positive_example_weight_mult)
    single = hp.num_models == 1
    lrs = (
        [base_lr]
        if single or hp.learning_rate is not None
        else [base_lr * m for m in AUTO_LR_MULTS]
    )
    wds = [hp.wd if hp.wd is not None else 0.0] if single or hp.wd is not None else list(AUTO_WDS)
    pws = (
        [pw_fixed if pw_fixed is not None else 1.0]
        if single or pw_fixed is not None
        else [
            1.0,
            balanced,
        ]
    )
    grid = [(lr, wd, pw) for pw in pws for wd in wds for lr in lrs]
    k = hp.num_models if hp.num_models is not None else len(grid)
    grid = [grid[i % len(grid)] for i in range(k)]
    l1 = hp.l1 if hp.l1 is not None else 0.0
    return ModelSettings(
        learning_rate=np.asarray([g[0] for g in grid], dtype=np.float32),
        wd=np.asarray([g[1] for g in grid], dtype=np.float32),
        l1=np.full(len(grid), l1, dtype=np.float32),
        positive_weight=np.asarray([g[2] for g in grid], dtype=np.float32),
    )


def fit_scaler(x: F32, hp: Hyperparameters) -> tuple[F32, F32]:
    """Per-feature mean/std from the first ``num_point_for_scaler`` rows;
    std 0 (a constant feature) becomes 1 so it passes through centred."""
    d = x.shape[1]
    if not hp.normalize_data:
        return np.zeros(d, dtype=np.float32), np.ones(d, dtype=np.float32)
    sample = x[: hp.num_point_for_scaler].astype(np.float64)
    # unbias_data=false scales without centring (auto/true: centred).
    mean = sample.mean(axis=0) if hp.unbias_data is not False else np.zeros(d)
    std = sample.std(axis=0)
    std[~(std > 1e-12)] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _scaled(x: F32, mean: F32, std: F32, overwrite: bool) -> F32:
    out = x if overwrite and x.flags.writeable and x.flags.c_contiguous else x.copy()
    out -= mean
    out /= std
    return out


def _emit(on_event: EventCallback | None, event: TrainingEvent) -> None:
    if on_event is not None:
        on_event(event)


def _log_metrics(
    metrics: Mapping[str, float], epoch: int | None, hp: Hyperparameters | None = None
) -> None:
    # In the format of the algorithm's MetricDefinitions (training.metric_definitions).
    f_beta = hp.f_beta if hp is not None else 1.0
    loss = hp.loss if hp is not None else "logistic"
    for line in metric_lines(metrics, epoch, f_beta=f_beta, loss=loss):
        log.info("%s", line)


def train(
    train_x: F32,
    train_y: F32,
    hp: Hyperparameters,
    *,
    validation: tuple[F32, F32] | None = None,
    on_event: EventCallback | None = None,
    raw_hyperparameters: Mapping[str, str] | None = None,
    overwrite_input: bool = False,
    seed: int = _SEED,
    sync: ParameterSync | None = None,
) -> TrainingResult:
    """Train a binary Linear Learner on in-memory data and return the model.

    ``train_x`` is ``(N, D)`` float32 and ``train_y`` 0/1. With
    ``overwrite_input`` the (owned) feature matrices are normalised in place.
    Deterministic for a given ``seed``. With ``sync`` this is one worker of a
    data-parallel job (``training.distributed``): the scaler and counts are
    pooled, every worker takes the same number of steps per epoch, and the
    parameters and optimizer state are averaged every few steps and at the
    end of every epoch, so all workers validate (and stop) identically.
    """
    started = time.perf_counter()
    x, y = _check_xy(train_x, train_y, "train", hp)
    if validation is not None:
        vx, vy = _check_xy(validation[0], validation[1], "validation", hp)
        if vx.shape[1] != x.shape[1]:
            raise DataChannelError(f"validation has {vx.shape[1]} features, train has {x.shape[1]}")
    n, d = x.shape
    n_pos = int(np.count_nonzero(y))
    n_all = n
    if sync is not None:
        n_pos, n_all = sync.totals(n_pos, n)
    settings = model_settings(hp, n_pos, n_all - n_pos)
    k = settings.count
    mean, std = fit_scaler(x, hp) if sync is None else sync.fit_scaler(x, hp)
    if hp.normalize_data:
        x = _scaled(x, mean, std, overwrite_input)
        if validation is not None:
            vx = _scaled(vx, mean, std, overwrite_input)
    if validation is None:
        vx, vy = x, y  # select and calibrate on the training data, as SageMaker does
    cal_n = min(hp.num_calibration_samples, vx.shape[0])
    vx_cal, vy_cal = vx[:cal_n], vy[:cal_n]
    channel = "validation" if validation is not None else "train"

    rng = np.random.default_rng(seed)
    # Rows 0..D-1 are the weights, row D the bias: one optimizer update for both.
    params = np.empty((d + 1, k), dtype=np.float32)
    if hp.init_method == "uniform":
        params[:d] = rng.uniform(-hp.init_scale, hp.init_scale, size=(d, k))
    else:
        params[:d] = rng.normal(0.0, hp.init_sigma, size=(d, k))
    params[d] = hp.init_bias if hp.use_bias else 0.0
    opt = _Optimizer(hp, settings, params)
    grad = np.empty_like(params)
    avg = params.copy()
    avg_tmp = np.empty_like(params)
    bs = min(hp.mini_batch_size if sync is None else sync.local_batch(hp.mini_batch_size), n)
    starts = np.arange(0, n, bs)
    steps = len(starts) if sync is None else sync.agree_steps(len(starts))
    avg_rate = np.float32(1.0 / max(1.0, AVERAGE_SPAN_EPOCHS * steps))

    best = avg.copy()
    best_loss = np.full(k, np.inf)
    best_epoch = np.ones(k, dtype=np.int64)
    train_losses: list[npt.NDArray[np.float64]] = []
    global_best = math.inf
    bad_epochs = 0
    stopped_early = False
    history: list[dict[str, float]] = []
    y_col = y.reshape(-1, 1)
    hinge = hp.loss == "hinge_loss"
    t_col = 2.0 * y_col - 1.0 if hinge else y_col  # hinge labels in {-1, +1}
    margin = np.float32(hp.margin)
    pw_minus_1 = (settings.positive_weight - 1.0).reshape(1, k)
    weighted = bool(np.any(pw_minus_1 != 0))
    epochs_run = 0

    # Minibatch products are small: one BLAS thread is faster and cannot
    # oversubscribe the cores when tuning jobs run side by side.
    with np.errstate(over="ignore", under="ignore"), threadpool_limits(1, "blas"):
        for epoch in range(1, hp.epochs + 1):
            t0 = time.perf_counter()
            loss_sum = np.zeros(k, dtype=np.float64)
            weight_sum = np.zeros(k, dtype=np.float64)
            w, b = params[:d], params[d:]
            order = rng.permutation(starts)
            if steps != len(order):
                order = np.resize(order, steps)  # a smaller share wraps around
            for step, s in enumerate(order):
                xb = x[s : s + bs]
                yb = y_col[s : s + bs]
                z = xb @ w
                z += b
                if hinge:
                    tb = t_col[s : s + bs]
                    z *= tb  # t z
                    loss = np.subtract(margin, z)
                    np.maximum(loss, np.float32(0.0), out=loss)
                    g = (z < margin).astype(np.float32)  # d loss / d z = -t where t z < margin
                    g *= -tb
                else:
                    loss = np.logaddexp(np.float32(0.0), z)
                    loss -= yb * z
                    g = np.negative(z)  # d loss / d z = sigmoid(z) - y
                    np.exp(g, out=g)
                    g += np.float32(1.0)
                    np.reciprocal(g, out=g)
                    g -= yb
                if weighted:
                    sw = 1.0 + yb * pw_minus_1
                    g *= sw
                    loss *= sw
                    weight_sum += sw.sum(axis=0)
                else:
                    weight_sum += xb.shape[0]
                loss_sum += loss.sum(axis=0)
                g *= np.float32(1.0 / xb.shape[0])
                np.matmul(xb.T, g, out=grad[:d])
                np.sum(g, axis=0, out=grad[d])
                opt.step(grad)
                np.subtract(params, avg, out=avg_tmp)
                avg_tmp *= avg_rate
                avg += avg_tmp
                if sync is not None:
                    sync.after_step(step, steps, (params, avg, opt.m, opt.v))
            epochs_run = epoch
            train_loss = loss_sum / weight_sum
            train_losses.append(train_loss)
            seconds = time.perf_counter() - t0

            if opt.use_l1:
                # coordinates the proximal step holds at exactly zero stay zero
                avg[:d][params[:d] == 0] = 0.0
            zv = vx_cal @ avg[:d]
            zv += avg[d:]
            val_loss = _column_loss(hp, vy_cal, zv)
            improved = val_loss < best_loss
            if improved.any():
                best_loss = np.where(improved, val_loss, best_loss)
                best_epoch[improved] = epoch
                best[:, improved] = avg[:, improved]

            lead = int(np.argmin(val_loss))
            m = _calibrated_metrics(hp, vy_cal, zv[:, lead])
            named = {"train:objective_loss": float(train_loss[lead]), **m.named(channel)}
            history.append({**named, "epoch": float(epoch)})
            for name, value in named.items():
                _emit(on_event, MetricEvent(name, value, epoch))
            _log_metrics(named, epoch, hp)
            rate = n / seconds if seconds > 0 else float("inf")
            _emit(
                on_event,
                ProgressEvent(epoch, hp.epochs, n, seconds, rate, float(train_loss[lead])),
            )
            log.info(
                "#progress: epoch %d/%d, %d rows in %.3fs (%.0f rows/s), train loss %.5f",
                epoch,
                hp.epochs,
                n,
                seconds,
                rate,
                float(train_loss[lead]),
            )

            current = float(val_loss.min())
            if not math.isfinite(current):
                log.info("#early_stopping: the loss is no longer finite")
                stopped_early = epoch < hp.epochs
                break
            # relative improvement below the tolerance counts as none
            if global_best == math.inf or (
                global_best - current > hp.early_stopping_tolerance * abs(global_best)
            ):
                bad_epochs = 0
            else:
                bad_epochs += 1
            global_best = min(global_best, current)
            if bad_epochs >= hp.early_stopping_patience and epoch < hp.epochs:
                stopped_early = True
                log.info("#early_stopping: no improvement for %d epochs", bad_epochs)
                break

        # The winner: every model's threshold calibrated, compared on the criterion.
        zv = vx_cal @ best[:d]
        zv += best[d:]
        best_k, best_metrics = _select(hp, vy_cal, zv, best_loss)
        if cal_n < vx.shape[0]:
            z_all = vx @ best[:d, best_k]
            z_all += best[d, best_k]
            best_metrics = binary_metrics(
                vy, z_all, best_metrics.threshold, hp.f_beta, loss=hp.loss, margin=hp.margin
            )
    final = {"train:objective_loss": float(train_losses[best_epoch[best_k] - 1][best_k])}
    final.update(best_metrics.named(channel))
    for name, value in final.items():
        _emit(on_event, MetricEvent(name, value, None))
    _log_metrics(final, None, hp)

    model = LinearModel(
        weights=best[:d, best_k].copy(),
        bias=float(best[d, best_k]) if hp.use_bias else 0.0,
        mean=mean,
        std=std,
        threshold=best_metrics.threshold,
        loss=hp.loss,
        hyperparameters=dict(raw_hyperparameters or {}),
        metrics=final,
        training={
            "epochs_run": epochs_run,
            "best_epoch": int(best_epoch[best_k]),
            "stopped_early": stopped_early,
            "num_models": k,
            "selected_model": best_k,
            "selected_settings": settings.describe(best_k),
            "train_rows": n_all,
            "validation_rows": int(vx.shape[0]) if validation is not None else 0,
        },
    )
    seconds = time.perf_counter() - started
    log.info("#training: done in %.3fs (%d epochs, %d models)", seconds, epochs_run, k)
    return TrainingResult(model, final, epochs_run, stopped_early, seconds, history)


def _calibrated_metrics(hp: Hyperparameters, y: F32, z: F32) -> BinaryMetrics:
    """One model's metrics at the threshold calibrated on these rows."""
    scores = scores_from_logits(z, hp.loss)
    threshold = calibrate_threshold(
        y,
        scores,
        hp.binary_classifier_model_selection_criteria,
        beta=hp.f_beta,
        target_precision=hp.target_precision,
        target_recall=hp.target_recall,
        loss=hp.loss,
    )
    return binary_metrics(y, z, threshold, hp.f_beta, scores, loss=hp.loss, margin=hp.margin)


def _check_xy(
    x: F32, y: F32, name: str, hp: Hyperparameters
) -> tuple[F32, npt.NDArray[np.float32]]:
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise DataChannelError(f"{name}: features must be a non-empty matrix, got {x.shape}")
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    if y.shape != (x.shape[0],):
        raise DataChannelError(f"{name}: {x.shape[0]} rows but labels have shape {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise DataChannelError(f"{name}: binary_classifier labels must be 0 or 1")
    if hp.feature_dim is not None and x.shape[1] != hp.feature_dim:
        raise HyperparameterError(
            "feature_dim", f"is {hp.feature_dim} but the {name} data has {x.shape[1]} features"
        )
    return x, y.astype(np.float32)


def _column_loss(hp: Hyperparameters, y: F32, z: F32) -> npt.NDArray[np.float64]:
    """Each column's (model's) mean training loss on these rows."""
    if hp.loss == "hinge_loss":
        losses = (2.0 * y.reshape(-1, 1) - 1.0) * z
        np.subtract(np.float32(hp.margin), losses, out=losses)
        np.maximum(losses, np.float32(0.0), out=losses)
    else:
        losses = np.logaddexp(np.float32(0.0), z)
        losses -= y.reshape(-1, 1) * z
    result: npt.NDArray[np.float64] = losses.mean(axis=0, dtype=np.float64)
    return result


def _select(
    hp: Hyperparameters, y: F32, z: F32, losses: npt.NDArray[np.float64]
) -> tuple[int, BinaryMetrics]:
    """The model with the best calibrated criterion (ties: lower loss)."""
    crit = hp.binary_classifier_model_selection_criteria
    best: tuple[float, float] | None = None
    chosen: tuple[int, BinaryMetrics] | None = None
    for k in np.argsort(losses, kind="stable"):
        m = _calibrated_metrics(hp, y, z[:, k])
        value = {
            "accuracy": m.binary_classification_accuracy,
            "f_beta": m.binary_f_beta,
            "precision_at_target_recall": m.precision if m.recall >= hp.target_recall else -1,
            "recall_at_target_precision": (m.recall if m.precision >= hp.target_precision else -1),
            "loss_function": -m.objective_loss,
        }[crit]
        key = (float(value), -float(losses[k]))
        if best is None or key > best:
            best, chosen = key, (int(k), m)
    assert chosen is not None
    return chosen


class _Optimizer:
    """Adam / RMSProp / SGD(+momentum) on the ``(D + 1, K)`` parameter matrix
    (last row: bias), with per-model learning rate and weight decay, the bias
    multipliers on the last row, and L1 as a proximal step (exact zeros)."""

    def __init__(self, hp: Hyperparameters, settings: ModelSettings, params: F32) -> None:
        self.hp = hp
        self.params = params
        d = params.shape[0] - 1
        bias_lr = (
            hp.bias_lr_mult if hp.bias_lr_mult is not None else AUTO_BIAS_LR_MULT[hp.optimizer]
        )
        self.lr = np.repeat(settings.learning_rate.reshape(1, -1), d + 1, axis=0)
        self.lr[d] *= bias_lr if hp.use_bias else 0.0
        self.wd = np.repeat(settings.wd.reshape(1, -1), d + 1, axis=0)
        self.wd[d] *= hp.bias_wd_mult
        self.use_wd = bool(np.any(self.wd != 0))
        self.l1 = settings.l1.reshape(1, -1).astype(np.float32)
        self.use_l1 = bool(np.any(self.l1 != 0))
        self.m = np.zeros_like(params)
        self.v = np.zeros_like(params)
        self.tmp = np.empty_like(params)
        self.t = 0
        self.min_lr = hp.lr_scheduler_minimum_lr or 0.0
        self.sched_step = hp.lr_scheduler_step
        self.sched_factor = hp.lr_scheduler_factor if hp.lr_scheduler_factor is not None else 0.99
        if self.sched_step is None and hp.lr_scheduler_factor is not None:
            self.sched_step = 100
        if not hp.use_lr_scheduler:
            self.sched_step = None  # a constant learning rate, whatever the schedule says

    def _lr(self) -> F32:
        if self.sched_step is None:
            return self.lr
        scale = np.float32(self.sched_factor ** (self.t // self.sched_step))
        lr = self.lr * scale
        if self.min_lr:
            np.maximum(lr, np.float32(self.min_lr), out=lr, where=self.lr > 0)
        return lr

    def step(self, grad: F32) -> None:
        self.t += 1
        p, tmp, m, v = self.params, self.tmp, self.m, self.v
        if self.use_wd:
            np.multiply(self.wd, p, out=tmp)
            grad += tmp
        lr = self._lr()
        kind = self.hp.optimizer
        if kind == "adam":
            b1, b2 = self.hp.beta_1, self.hp.beta_2
            corr = np.float32(math.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t))
            m *= np.float32(b1)
            np.multiply(grad, np.float32(1.0 - b1), out=tmp)
            m += tmp
            v *= np.float32(b2)
            np.multiply(grad, grad, out=tmp)
            tmp *= np.float32(1.0 - b2)
            v += tmp
            np.sqrt(v, out=tmp)
            tmp += np.float32(_EPS)
            np.divide(m, tmp, out=tmp)
            tmp *= lr
            tmp *= corr
            p -= tmp
        elif kind == "rmsprop":
            rho = np.float32(self.hp.beta_2)
            v *= rho
            np.multiply(grad, grad, out=tmp)
            tmp *= np.float32(1.0) - rho
            v += tmp
            np.sqrt(v, out=tmp)
            tmp += np.float32(_EPS)
            np.divide(grad, tmp, out=tmp)
            tmp *= lr
            p -= tmp
        else:
            if self.hp.momentum:
                m *= np.float32(self.hp.momentum)
                m += grad
                grad = m
            np.multiply(grad, lr, out=tmp)
            p -= tmp
        if self.use_l1:
            d = p.shape[0] - 1
            w = p[:d]
            shrink = lr[:d] * self.l1
            if kind != "sgd":
                shrink = shrink / (np.sqrt(v[:d]) + np.float32(_EPS))
            sign = np.sign(w)
            np.abs(w, out=w)
            w -= shrink
            np.maximum(w, np.float32(0.0), out=w)
            w *= sign


def run_training_job(
    channels: Mapping[str, Path],
    hyperparameters: Mapping[str, str],
    model_dir: Path,
    *,
    on_event: EventCallback | None = None,
) -> TrainingResult:
    """A SageMaker-style training job: read the ``train`` (and optional
    ``validation``) channel, train, write ``model_dir/model.tar.gz``."""
    hp = parse_hyperparameters(hyperparameters)
    unknown = sorted(set(channels) - {"train", "validation", "test"})
    if unknown:
        raise DataChannelError(f"unknown channels {unknown} (expected train, validation, test)")
    if "train" not in channels:
        raise DataChannelError("the train channel is required")
    log.info("#data: reading channels %s", sorted(channels))
    tx, ty = load_channel(Path(channels["train"]), feature_dim=hp.feature_dim, name="train")
    validation = None
    if "validation" in channels:
        validation = load_channel(
            Path(channels["validation"]), feature_dim=hp.feature_dim, name="validation"
        )
    result = train(
        tx,
        ty,
        hp,
        validation=validation,
        on_event=on_event,
        raw_hyperparameters=dict(hyperparameters),
        overwrite_input=True,
    )
    if "test" in channels:
        result.metrics.update(_test_metrics(result.model, Path(channels["test"]), hp))
    path = result.model.save(Path(model_dir) / "model.tar.gz")
    log.info("#model: wrote %s", path)
    return result


def _test_metrics(model: LinearModel, path: Path, hp: Hyperparameters) -> dict[str, float]:
    """The final model scored on the ``test`` channel: the ``test:*`` metrics."""
    x, y = load_channel(path, feature_dim=hp.feature_dim, name="test")
    named = binary_metrics(
        y, model.logits(x), model.threshold, hp.f_beta, loss=hp.loss, margin=hp.margin
    ).named("test")
    _log_metrics(named, None, hp)
    return named


__all__ = [
    "AUTO_LR",
    "METRIC_KEYS",
    "EventCallback",
    "MetricEvent",
    "ModelSettings",
    "ProgressEvent",
    "TrainingEvent",
    "TrainingResult",
    "fit_scaler",
    "log_loss_from_logits",
    "model_settings",
    "run_training_job",
    "train",
]
