"""Validate an execution's input and resolve it into a :class:`RunSpec`.

Every key of the input is optional; missing ones come from
:class:`~pipeline_core.config.PipelineConfig`. The resolved spec is what every
later state reads as ``$.run``, so it carries everything derived once: the
deterministic resource names, the tags and the bucket prefix.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from pipeline_core.config import (
    APPROVAL_MODES,
    OBJECTIVE_METRICS,
    TUNABLE_LIMITS,
    ParameterRange,
    PipelineConfig,
)
from pipeline_core.endpoint_modes import resolve_endpoint
from pipeline_core.errors import InvalidConfigError, InvalidInputError
from pipeline_core.instance_types import Role, refusal
from pipeline_core.names import METADATA_UNSAFE, ResourceNames, resource_names, resource_tags

#: Keys an execution input may carry. ``Comment`` is what the console pre-fills.
INPUT_KEYS = frozenset(
    {
        "source",
        "target_digit",
        "ranges",
        "objective_metric",
        "objective_type",
        "strategy",
        "max_jobs",
        "max_parallel_jobs",
        "training_instance_type",
        "endpoint_instance_type",
        "min_objective",
        "endpoint_name",
        "random_seed",
        "training_instance_count",
        "endpoint",
        "spot",
        "approval",
        "model_package_arn",
        "Comment",
    }
)
#: Keys that only mean something when the run tunes a new model: with
#: ``model_package_arn`` (deploy a registered version) they are refused.
TRAINING_ONLY_KEYS = frozenset(
    {
        "source",
        "ranges",
        "objective_metric",
        "objective_type",
        "strategy",
        "max_jobs",
        "max_parallel_jobs",
        "training_instance_type",
        "training_instance_count",
        "min_objective",
        "random_seed",
        "spot",
        "approval",
    }
)

EXECUTION_NAME_MAX = 80
ENDPOINT_NAME_MAX = 63
#: S3 object keys are at most 1024 bytes (UTF-8).
S3_KEY_MAX_BYTES = 1024
ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.(?:[0-9]*x?large|medium|small|metal)$")
# S3 bucket names: 3-63 of lower-case letters, digits, dots and hyphens.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
# Job limits SageMaker accepts for a tuning job's ResourceLimits.
MAX_JOBS_LIMIT = 500
MAX_PARALLEL_LIMIT = 100
#: ``RandomSeed`` of a tuning job: a non-negative 32-bit integer.
RANDOM_SEED_MAX = 2**31 - 1
#: A versioned model package (names are lower case in ARNs).
MODEL_PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/"
    r"(?P<group>[a-z0-9](-*[a-z0-9]){0,62})/(?P<version>[1-9]\d*)$"
)
#: Training instances per job this pipeline lets an execution ask for.
INSTANCE_COUNT_MAX = 20
#: ``source_kind`` values: one tutorial pickle, or an S3 prefix of shards.
SOURCE_PICKLE = "pickle"
SOURCE_SHARDED = "sharded"


@dataclass(frozen=True)
class RunSpec:
    """The resolved settings of one execution (``$.run``)."""

    execution_name: str
    bucket: str
    prefix: str
    source: str
    target_digit: int
    ranges: tuple[ParameterRange, ...]
    objective_metric: str
    objective_type: str
    strategy: str
    max_jobs: int
    max_parallel_jobs: int
    training_instance_type: str
    endpoint_instance_type: str
    min_objective: float
    endpoint_name: str
    poll_seconds: int
    max_polls: int
    names: ResourceNames
    tags: tuple[tuple[str, str], ...]
    #: The tuning job's ``RandomSeed`` (``None``: SageMaker picks one).
    random_seed: int | None = None
    #: ``ResourceConfig.InstanceCount`` of every training job.
    training_instance_count: int = 1
    #: ``pickle`` (``source`` is one object) or ``sharded`` (``source`` is an
    #: ``s3://bucket/prefix/`` of train/validation/test shards).
    source_kind: str = SOURCE_PICKLE
    #: For ``sharded``: the bucket and key prefix the Distributed Map lists.
    source_bucket: str = ""
    source_prefix: str = ""
    #: Endpoint mode (pipeline_core.endpoint_modes): realtime, serverless or none.
    endpoint_mode: str = "realtime"
    endpoint_instance_count: int = 1
    serverless_memory_mb: int = 2048
    serverless_max_concurrency: int = 5
    #: Hours until the endpoint is deleted; 0 keeps it (always 0 in mode none).
    ttl_hours: int = 24
    #: Managed Spot Training for the tuning job.
    spot: bool = False
    transform_instance_type: str = "ml.m4.xlarge"
    #: Registry: ``auto`` or ``manual`` approval of the version this run registers.
    approval: str = "auto"
    #: Deploy this registered version instead of converting and tuning.
    model_package_arn: str | None = None

    def tag_list(self) -> list[dict[str, str]]:
        return [{"Key": k, "Value": v} for k, v in self.tags]

    def s3_uri(self, relative: str) -> str:
        """``s3://<bucket>/runs/<execution>/<relative>``."""
        return f"s3://{self.bucket}/{self.prefix}{relative}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ranges"] = [asdict(r) for r in self.ranges]
        data["names"] = self.names.to_dict()
        data["tags"] = self.tag_list()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
        """Rebuild from :meth:`to_dict` output (``$.run``)."""
        try:
            return cls(
                execution_name=str(data["execution_name"]),
                bucket=str(data["bucket"]),
                prefix=str(data["prefix"]),
                source=str(data["source"]),
                target_digit=int(data["target_digit"]),
                ranges=tuple(
                    ParameterRange(
                        name=r["name"],
                        kind=r["kind"],
                        min_value=r["min_value"],
                        max_value=r["max_value"],
                        scaling=r.get("scaling", "Auto"),
                    )
                    for r in data["ranges"]
                ),
                objective_metric=str(data["objective_metric"]),
                objective_type=str(data["objective_type"]),
                strategy=str(data["strategy"]),
                max_jobs=int(data["max_jobs"]),
                max_parallel_jobs=int(data["max_parallel_jobs"]),
                training_instance_type=str(data["training_instance_type"]),
                endpoint_instance_type=str(data["endpoint_instance_type"]),
                min_objective=float(data["min_objective"]),
                endpoint_name=str(data["endpoint_name"]),
                poll_seconds=int(data["poll_seconds"]),
                max_polls=int(data["max_polls"]),
                names=ResourceNames.from_dict(data["names"]),
                tags=tuple((str(t["Key"]), str(t["Value"])) for t in data["tags"]),
                random_seed=(None if data.get("random_seed") is None else int(data["random_seed"])),
                training_instance_count=int(data.get("training_instance_count", 1)),
                source_kind=str(data.get("source_kind", SOURCE_PICKLE)),
                source_bucket=str(data.get("source_bucket", "")),
                source_prefix=str(data.get("source_prefix", "")),
                endpoint_mode=str(data.get("endpoint_mode", "realtime")),
                endpoint_instance_count=int(data.get("endpoint_instance_count", 1)),
                serverless_memory_mb=int(data.get("serverless_memory_mb", 2048)),
                serverless_max_concurrency=int(data.get("serverless_max_concurrency", 5)),
                ttl_hours=int(data.get("ttl_hours", 0)),
                spot=bool(data.get("spot", False)),
                transform_instance_type=str(data.get("transform_instance_type", "ml.m4.xlarge")),
                approval=str(data.get("approval", "auto")),
                model_package_arn=(
                    None
                    if data.get("model_package_arn") is None
                    else str(data["model_package_arn"])
                ),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInputError(f"run: malformed run spec ({e!r})") from e


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int(raw: Mapping[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value = raw.get(key, default)
    if not _is_int(value):
        raise InvalidInputError(f"{key}: must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise InvalidInputError(f"{key}: {value} is outside [{lo}, {hi}]")
    return int(value)


def _choice(raw: Mapping[str, Any], key: str, default: str, allowed: Any) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInputError(f"{key}: {value!r} is not one of {sorted(allowed)}")
    return value


def _instance(
    raw: Mapping[str, Any], key: str, default: str, allowed: Any = None, role: Role = "training"
) -> str:
    value = raw.get(key, default)
    _check_instance(key, value, allowed, role)
    return str(value)


def _check_instance(key: str, value: Any, allowed: Any = None, role: Role | None = None) -> None:
    if not isinstance(value, str) or not INSTANCE_TYPE.match(value):
        raise InvalidInputError(f"{key}: {value!r} is not a SageMaker instance type (ml.*)")
    if allowed is not None and value not in allowed:
        raise InvalidInputError(
            f"{key}: {value!r} is not allowed by this stack "
            f"(allowed_instance_types: {sorted(allowed)})"
        )
    why = refusal(role, value) if role is not None else None
    if why is not None:
        raise InvalidInputError(f"{key}: {why}")


def _endpoint_name(raw: Mapping[str, Any], default: str, name_prefix: str) -> str:
    """SageMaker's endpoint name rules, plus our prefix: IAM allows only
    ``<name_prefix>-*`` and cleanup lists by that prefix."""
    value = raw.get("endpoint_name", default)
    if not isinstance(value, str):
        raise InvalidInputError(f"endpoint_name: must be a string, got {value!r}")
    if len(value) > ENDPOINT_NAME_MAX:
        raise InvalidInputError(
            f"endpoint_name: {len(value)} characters, SageMaker allows at most {ENDPOINT_NAME_MAX}"
        )
    if not ENDPOINT_NAME.match(value):
        raise InvalidInputError(
            f"endpoint_name: {value!r} must be 1-{ENDPOINT_NAME_MAX} letters, digits and "
            "hyphens, starting and ending with a letter or digit"
        )
    if not value.startswith(f"{name_prefix}-"):
        raise InvalidInputError(
            f"endpoint_name: {value!r} must start with '{name_prefix}-' "
            "(the stack may only manage endpoints with its name prefix)"
        )
    return value


def model_package_arn(value: Any, *, group: str) -> str:
    """A version of the stack's Model Package Group (IAM allows no other)."""
    if not isinstance(value, str):
        raise InvalidInputError(f"model_package_arn: must be a string, got {value!r}")
    match = MODEL_PACKAGE_ARN.match(value)
    if match is None:
        raise InvalidInputError(
            f"model_package_arn: {value!r} is not a model package version ARN "
            "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)"
        )
    if match.group("group") != group.lower():
        raise InvalidInputError(
            f"model_package_arn: {value!r} is not in this stack's registry ({group})"
        )
    return value


def source_kind(source: str) -> str:
    """``sharded`` for an ``s3://bucket/prefix/`` (a trailing slash), else ``pickle``."""
    return SOURCE_SHARDED if source.startswith("s3://") and source.endswith("/") else SOURCE_PICKLE


def validate_source(source: Any, *, allow_local_sources: bool = False) -> str:
    """An ``s3://bucket/key`` URI, an ``s3://bucket/prefix/`` of shards, or
    (local run only) a path or ``file://`` URI."""
    if not isinstance(source, str) or not source.strip():
        raise InvalidInputError(f"source: must be a non-empty string, got {source!r}")
    if source.startswith("s3://"):
        bucket, _, key = source[len("s3://") :].partition("/")
        if not _BUCKET.match(bucket) or ".." in bucket:
            raise InvalidInputError(f"source: {bucket!r} is not a valid S3 bucket name")
        if not key.strip("/"):
            raise InvalidInputError(f"source: {source!r} names no object key or prefix")
        if "//" in key or key.startswith("/"):
            raise InvalidInputError(f"source: {source!r} has an empty path segment")
        if len(key.encode("utf-8")) > S3_KEY_MAX_BYTES:
            raise InvalidInputError(
                f"source: object key is longer than S3's {S3_KEY_MAX_BYTES} bytes"
            )
        return source
    if allow_local_sources:
        if source.startswith("file://"):
            if not source[len("file://") :]:
                raise InvalidInputError("source: empty file:// URI")
            return source
        if "://" not in source:
            return source
    raise InvalidInputError(
        f"source: {source!r} must be an s3://bucket/key URI"
        + (" (or a local path / file:// URI)" if allow_local_sources else "")
    )


def _ranges(value: Any) -> tuple[ParameterRange, ...]:
    if not isinstance(value, list) or not value:
        raise InvalidInputError("ranges: must be a non-empty list of range objects")
    out: list[ParameterRange] = []
    allowed = {"name", "kind", "min_value", "max_value", "scaling"}
    for i, raw in enumerate(value):
        where = f"ranges[{i}]"
        if not isinstance(raw, Mapping):
            raise InvalidInputError(f"{where}: must be an object")
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise InvalidInputError(f"{where}: {unknown_key_message(unknown, frozenset(allowed))}")
        name = raw.get("name")
        if not isinstance(name, str) or name not in TUNABLE_LIMITS:
            raise InvalidInputError(
                f"{where}.name: {name!r} is not a tunable Linear Learner hyperparameter "
                f"(one of {sorted(TUNABLE_LIMITS)})"
            )
        kind = raw.get("kind", TUNABLE_LIMITS[name][0])
        for bound in ("min_value", "max_value"):
            if bound not in raw:
                raise InvalidInputError(f"{where}.{bound}: missing")
            if not _is_number(raw[bound]):
                raise InvalidInputError(f"{where}.{bound}: must be a number, got {raw[bound]!r}")
        scaling = raw.get("scaling", "Auto")
        rng = ParameterRange(name, kind, raw["min_value"], raw["max_value"], scaling)
        try:
            rng.validate()
        except InvalidConfigError as e:
            raise InvalidInputError(f"{where}: {e}") from e
        out.append(rng)
    names = [r.name for r in out]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"ranges: duplicate parameter names {names}")
    return tuple(out)


def unknown_key_message(unknown: list[str], known: frozenset[str]) -> str:
    """``unknown key target_digt: did you mean target_digit?`` for the first
    unknown key, with the nearest known key when one is close (difflib)."""
    key = str(unknown[0])
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    hint = f": did you mean {close[0]}?" if close else f" (valid keys: {', '.join(sorted(known))})"
    more = f" (unknown keys: {unknown})" if len(unknown) > 1 else ""
    return f"unknown key {key}{hint}{more}"


def resolve_run(
    raw: Any,
    *,
    execution_name: str,
    config: PipelineConfig,
    bucket: str,
    region: str,
    default_endpoint_name: str,
    stack_tag: str,
    allow_local_sources: bool = False,
    salt: str = "",
    model_package_group: str | None = None,
) -> RunSpec:
    """Validate the execution input ``raw`` and resolve it into a :class:`RunSpec`.

    ``salt`` (the deployment's, see :mod:`pipeline_core.names`) goes into every
    resource name and tag. Raises :class:`InvalidInputError` naming the offending key.
    """
    if not isinstance(execution_name, str) or not 1 <= len(execution_name) <= EXECUTION_NAME_MAX:
        raise InvalidInputError(
            f"execution_name: must be 1-{EXECUTION_NAME_MAX} characters, got {execution_name!r}"
        )
    unsafe = sorted(set(METADATA_UNSAFE.findall(execution_name)))
    if unsafe:
        # Step Functions allows them in a name; the registry's metadata (the
        # execution and its S3 keys) refuses them, after the tuning has run.
        raise InvalidInputError(
            f"execution_name: {execution_name!r} has characters SageMaker refuses in a model "
            f"version's metadata ({' '.join(unsafe)}); start the execution with a name of "
            "letters, digits and _ . = + - @"
        )
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise InvalidInputError(f"input: must be a JSON object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - INPUT_KEYS)
    if unknown:
        raise InvalidInputError(unknown_key_message(unknown, INPUT_KEYS))

    package_arn: str | None = None
    if "model_package_arn" in raw:
        package_arn = model_package_arn(
            raw["model_package_arn"], group=model_package_group or config.model_package_group
        )
        clashing = sorted(set(raw) & TRAINING_ONLY_KEYS)
        if clashing:
            raise InvalidInputError(
                f"{clashing[0]}: does not apply with model_package_arn "
                "(that run deploys a registered version, it trains nothing)"
            )
    approval = _choice(raw, "approval", config.approval, APPROVAL_MODES)

    source_default = config.source_template.format(region=region)
    source = validate_source(
        raw.get("source", source_default), allow_local_sources=allow_local_sources
    )
    target_digit = _int(raw, "target_digit", config.target_digit, 0, 9)
    ranges = _ranges(raw["ranges"]) if "ranges" in raw else config.ranges
    metric = _choice(raw, "objective_metric", config.objective_metric, OBJECTIVE_METRICS)
    # The direction follows the metric unless the caller says so explicitly.
    metric_direction = (
        OBJECTIVE_METRICS[metric] if "objective_metric" in raw else config.objective_type
    )
    objective_type = _choice(raw, "objective_type", metric_direction, {"Maximize", "Minimize"})
    if objective_type != OBJECTIVE_METRICS[metric]:
        raise InvalidInputError(
            f"objective_type: {metric} must be {OBJECTIVE_METRICS[metric]}d, not {objective_type}d"
        )
    strategy = _choice(raw, "strategy", config.strategy, {"Bayesian", "Random"})
    # The stack's caps (cdk.json pipeline.max_jobs_limit / max_parallel_limit).
    max_jobs = _int(raw, "max_jobs", config.max_jobs, 1, min(MAX_JOBS_LIMIT, config.max_jobs_limit))
    max_parallel = _int(
        raw,
        "max_parallel_jobs",
        config.max_parallel_jobs,
        1,
        min(MAX_PARALLEL_LIMIT, config.max_parallel_limit),
    )
    if max_parallel > max_jobs:
        raise InvalidInputError(
            f"max_parallel_jobs: {max_parallel} must not exceed max_jobs ({max_jobs})"
        )
    allowed = frozenset(config.allowed_instance_types)
    training_type = _instance(raw, "training_instance_type", config.training_instance_type, allowed)
    endpoint = resolve_endpoint(
        raw.get("endpoint"),
        alias_instance_type=raw.get("endpoint_instance_type"),
        defaults=config.endpoint,
        default_instance_type=config.endpoint_instance_type,
        default_instance_count=config.endpoint_instance_count,
        check_instance=lambda key, value: _check_instance(key, value, allowed, "endpoint"),
    )
    endpoint_type = endpoint.instance_type
    spot = raw.get("spot", False)
    if not isinstance(spot, bool):
        raise InvalidInputError(f"spot: must be true or false, got {spot!r}")
    min_objective = raw.get("min_objective", config.min_objective)
    if not _is_number(min_objective) or not math.isfinite(min_objective):
        raise InvalidInputError(f"min_objective: must be a finite number, got {min_objective!r}")
    endpoint_name = _endpoint_name(raw, default_endpoint_name, config.name_prefix)
    random_seed = raw.get("random_seed")
    if random_seed is not None:
        random_seed = _int(raw, "random_seed", 0, 0, RANDOM_SEED_MAX)
    instance_count = _int(
        raw, "training_instance_count", config.training_instance_count, 1, INSTANCE_COUNT_MAX
    )
    kind = source_kind(source)
    source_bucket, _, source_prefix = (
        source[len("s3://") :].partition("/") if kind == SOURCE_SHARDED else ("", "", "")
    )
    if not bucket:
        raise InvalidInputError("bucket: no data bucket configured (DATA_BUCKET)")
    if kind == SOURCE_SHARDED and source_bucket != bucket:
        raise InvalidInputError(
            f"source: a sharded source must be a prefix of the stack's bucket s3://{bucket}/ "
            "(the Distributed Map may list no other bucket)"
        )

    # The config's own checks as a final guard (they name the same keys).
    try:
        replace(
            config,
            target_digit=target_digit,
            ranges=ranges,
            objective_metric=metric,
            objective_type=objective_type,
            strategy=strategy,  # type: ignore[arg-type]
            max_jobs=max_jobs,
            max_parallel_jobs=max_parallel,
            training_instance_type=training_type,
            endpoint_instance_type=endpoint_type,
            min_objective=float(min_objective),
        ).validate()
    except InvalidConfigError as e:
        raise InvalidInputError(str(e)) from e

    tags = resource_tags(stack_tag, execution_name, salt)
    return RunSpec(
        execution_name=execution_name,
        bucket=bucket,
        prefix=f"runs/{execution_name}/",
        source=source,
        target_digit=target_digit,
        ranges=ranges,
        objective_metric=metric,
        objective_type=objective_type,
        strategy=strategy,
        max_jobs=max_jobs,
        max_parallel_jobs=max_parallel,
        training_instance_type=training_type,
        endpoint_instance_type=endpoint_type,
        min_objective=float(min_objective),
        endpoint_name=endpoint_name,
        poll_seconds=config.poll_seconds,
        max_polls=config.max_polls,
        names=resource_names(config.name_prefix, execution_name, salt),
        tags=tuple((t["Key"], t["Value"]) for t in tags),
        random_seed=random_seed,
        training_instance_count=instance_count,
        source_kind=kind,
        source_bucket=source_bucket,
        source_prefix=source_prefix,
        endpoint_mode=endpoint.mode,
        endpoint_instance_count=endpoint.instance_count,
        serverless_memory_mb=endpoint.memory_mb,
        serverless_max_concurrency=endpoint.max_concurrency,
        ttl_hours=endpoint.ttl_hours,
        spot=spot,
        transform_instance_type=config.transform_instance_type,
        approval=approval,
        model_package_arn=package_arn,
    )
