"""The search space of a tuning job and the strategies that sample it.

``ParameterRanges`` become :class:`ParamSpec` s. ``ScalingType``: ``Linear``;
``Logarithmic`` (samples in log space, needs min > 0); ``ReverseLogarithmic``
(continuous only, needs 0 <= min < max < 1; samples ``1 - x`` in log space);
``Auto`` = logarithmic when min > 0 and max / min >= 100 (the range spans two
orders of magnitude or more), else linear.

Strategies (:func:`create_study`): ``Bayesian`` is Optuna's TPE sampler,
``Random`` its random sampler, both seeded; ``Grid`` takes categorical
ranges only and runs every combination once, in a seeded order. Optuna is
imported only when a space is sampled.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from training import request_fields
from training.errors import TuningRequestError

Strategy = Literal["Bayesian", "Random", "Grid"]
STRATEGIES: tuple[Strategy, ...] = ("Bayesian", "Random", "Grid")


@dataclass(frozen=True)
class ParamSpec:
    """One tunable hyperparameter of the request, ready for Optuna."""

    name: str
    kind: Literal["Continuous", "Integer", "Categorical"]
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    reverse: bool = False
    values: tuple[str, ...] = ()

    def distribution(self) -> Any:
        import optuna

        if self.kind == "Categorical":
            return optuna.distributions.CategoricalDistribution(list(self.values))
        if self.kind == "Integer":
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), log=self.log)
        if self.reverse:
            return optuna.distributions.FloatDistribution(1.0 - self.high, 1.0 - self.low, log=True)
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log)

    def to_string(self, sampled: Any) -> str:
        if self.kind == "Categorical":
            return str(sampled)
        if self.kind == "Integer":
            return str(int(sampled))
        value = 1.0 - float(sampled) if self.reverse else float(sampled)
        return repr(min(max(value, self.low), self.high))


def parse_ranges(ranges: Mapping[str, Any]) -> list[ParamSpec]:
    """``ParameterRanges`` of the request as :class:`ParamSpec` (see module doc)."""
    if not isinstance(ranges, Mapping):
        raise TuningRequestError("ParameterRanges must be an object")
    specs: list[ParamSpec] = []
    for key, kind in (
        ("ContinuousParameterRanges", "Continuous"),
        ("IntegerParameterRanges", "Integer"),
        ("CategoricalParameterRanges", "Categorical"),
    ):
        for i, raw in enumerate(ranges.get(key, []) or []):
            where = f"ParameterRanges.{key}[{i}]"
            if not isinstance(raw, Mapping):
                raise TuningRequestError(f"{where} must be an object")
            name = request_fields.string(raw.get("Name"), f"{where}.Name")
            if kind == "Categorical":
                values = raw.get("Values")
                if not isinstance(values, list) or not values:
                    raise TuningRequestError(f"{where}.Values must be a non-empty list")
                specs.append(
                    ParamSpec(
                        name,
                        "Categorical",
                        values=tuple(request_fields.string(v, where) for v in values),
                    )
                )
                continue
            specs.append(_numeric_spec(raw, where, name, kind))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise TuningRequestError(f"ParameterRanges name a hyperparameter twice: {names}")
    if not specs:
        raise TuningRequestError("ParameterRanges holds no ranges")
    return specs


def _numeric_spec(raw: Mapping[str, Any], where: str, name: str, kind: str) -> ParamSpec:
    """A continuous or integer range with its scaling (see module doc)."""
    integer = kind == "Integer"
    low = request_fields.number(raw.get("MinValue"), f"{where}.MinValue ({name})", integer)
    high = request_fields.number(raw.get("MaxValue"), f"{where}.MaxValue ({name})", integer)
    if low > high:
        raise TuningRequestError(f"{where} ({name}): MinValue exceeds MaxValue")
    scaling = raw.get("ScalingType", "Auto")
    if scaling == "Auto":
        log_scale = low > 0 and high / low >= 100.0
        reverse = False
    elif scaling == "Linear":
        log_scale, reverse = False, False
    elif scaling == "Logarithmic":
        if low <= 0:
            raise TuningRequestError(f"{where} ({name}): Logarithmic needs MinValue > 0")
        log_scale, reverse = True, False
    elif scaling == "ReverseLogarithmic":
        if integer:
            raise TuningRequestError(
                f"{where} ({name}): ReverseLogarithmic is for continuous ranges only"
            )
        if not 0 <= low < high < 1:
            raise TuningRequestError(
                f"{where} ({name}): ReverseLogarithmic needs 0 <= MinValue < MaxValue < 1"
            )
        log_scale, reverse = False, True
    else:
        raise TuningRequestError(f"{where} ({name}): unknown ScalingType {scaling!r}")
    return ParamSpec(name, kind, low, high, log_scale, reverse)  # type: ignore[arg-type]


def grid(specs: list[ParamSpec]) -> dict[str, tuple[str, ...]]:
    """The grid of a Grid strategy: every range must be categorical."""
    if not specs:
        raise TuningRequestError("the Grid strategy needs at least one categorical range")
    other = sorted(s.name for s in specs if s.kind != "Categorical")
    if other:
        raise TuningRequestError(
            f"the Grid strategy takes only CategoricalParameterRanges; {other} are not"
        )
    return {s.name: tuple(s.values) for s in specs}


def create_study(
    strategy: Strategy,
    specs: list[ParamSpec],
    *,
    seed: int,
    direction: Literal["maximize", "minimize"],
    max_parallel: int,
) -> tuple[Any, dict[str, Any]]:
    """An Optuna study sampling ``specs`` with ``strategy``, and the
    distributions to ``ask`` it with. The caller asks and tells."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler: optuna.samplers.BaseSampler
    if strategy == "Bayesian":
        sampler = optuna.samplers.TPESampler(
            seed=seed,
            # Optuna's default (10 random trials first) would make a small
            # budget such as the tutorial's 6 jobs purely random: start the
            # model after one round of parallel jobs, as SageMaker does.
            n_startup_trials=max(2, max_parallel),
            constant_liar=True,  # parallel trials avoid each other
        )
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(direction=direction, sampler=sampler)
    dists = {spec.name: spec.distribution() for spec in specs}
    if strategy == "Grid":
        # Every combination once, in a seeded order (Optuna's GridSampler
        # only works inside study.optimize; the tuner asks and tells).
        values = grid(specs)
        names = sorted(values)
        combos = list(itertools.product(*(values[n] for n in names)))
        random.Random(seed).shuffle(combos)
        for combo in combos:
            study.enqueue_trial(dict(zip(names, combo, strict=True)))
    return study, dists


def trial_failed() -> Any:
    """The state a trial is told with when its job reported no objective."""
    import optuna

    return optuna.trial.TrialState.FAIL
