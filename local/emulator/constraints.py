"""The constraints AWS documents for the SageMaker calls this project makes,
beyond what the service model's shapes say (:mod:`local.emulator.validation`).

Each rule refuses a request the way SageMaker refuses it: the error code AWS
answers (``ValidationException``, ``ResourceNotFound``) and, where AWS's
message is known, its wording. They run after the shape checks, before the
operation; ``docs/SAGEMAKER_CONSTRAINTS.md`` lists each one with the sentence
of the documentation it comes from and the test that proves it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from local.emulator.channels import no_objects_message
from local.emulator.errors import ServiceError
from local.emulator.state import ServiceState

Params = Mapping[str, Any]
Rule = Callable[[ServiceState, Params], None]

RESOURCE_NOT_FOUND = "Requested resource not found."


def _invalid(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


# -- tags --------------------------------------------------------------------------


def unique_tag_keys(_sm: ServiceState, p: Params) -> None:
    """ "Tag keys must be unique per resource." (every Tag's Key)."""
    keys = [str(t.get("Key")) for t in p.get("Tags") or []]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise _invalid(
            f"Duplicate tag keys {repeated} in the request: tag keys must be unique per resource."
        )


def group_versions_take_no_tags(_sm: ServiceState, p: Params) -> None:
    """CreateModelPackage: a version uses its group's tags; it cannot take its own."""
    if p.get("ModelPackageGroupName") and p.get("Tags"):
        raise _invalid(
            "Tags cannot be supplied with ModelPackageGroupName: a model package that "
            "belongs to a model package group uses the tags associated with the group."
        )


def versions_have_their_groups_tags(sm: ServiceState, p: Params) -> None:
    """AddTags, DeleteTags: a registered version has its group's tags (ListTags
    answers them) and cannot have its own, as CreateModelPackage refuses them."""
    arn = str(p["ResourceArn"])
    if sm.registry.is_version(arn):
        raise _invalid(
            f"{arn} belongs to a model package group and uses the tags associated "
            "with the group: tag the group instead."
        )


# -- endpoints: serverless exclusions ------------------------------------------------


def is_serverless(variants: Sequence[Mapping[str, Any]]) -> bool:
    """True if the endpoint config's variants are serverless."""
    return any(v.get("ServerlessConfig") for v in variants)


def _serverless_exclusions(sm: ServiceState, config: Params) -> None:
    """The developer guide's feature exclusions of Serverless Inference that
    a request can show: network isolation, VPC configuration, data capture and
    multiple production variants."""
    variants: list[Mapping[str, Any]] = list(config.get("ProductionVariants") or [])
    if not is_serverless(variants):
        return
    if len(variants) > 1:
        raise _invalid(
            "Serverless Inference does not support multiple production variants: an "
            "endpoint configuration with a ServerlessConfig must have exactly one."
        )
    if config.get("DataCaptureConfig"):
        raise _invalid("DataCaptureConfig is not supported for serverless endpoints.")
    with sm._lock:
        model = sm._models.get(str(variants[0].get("ModelName")))
    request: Mapping[str, Any] = (model or {}).get("request", {})
    if request.get("EnableNetworkIsolation"):
        raise _invalid(
            f'Model "{model and model["arn"]}" has EnableNetworkIsolation set to true: '
            "network isolation is not supported for serverless endpoints."
        )
    if request.get("VpcConfig"):
        raise _invalid(
            f'Model "{model and model["arn"]}" has a VpcConfig: VPC configuration is '
            "not supported for serverless endpoints."
        )


def endpoint_config_rules(sm: ServiceState, p: Params) -> None:
    _serverless_exclusions(sm, p)


def _config_request(sm: ServiceState, name: str) -> Mapping[str, Any] | None:
    with sm._lock:
        config = sm._configs.get(name)
    return None if config is None else config["request"]


# -- endpoints: deployment guardrails --------------------------------------------------


def _capacity(size: Mapping[str, Any] | None, instances: int) -> float | None:
    """A CapacitySize as a percentage of ``instances`` (None: not given)."""
    if not size:
        return None
    value = float(size.get("Value", 0))
    if size.get("Type") == "INSTANCE_COUNT":
        return 100.0 * value / max(instances, 1)
    return value


def _sizes(policy: str, name: str, size: Any, instances: int, lo: float, hi: float) -> None:
    percent = _capacity(size, instances)
    if percent is not None and not lo <= percent <= hi:
        kind = "at most 50%" if lo == 0 else f"between {lo:g}% and {hi:g}%"
        raise _invalid(
            f"{policy}.{name} ({size.get('Type')} {size.get('Value')}) must be {kind} of the "
            f"variant's total instance count ({instances})."
        )


def _deployment_rules(
    deployment: Mapping[str, Any], new: Mapping[str, Any], old: Mapping[str, Any] | None
) -> None:
    """Deployment guardrails: one update policy, capacity sizes within their
    bounds, no guardrails on serverless endpoints, the same variant names."""
    variants: list[Mapping[str, Any]] = list(new.get("ProductionVariants") or [])
    old_variants: list[Mapping[str, Any]] = list((old or {}).get("ProductionVariants") or [])
    if is_serverless(variants) or is_serverless(old_variants):
        raise _invalid(
            "DeploymentConfig is not supported for serverless endpoints: deployment "
            "guardrails are available for endpoints on instances only."
        )
    blue_green = deployment.get("BlueGreenUpdatePolicy")
    rolling = deployment.get("RollingUpdatePolicy")
    if blue_green and rolling:
        raise _invalid(
            "Only one update policy may be used in the deployment configuration: "
            "BlueGreenUpdatePolicy or RollingUpdatePolicy."
        )
    if old is not None and sorted(v["VariantName"] for v in variants) != sorted(
        v["VariantName"] for v in old_variants
    ):
        raise _invalid(
            "When doing a blue/green or rolling deployment, the new endpoint configuration "
            "must have the same variant names as the old endpoint configuration."
        )
    for variant in variants:
        count = int(variant.get("InitialInstanceCount") or 1)
        routing = (blue_green or {}).get("TrafficRoutingConfiguration") or {}
        kind = routing.get("Type")
        where = "TrafficRoutingConfiguration"
        if kind == "CANARY":
            if not routing.get("CanarySize"):
                raise _invalid(f"{where}.CanarySize is required for traffic routing CANARY.")
            _sizes(where, "CanarySize", routing["CanarySize"], count, 0, 50)
        if kind == "LINEAR":
            if not routing.get("LinearStepSize"):
                raise _invalid(f"{where}.LinearStepSize is required for traffic routing LINEAR.")
            _sizes(where, "LinearStepSize", routing["LinearStepSize"], count, 10, 50)
        if rolling:
            _sizes("RollingUpdatePolicy", "MaximumBatchSize", rolling.get("MaximumBatchSize"),
                   count, 5, 50)  # fmt: skip


def create_endpoint_rules(sm: ServiceState, p: Params) -> None:
    name = str(p["EndpointName"])
    with sm._lock:
        taken = [n for n in sm._endpoints if n.lower() == name.lower()]
    if taken:  # "The name is case-insensitive in CreateEndpoint"
        raise _invalid(f'Cannot create already existing endpoint "{sm.arn("endpoint", name)}".')
    config = _config_request(sm, str(p["EndpointConfigName"]))
    if config is None:
        return  # the operation answers "Could not find endpoint configuration"
    _serverless_exclusions(sm, config)
    if p.get("DeploymentConfig"):
        _deployment_rules(p["DeploymentConfig"], config, None)


def update_endpoint_rules(sm: ServiceState, p: Params) -> None:
    with sm._lock:
        endpoint = sm._endpoints.get(str(p["EndpointName"]))
    new = _config_request(sm, str(p["EndpointConfigName"]))
    if endpoint is None or new is None:
        return  # the operation answers "Could not find ..."
    _serverless_exclusions(sm, new)
    old = _config_request(sm, endpoint.config_name)
    serving_serverless = (
        is_serverless(old.get("ProductionVariants") or []) if old is not None else None
    )
    if serving_serverless is False and is_serverless(new.get("ProductionVariants") or []):
        raise _invalid(
            f'Cannot update endpoint "{endpoint.arn}" from an instance-based endpoint '
            f'configuration to the serverless endpoint configuration "{p["EndpointConfigName"]}": '
            "an instance-based endpoint cannot be converted to a serverless endpoint."
        )
    if p.get("DeploymentConfig"):
        _deployment_rules(p["DeploymentConfig"], new, old)


# -- jobs --------------------------------------------------------------------------------


def _not_in_progress(kind: str, status: str | None) -> None:
    if status is not None and status != "InProgress":
        raise _invalid(f"The request was rejected because the {kind} is in status {status}.")


def stop_training_job(sm: ServiceState, p: Params) -> None:
    name = str(p["TrainingJobName"])
    standalone = sm.training_jobs.jobs.get(name)
    with sm._lock:
        tuned = sm._training.get(name) or sm._running_training_job(name)
    if standalone is not None:
        status = str(standalone["job"].status)
    elif tuned is not None:
        status = str(tuned["summary"].get("TrainingJobStatus", "Completed"))
    else:
        raise ServiceError("ValidationException", RESOURCE_NOT_FOUND)
    _not_in_progress("training job", status)


def stop_tuning_job(sm: ServiceState, p: Params) -> None:
    with sm._lock:
        record = sm._tuning.get(str(p["HyperParameterTuningJobName"]))
    _not_in_progress("hyperparameter tuning job", None if record is None else str(record["status"]))


def stop_transform_job(sm: ServiceState, p: Params) -> None:
    with sm._lock:
        record = sm._transforms.get(str(p["TransformJobName"]))
    _not_in_progress("transform job", None if record is None else str(record["status"]))


def _channels_have_objects(sm: ServiceState, channels: Any, role_arn: str) -> None:
    """An ``S3Prefix`` channel with no object under it is refused at the call."""
    if sm.s3 is None:
        return
    for channel in channels or []:
        source = (channel.get("DataSource") or {}).get("S3DataSource") or {}
        uri = str(source.get("S3Uri", ""))
        if source.get("S3DataType", "S3Prefix") != "S3Prefix" or not uri.startswith("s3://"):
            continue
        bucket, _, prefix = uri[5:].partition("/")
        try:
            found = sm.s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        except Exception:  # no such bucket: the same answer
            found = {}
        if not found.get("Contents"):
            raise _invalid(no_objects_message(uri, role_arn))


def _stopping_condition(stopping: Mapping[str, Any] | None, where: str) -> None:
    stopping = stopping or {}
    wait, runtime = stopping.get("MaxWaitTimeInSeconds"), stopping.get("MaxRuntimeInSeconds")
    if wait is not None and runtime is not None and wait < runtime:
        raise _invalid(
            f"{where}.MaxWaitTimeInSeconds ({wait}) must be equal to or greater than "
            f"MaxRuntimeInSeconds ({runtime})."
        )


def create_training_job(sm: ServiceState, p: Params) -> None:
    spec = p.get("AlgorithmSpecification") or {}
    if bool(spec.get("TrainingImage")) == bool(spec.get("AlgorithmName")):
        raise _invalid(
            "You must specify either AlgorithmSpecification.AlgorithmName or "
            "AlgorithmSpecification.TrainingImage, and not both."
        )
    _stopping_condition(p.get("StoppingCondition"), "StoppingCondition")
    _channels_have_objects(sm, p.get("InputDataConfig"), str(p.get("RoleArn", "")))


def _scaling(ranges: Mapping[str, Any]) -> None:
    for kind in ("IntegerParameterRanges", "ContinuousParameterRanges"):
        for r in ranges.get(kind) or []:
            low, high = float(r["MinValue"]), float(r["MaxValue"])
            scaling = r.get("ScalingType", "Auto")
            if scaling == "Logarithmic" and low <= 0:
                raise _invalid(
                    f"Hyperparameter {r['Name']}: Logarithmic scaling works only for ranges "
                    f"that have only values greater than 0, got [{r['MinValue']}, "
                    f"{r['MaxValue']}]."
                )
            if scaling == "ReverseLogarithmic" and not (0 <= low and high < 1):
                raise _invalid(
                    f"Hyperparameter {r['Name']}: ReverseLogarithmic scaling works only for "
                    f"ranges entirely within 0<=x<1.0, got [{r['MinValue']}, {r['MaxValue']}]."
                )


def create_tuning_job(_sm: ServiceState, p: Params) -> None:
    config = p.get("HyperParameterTuningJobConfig") or {}
    _scaling(config.get("ParameterRanges") or {})
    hyperband = config.get("Strategy") == "Hyperband"
    if config.get("StrategyConfig") and not hyperband:
        raise _invalid("StrategyConfig should be provided only if the strategy is Hyperband.")
    if hyperband and config.get("TrainingJobEarlyStoppingType", "Off") != "Off":
        raise _invalid("TrainingJobEarlyStoppingType must be OFF to use Hyperband.")
    definition = p.get("TrainingJobDefinition") or {}
    _stopping_condition(definition.get("StoppingCondition"), "TrainingJobDefinition")


def create_transform_job(_sm: ServiceState, p: Params) -> None:
    payload = p.get("MaxPayloadInMB")
    concurrent = p.get("MaxConcurrentTransforms")
    if payload is not None and payload > 100:
        raise _invalid(f"MaxPayloadInMB ({payload}) cannot be greater than 100 MB.")
    if payload is not None and concurrent and concurrent * payload > 100:
        raise _invalid(
            f"MaxConcurrentTransforms * MaxPayloadInMB ({concurrent} * {payload}) "
            "cannot exceed 100 MB."
        )
    split = (p.get("TransformInput") or {}).get("SplitType", "None")
    if p.get("BatchStrategy") and split == "None":
        raise _invalid(
            "To enable the batch strategy, you must set the SplitType property to Line, "
            "RecordIO, or TFRecord."
        )


_TAGGED = (
    "AddTags",
    "CreateEndpoint",
    "CreateEndpointConfig",
    "CreateHyperParameterTuningJob",
    "CreateModel",
    "CreateModelPackage",
    "CreateModelPackageGroup",
    "CreateTrainingJob",
    "CreateTransformJob",
)
RULES: dict[str, tuple[Rule, ...]] = {op: (unique_tag_keys,) for op in _TAGGED}
for _op, _rule in (
    ("CreateModelPackage", group_versions_take_no_tags),
    ("AddTags", versions_have_their_groups_tags),
    ("DeleteTags", versions_have_their_groups_tags),
    ("CreateEndpointConfig", endpoint_config_rules),
    ("CreateEndpoint", create_endpoint_rules),
    ("UpdateEndpoint", update_endpoint_rules),
    ("StopTrainingJob", stop_training_job),
    ("StopHyperParameterTuningJob", stop_tuning_job),
    ("StopTransformJob", stop_transform_job),
    ("CreateTrainingJob", create_training_job),
    ("CreateHyperParameterTuningJob", create_tuning_job),
    ("CreateTransformJob", create_transform_job),
):
    RULES[_op] = (*RULES.get(_op, ()), _rule)


def check(sm: ServiceState, operation: str, params: Params) -> None:
    """Raise :class:`ServiceError` if ``params`` break a documented constraint."""
    for rule in RULES.get(operation, ()):
        rule(sm, params)
