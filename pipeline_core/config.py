"""The one source of truth for the pipeline's defaults.

The tutorial's settings live here and nowhere else. ``app.py`` overlays the
``pipeline`` block of ``cdk.json`` context on :data:`DEFAULTS`, the stack
hands the result to every Lambda as JSON in ``PIPELINE_CONFIG``, and the local
run reads the very same variable from the synthesized template.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from pipeline_core.endpoint_modes import ENDPOINT_DEFAULTS, parse_endpoint_defaults
from pipeline_core.errors import InvalidConfigError
from pipeline_core.instance_types import Role, refusal
from pipeline_core.rollout import ROLLOUT_DEFAULTS, parse_rollout

ScalingType = Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"]
RangeKind = Literal["Continuous", "Integer"]
ObjectiveType = Literal["Maximize", "Minimize"]
Strategy = Literal["Bayesian", "Random"]
#: What an execution does when another one is deploying to the same endpoint.
EndpointBusyMode = Literal["wait", "fail"]

#: Metrics Linear Learner emits that a tuning job may optimise, with the
#: direction SageMaker documents for each.
OBJECTIVE_METRICS: dict[str, ObjectiveType] = {
    "validation:binary_f_beta": "Maximize",
    "validation:binary_classification_accuracy": "Maximize",
    "validation:precision": "Maximize",
    "validation:recall": "Maximize",
    "validation:roc_auc_score": "Maximize",
    "validation:objective_loss": "Minimize",
}

#: Hyperparameters a tuning job may vary, with the hard limits Linear Learner
#: accepts (SageMaker developer guide, "Tune a linear learner model").
TUNABLE_LIMITS: dict[str, tuple[RangeKind, float, float]] = {
    "wd": ("Continuous", 1e-7, 1.0),
    "l1": ("Continuous", 1e-7, 1.0),
    "learning_rate": ("Continuous", 1e-5, 1.0),
    "mini_batch_size": ("Integer", 1, 10_000),
    "positive_example_weight_mult": ("Continuous", 1e-5, 1e5),
}

#: Every hyperparameter the Linear Learner documentation lists ("Linear
#: learner hyperparameters"): what ``extra_static_hyperparameters`` may set.
#: The values are the algorithm's to judge; the names are checked here so a
#: typo fails at synth, not in the tuning job.
LINEAR_LEARNER_HYPERPARAMETERS = frozenset(
    {
        "accuracy_top_k", "balance_multiclass_weights", "beta_1", "beta_2", "bias_lr_mult",
        "bias_wd_mult", "binary_classifier_model_selection_criteria",
        "early_stopping_patience", "early_stopping_tolerance", "epochs", "f_beta",
        "feature_dim", "huber_delta", "init_bias", "init_method", "init_scale", "init_sigma",
        "l1", "learning_rate", "loss", "loss_insensitivity", "lr_scheduler_factor",
        "lr_scheduler_minimum_lr", "lr_scheduler_step", "margin", "mini_batch_size",
        "momentum", "normalize_data", "normalize_label", "num_calibration_samples",
        "num_classes", "num_models", "num_point_for_scaler", "optimizer",
        "positive_example_weight_mult", "predictor_type", "quantile", "target_precision",
        "target_recall", "unbias_data", "unbias_label", "use_bias", "use_lr_scheduler", "wd",
    }
)  # fmt: skip
#: Set by their own config keys, never through extra_static_hyperparameters.
_OWN_KEYS = frozenset({"feature_dim", "predictor_type", "mini_batch_size"})

# Instance families with local NVMe storage (hardware-encrypted): SageMaker
# refuses a VolumeKmsKeyId / endpoint-config KmsKeyId for them.
_LOCAL_STORAGE_FAMILY = re.compile(r"^[a-z]+\d+[a-z]*d[a-z]*$")
_LOCAL_STORAGE_FAMILIES = frozenset({"g5", "g6", "g6e", "p5", "p5e", "p5en", "trn1", "trn1n"})


def has_local_storage(instance_type: str) -> bool:
    """True for ``ml.*`` types with instance storage (``ml.m5d.large``, ``ml.g4dn.xlarge``)."""
    parts = instance_type.split(".")
    family = parts[1] if len(parts) == 3 else ""
    return bool(_LOCAL_STORAGE_FAMILY.match(family)) or family in _LOCAL_STORAGE_FAMILIES


#: The tutorial's types plus current-generation m5/c5 sizes up to xlarge: what
#: ValidateInput accepts and IAM's ``sagemaker:InstanceTypes`` condition allows.
DEFAULT_ALLOWED_INSTANCE_TYPES: tuple[str, ...] = (
    "ml.c4.xlarge",
    "ml.m4.xlarge",
    "ml.c5.large",
    "ml.c5.xlarge",
    "ml.m5.large",
    "ml.m5.xlarge",
)

#: Input/config ``approval``.
APPROVAL_MODES = ("auto", "manual")

_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.(?:[0-9]*x?large|medium|small|metal)$")
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")


@dataclass(frozen=True)
class ParameterRange:
    """One hyperparameter range, in the shape a tuning job takes it."""

    name: str
    kind: RangeKind
    min_value: float
    max_value: float
    scaling: ScalingType = "Auto"

    def validate(self) -> None:
        if self.name not in TUNABLE_LIMITS:
            raise InvalidConfigError(
                f"range '{self.name}': not a tunable Linear Learner hyperparameter "
                f"(one of {sorted(TUNABLE_LIMITS)})"
            )
        kind, lo, hi = TUNABLE_LIMITS[self.name]
        if self.kind != kind:
            raise InvalidConfigError(f"range '{self.name}': must be {kind}, got {self.kind}")
        for bound in (self.min_value, self.max_value):
            if not isinstance(bound, (int, float)) or isinstance(bound, bool):
                raise InvalidConfigError(f"range '{self.name}': bounds must be numbers")
            if not math.isfinite(bound):
                raise InvalidConfigError(f"range '{self.name}': bounds must be finite")
        if kind == "Integer" and (
            self.min_value != int(self.min_value) or self.max_value != int(self.max_value)
        ):
            raise InvalidConfigError(f"range '{self.name}': integer range needs whole bounds")
        if self.min_value >= self.max_value:
            raise InvalidConfigError(
                f"range '{self.name}': min {self.min_value} must be below max {self.max_value}"
            )
        if self.min_value < lo or self.max_value > hi:
            raise InvalidConfigError(
                f"range '{self.name}': [{self.min_value}, {self.max_value}] is outside "
                f"what SageMaker accepts [{lo}, {hi}]"
            )
        if self.scaling not in ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic"):
            raise InvalidConfigError(f"range '{self.name}': unknown ScalingType {self.scaling}")
        if self.scaling == "Logarithmic" and self.min_value <= 0:
            raise InvalidConfigError(f"range '{self.name}': Logarithmic scaling needs min > 0")
        if self.scaling == "ReverseLogarithmic" and (
            kind != "Continuous" or self.min_value < 0 or self.max_value >= 1
        ):
            raise InvalidConfigError(
                f"range '{self.name}': ReverseLogarithmic scaling needs a Continuous range "
                "within [0, 1)"
            )


@dataclass(frozen=True)
class PipelineConfig:
    """Every default of the pipeline. All fields have the tutorial's values."""

    name_prefix: str = "mnist-ll"
    source_template: str = (
        "s3://sagemaker-example-files-prod-{region}/datasets/image/MNIST/mnist.pkl.gz"
    )
    target_digit: int = 0
    feature_dim: int = 784
    predictor_type: str = "binary_classifier"
    mini_batch_size: int = 200
    training_instance_type: str = "ml.c4.xlarge"
    training_instance_count: int = 1
    training_volume_gb: int = 10
    max_runtime_seconds: int = 3600
    endpoint_instance_type: str = "ml.m4.xlarge"
    endpoint_instance_count: int = 1
    ranges: tuple[ParameterRange, ...] = (
        ParameterRange("wd", "Continuous", 1e-7, 1.0, "Auto"),
        ParameterRange("learning_rate", "Continuous", 1e-5, 1.0, "Auto"),
        ParameterRange("mini_batch_size", "Integer", 100, 2000, "Auto"),
    )
    objective_metric: str = "validation:binary_f_beta"
    objective_type: ObjectiveType = "Maximize"
    strategy: Strategy = "Bayesian"
    max_jobs: int = 6
    max_parallel_jobs: int = 2
    min_objective: float = 0.90
    evaluation_chunks: int = 100
    #: Evaluate's requests in flight at once (the endpoint scores them in parallel).
    evaluation_parallelism: int = 4
    poll_seconds: int = 60
    max_polls: int = 240
    extra_static_hyperparameters: Mapping[str, str] = field(default_factory=dict)
    #: Sharded sources: Distributed Map children converting shards at once.
    map_max_concurrency: int = 40
    #: Largest shard object a Map child reads (and npz decompressed size).
    shard_max_bytes: int = 1 << 30
    #: Largest recordIO object a Map child writes (a shard may become several).
    recordio_object_max_bytes: int = 64 << 20
    #: Endpoint defaults: ``mode`` (realtime/serverless/none), ``ttl_hours``
    #: (0 keeps it forever), serverless ``memory_mb`` and ``max_concurrency``.
    endpoint: Mapping[str, Any] = field(default_factory=lambda: dict(ENDPOINT_DEFAULTS))
    #: Batch Transform instance for endpoint mode ``none``.
    transform_instance_type: str = "ml.m4.xlarge"
    #: Cost guard rails: what an execution may ask for.
    allowed_instance_types: tuple[str, ...] = DEFAULT_ALLOWED_INSTANCE_TYPES
    max_jobs_limit: int = 20
    max_parallel_limit: int = 4
    #: Managed Spot Training (input ``spot``): MaxWaitTimeInSeconds (>= max_runtime_seconds).
    spot_max_wait_seconds: int = 3600
    #: Model registry: ``auto`` approves a version that passed the quality
    #: gate; ``manual`` waits (at most ``approval_timeout_minutes``) for a person.
    approval: str = "auto"
    approval_timeout_minutes: int = 120
    #: UpdateEndpoint's blue/green DeploymentConfig (pipeline_core.rollout).
    rollout: Mapping[str, Any] = field(default_factory=lambda: dict(ROLLOUT_DEFAULTS))
    #: One deploy at a time per endpoint: ``wait`` retries Deploy while another
    #: execution holds the endpoint's lease (at most ``endpoint_busy_retries``
    #: times, ``endpoint_busy_interval_seconds`` apart), ``fail`` ends at once
    #: in ``EndpointBusy``.
    endpoint_busy: EndpointBusyMode = "wait"
    endpoint_busy_retries: int = 15
    endpoint_busy_interval_seconds: int = 120
    #: Lifetime of an endpoint lease: a crashed holder loses it after this.
    endpoint_lease_seconds: int = 7200
    #: An endpoint TTL that fires while the endpoint is Creating/Updating/
    #: SystemUpdating/RollingBack (DeleteEndpoint is refused then) tries again
    #: this many minutes later, at most ``ttl_rearm_limit`` times, then gives up
    #: with a notification (pipeline_core.ttl.expire_endpoint).
    ttl_rearm_minutes: int = 15
    ttl_rearm_limit: int = 16

    # -- validation ---------------------------------------------------------

    def validate(self, *, sagemaker_types: bool = True) -> PipelineConfig:
        """Raise :class:`InvalidConfigError` naming the first bad field.

        ``sagemaker_types`` also checks each instance type against the kind of
        job that uses it (botocore's lists, :mod:`pipeline_core.instance_types`);
        only :data:`DEFAULTS` skips it, so importing this module does not load
        SageMaker's service model (a test checks the defaults with it)."""

        def role(kind: Role) -> Role | None:
            return kind if sagemaker_types else None

        if not _NAME.match(self.name_prefix) or len(self.name_prefix) > 12:
            raise InvalidConfigError(
                "name_prefix: 1-12 characters of letters, digits and single hyphens"
            )
        _check_int("target_digit", self.target_digit, 0, 9)
        _check_int("feature_dim", self.feature_dim, 1, 100_000)
        if self.predictor_type != "binary_classifier":
            raise InvalidConfigError(
                "predictor_type: only 'binary_classifier' is supported by this pipeline"
            )
        _check_int("mini_batch_size", self.mini_batch_size, 1, 10_000)
        _check_instance("training_instance_type", self.training_instance_type, role("training"))
        _check_instance("endpoint_instance_type", self.endpoint_instance_type, role("endpoint"))
        _check_int("training_instance_count", self.training_instance_count, 1, 20)
        _check_int("endpoint_instance_count", self.endpoint_instance_count, 1, 20)
        _check_int("training_volume_gb", self.training_volume_gb, 1, 16_384)
        _check_int("max_runtime_seconds", self.max_runtime_seconds, 60, 2_419_200)
        if not self.ranges:
            raise InvalidConfigError("ranges: at least one hyperparameter range is needed")
        names = [r.name for r in self.ranges]
        if len(set(names)) != len(names):
            raise InvalidConfigError(f"ranges: duplicate parameter names {names}")
        for rng in self.ranges:
            rng.validate()
        if self.objective_metric not in OBJECTIVE_METRICS:
            raise InvalidConfigError(
                f"objective_metric: '{self.objective_metric}' is not a Linear Learner "
                f"tuning metric (one of {sorted(OBJECTIVE_METRICS)})"
            )
        if self.objective_type not in ("Maximize", "Minimize"):
            raise InvalidConfigError("objective_type: Maximize or Minimize")
        if self.strategy not in ("Bayesian", "Random"):
            raise InvalidConfigError("strategy: Bayesian or Random")
        _check_int("max_jobs", self.max_jobs, 1, 500)
        _check_int("max_parallel_jobs", self.max_parallel_jobs, 1, 100)
        if self.max_parallel_jobs > self.max_jobs:
            raise InvalidConfigError(
                f"max_parallel_jobs ({self.max_parallel_jobs}) must not exceed "
                f"max_jobs ({self.max_jobs})"
            )
        if not isinstance(self.min_objective, (int, float)) or not math.isfinite(
            self.min_objective
        ):
            raise InvalidConfigError("min_objective: must be a finite number")
        _check_int("evaluation_chunks", self.evaluation_chunks, 1, 10_000)
        _check_int("evaluation_parallelism", self.evaluation_parallelism, 1, 64)
        _check_int("poll_seconds", self.poll_seconds, 0, 3600)
        _check_int("max_polls", self.max_polls, 1, 10_000)
        if self.endpoint_busy not in ("wait", "fail"):
            raise InvalidConfigError(
                f"endpoint_busy: '{self.endpoint_busy}' must be 'wait' or 'fail'"
            )
        _check_int("endpoint_busy_retries", self.endpoint_busy_retries, 1, 99)
        _check_int("endpoint_busy_interval_seconds", self.endpoint_busy_interval_seconds, 1, 3600)
        _check_int("endpoint_lease_seconds", self.endpoint_lease_seconds, 60, 86_400)
        _check_int("ttl_rearm_minutes", self.ttl_rearm_minutes, 1, 1440)
        _check_int("ttl_rearm_limit", self.ttl_rearm_limit, 0, 99)
        # Distributed Map children run at most 10,000 at once.
        _check_int("map_max_concurrency", self.map_max_concurrency, 1, 10_000)
        _check_int("shard_max_bytes", self.shard_max_bytes, 1 << 10, 4 << 30)
        _check_int("recordio_object_max_bytes", self.recordio_object_max_bytes, 1 << 12, 4 << 30)
        self._validate_extra_static()
        self._validate_lifecycle(role("transform"))
        self._validate_registry()
        return self

    def _validate_extra_static(self) -> None:
        where = "extra_static_hyperparameters"
        if not isinstance(self.extra_static_hyperparameters, Mapping):
            raise InvalidConfigError(f"{where}: an object of names to strings")
        for key, value in self.extra_static_hyperparameters.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise InvalidConfigError(f"{where}: strings to strings (got {key!r}: {value!r})")
            if key in _OWN_KEYS:
                raise InvalidConfigError(f"{where}.{key}: set it with the pipeline key '{key}'")
            if key not in LINEAR_LEARNER_HYPERPARAMETERS:
                raise InvalidConfigError(
                    f"{where}.{key}: not a Linear Learner hyperparameter "
                    "(see the algorithm's documented hyperparameters)"
                )

    def _validate_registry(self) -> None:
        if self.approval not in APPROVAL_MODES:
            raise InvalidConfigError(f"approval: one of {list(APPROVAL_MODES)}")
        _check_int("approval_timeout_minutes", self.approval_timeout_minutes, 1, 7 * 24 * 60)
        parse_rollout(self.rollout)

    @property
    def model_package_group(self) -> str:
        """The registry's name when no stack names it (tests, tools); a stack
        uses its own, :func:`pipeline_core.names.model_package_group_name`,
        handed to the Lambdas as ``MODEL_PACKAGE_GROUP``."""
        return f"{self.name_prefix}-models"

    def _validate_lifecycle(self, transform_role: Role | None) -> None:
        """Endpoint defaults and the cost caps (the defaults must respect the caps)."""
        parse_endpoint_defaults(self.endpoint)
        _check_instance("transform_instance_type", self.transform_instance_type, transform_role)
        if not self.allowed_instance_types or isinstance(self.allowed_instance_types, str):
            raise InvalidConfigError("allowed_instance_types: a non-empty list of ml.* types")
        for value in self.allowed_instance_types:
            _check_instance("allowed_instance_types", value)
        _check_int("max_jobs_limit", self.max_jobs_limit, 1, 500)
        _check_int("max_parallel_limit", self.max_parallel_limit, 1, 100)
        if self.max_jobs > self.max_jobs_limit:
            raise InvalidConfigError(
                f"max_jobs: {self.max_jobs} exceeds max_jobs_limit ({self.max_jobs_limit})"
            )
        if self.max_parallel_jobs > self.max_parallel_limit:
            raise InvalidConfigError(
                f"max_parallel_jobs: {self.max_parallel_jobs} exceeds max_parallel_limit "
                f"({self.max_parallel_limit})"
            )
        for key in ("training_instance_type", "endpoint_instance_type", "transform_instance_type"):
            if getattr(self, key) not in self.allowed_instance_types:
                raise InvalidConfigError(
                    f"{key}: {getattr(self, key)} is not in allowed_instance_types"
                )
        _check_int("spot_max_wait_seconds", self.spot_max_wait_seconds, 1, 2_419_200)
        if self.spot_max_wait_seconds < self.max_runtime_seconds:
            raise InvalidConfigError(
                "spot_max_wait_seconds: must be at least max_runtime_seconds "
                f"({self.max_runtime_seconds})"
            )

    # -- transport ------------------------------------------------------------

    def static_hyperparameters(self) -> dict[str, str]:
        """Hyperparameters fixed for every training job, as SageMaker strings."""
        static = {
            "feature_dim": str(self.feature_dim),
            "predictor_type": self.predictor_type,
        }
        static.update(self.extra_static_hyperparameters)
        return static

    def training_hyperparameters(self) -> dict[str, str]:
        """The tutorial's plain (untuned) training job hyperparameters."""
        return {**self.static_hyperparameters(), "mini_batch_size": str(self.mini_batch_size)}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ranges"] = [asdict(r) for r in self.ranges]
        data["extra_static_hyperparameters"] = dict(self.extra_static_hyperparameters)
        data["endpoint"] = dict(self.endpoint)
        data["allowed_instance_types"] = list(self.allowed_instance_types)
        data["rollout"] = dict(self.rollout)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, sagemaker_types: bool = True
    ) -> PipelineConfig:
        """Overlay ``data`` on the defaults and validate. Unknown keys are errors."""
        if not isinstance(data, Mapping):
            raise InvalidConfigError("pipeline config must be an object")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidConfigError(f"unknown pipeline config keys: {unknown}")
        values = dict(data)
        if "ranges" in values:
            values["ranges"] = tuple(_parse_range(r) for r in values["ranges"])
        if "extra_static_hyperparameters" in values:
            values["extra_static_hyperparameters"] = dict(values["extra_static_hyperparameters"])
        if "endpoint" in values:
            # A partial object overlays the defaults.
            if not isinstance(values["endpoint"], Mapping):
                raise InvalidConfigError("endpoint: must be an object")
            values["endpoint"] = {**ENDPOINT_DEFAULTS, **values["endpoint"]}
        if "rollout" in values:
            values["rollout"] = parse_rollout(values["rollout"])
        if "allowed_instance_types" in values:
            if not isinstance(values["allowed_instance_types"], list | tuple):
                raise InvalidConfigError("allowed_instance_types: must be a list")
            values["allowed_instance_types"] = tuple(values["allowed_instance_types"])
        try:
            config = replace(cls(), **values)
        except TypeError as e:  # pragma: no cover - guarded by the key check
            raise InvalidConfigError(str(e)) from e
        return config.validate(sagemaker_types=sagemaker_types)

    @classmethod
    def from_json(cls, text: str, *, sagemaker_types: bool = True) -> PipelineConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InvalidConfigError(f"pipeline config is not JSON: {e}") from e
        return cls.from_mapping(data, sagemaker_types=sagemaker_types)


