"""A CreateHyperParameterTuningJob request, checked and reduced to what a
local tuning job runs.

:func:`parse_request` takes the very request dict the pipeline sends to
SageMaker (boto3 shape), so the ranges, objective and limits come from one
place (``pipeline_core``) and are never restated here. Anything that cannot
run locally raises :class:`~training.errors.TuningRequestError` before any
training job starts. Without a ``RandomSeed`` the sampler's seed is a hash
of the tuning job's name.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training import request_fields
from training.errors import TuningRequestError
from training.objective import Objective, parse_objective
from training.search import STRATEGIES, ParamSpec, Strategy, grid, parse_ranges

_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")


@dataclass(frozen=True)
class TuningConfig:
    """Everything a local tuning job needs from its request."""

    name: str
    strategy: Strategy
    objective: Objective
    specs: list[ParamSpec]
    max_jobs: int
    max_parallel: int
    seed: int
    #: ``StaticHyperParameters``: given to every training job as they are.
    static: dict[str, str]
    #: Local path of each channel of ``InputDataConfig``.
    channels: dict[str, Path]
    instance_count: int
    #: Each channel's ``S3DataDistributionType``.
    distribution: dict[str, str]
    #: ``StoppingCondition.MaxRuntimeInSeconds`` of each training job.
    max_runtime: float | None


def parse_request(request: Any, channels: Mapping[str, Path]) -> TuningConfig:
    """Check ``request`` and resolve its channels among the local ``channels``."""
    if not isinstance(request, Mapping):
        raise TuningRequestError("the request must be an object")
    name = request_fields.string(
        request.get("HyperParameterTuningJobName"), "HyperParameterTuningJobName"
    )
    if not _NAME.match(name):
        raise TuningRequestError(
            f"HyperParameterTuningJobName: 1-32 letters, digits and hyphens, got {name!r}"
        )
    config = request.get("HyperParameterTuningJobConfig")
    if not isinstance(config, Mapping):
        raise TuningRequestError("HyperParameterTuningJobConfig is required")
    strategy = config.get("Strategy", "Bayesian")
    if strategy not in STRATEGIES:
        raise TuningRequestError(
            f"Strategy {strategy!r} is not supported locally (Bayesian, Random or Grid)"
        )
    objective = parse_objective(config.get("HyperParameterTuningJobObjective"))
    limits = config.get("ResourceLimits")
    if not isinstance(limits, Mapping):
        raise TuningRequestError("ResourceLimits is required")
    max_parallel = _limit(limits.get("MaxParallelTrainingJobs"), "MaxParallelTrainingJobs")
    specs = parse_ranges(config.get("ParameterRanges", {}))
    if strategy == "Grid":
        # As SageMaker: a grid is categorical ranges only, one job per
        # combination; MaxNumberOfTrainingJobs, if given, must be that count.
        size = math.prod(len(values) for values in grid(specs).values())
        given = limits.get("MaxNumberOfTrainingJobs")
        if given is not None and _limit(given, "MaxNumberOfTrainingJobs") != size:
            raise TuningRequestError(
                f"ResourceLimits.MaxNumberOfTrainingJobs is {given}, but the Grid "
                f"strategy runs every combination: leave it out or set it to {size}"
            )
        max_jobs = size
    else:
        max_jobs = _limit(limits.get("MaxNumberOfTrainingJobs"), "MaxNumberOfTrainingJobs")
    seed = config.get("RandomSeed")
    if seed is None:
        seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TuningRequestError("RandomSeed must be an integer")

    definition = request.get("TrainingJobDefinition")
    if not isinstance(definition, Mapping):
        raise TuningRequestError("TrainingJobDefinition is required (one definition)")
    static = definition.get("StaticHyperParameters", {}) or {}
    if not isinstance(static, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in static.items()
    ):
        raise TuningRequestError("StaticHyperParameters must map names to strings")
    clash = sorted({s.name for s in specs} & set(static))
    if clash:
        raise TuningRequestError(f"hyperparameters both static and tuned: {clash}")
    local_channels = _channels(definition.get("InputDataConfig"), channels)
    instance_count, distribution = _instances(definition)
    stopping = definition.get("StoppingCondition", {}) or {}
    runtime = stopping.get("MaxRuntimeInSeconds") if isinstance(stopping, Mapping) else None
    return TuningConfig(
        name=name,
        strategy=strategy,
        objective=objective,
        specs=specs,
        max_jobs=max_jobs,
        max_parallel=max_parallel,
        seed=seed,
        static=dict(static),
        channels=local_channels,
        instance_count=instance_count,
        distribution=distribution,
        max_runtime=float(runtime) if isinstance(runtime, (int, float)) else None,
    )


def _limit(value: Any, what: str) -> int:
    return request_fields.positive_int(value, f"ResourceLimits.{what}")


def _channels(config: Any, given: Mapping[str, Path]) -> dict[str, Path]:
    """Local paths for the request's ``InputDataConfig`` channels."""
    if config is None:
        names = sorted(given)
    else:
        if not isinstance(config, list):
            raise TuningRequestError("InputDataConfig must be a list of channels")
        names = []
        for i, channel in enumerate(config):
            if not isinstance(channel, Mapping):
                raise TuningRequestError(f"InputDataConfig[{i}] must be an object")
            names.append(
                request_fields.string(
                    channel.get("ChannelName"), f"InputDataConfig[{i}].ChannelName"
                )
            )
    missing = sorted(set(names) - set(given))
    if missing:
        raise TuningRequestError(f"no local data for channels {missing}")
    if "train" not in names:
        raise TuningRequestError("InputDataConfig needs a 'train' channel")
    return {name: Path(given[name]) for name in names}


def _instances(definition: Mapping[str, Any]) -> tuple[int, dict[str, str]]:
    """``ResourceConfig.InstanceCount`` and each channel's ``S3DataDistributionType``."""
    resources = definition.get("ResourceConfig") or {}
    count = resources.get("InstanceCount", 1) if isinstance(resources, Mapping) else 1
    count = request_fields.positive_int(count, "ResourceConfig.InstanceCount")
    distribution: dict[str, str] = {}
    for channel in definition.get("InputDataConfig") or []:
        source = (channel.get("DataSource") or {}).get("S3DataSource") or {}
        distribution[str(channel.get("ChannelName"))] = str(
            source.get("S3DataDistributionType", "FullyReplicated")
        )
    return count, distribution