def _parse_range(raw: Any) -> ParameterRange:
    if isinstance(raw, ParameterRange):
        return raw
    if not isinstance(raw, Mapping):
        raise InvalidConfigError("ranges: each range must be an object")
    allowed = {"name", "kind", "min_value", "max_value", "scaling"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise InvalidConfigError(f"ranges: unknown keys {unknown}")
    try:
        return ParameterRange(
            name=raw["name"],
            kind=raw["kind"],
            min_value=raw["min_value"],
            max_value=raw["max_value"],
            scaling=raw.get("scaling", "Auto"),
        )
    except KeyError as e:
        raise InvalidConfigError(f"ranges: missing key {e}") from e


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidConfigError(f"{name}: must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise InvalidConfigError(f"{name}: {value} is outside [{lo}, {hi}]")


def _check_instance(name: str, value: Any, role: Role | None = None) -> None:
    if not isinstance(value, str) or not _INSTANCE_TYPE.match(value):
        raise InvalidConfigError(f"{name}: '{value}' is not a SageMaker instance type (ml.*)")
    why = refusal(role, value) if role is not None else None
    if why is not None:
        raise InvalidConfigError(f"{name}: {why}")


DEFAULTS = PipelineConfig().validate(sagemaker_types=False)

#: Environment variable carrying the JSON config into every Lambda.
CONFIG_ENV = "PIPELINE_CONFIG"

#: Set to "1" by the local run's synth (local/account/synth.py) for ``app.py``:
#: cdk-nag reads the template and changes nothing in it, so the local run
#: skips its checks (and, with ``CDK_VALIDATION=false``, the CDK's built-in
#: CloudFormation validation); `make synth`, `cdk deploy` and the tests run them.
SKIP_NAG_ENV = "MNIST_LL_SKIP_NAG"
