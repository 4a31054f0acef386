"""Deploy planner: model + endpoint config, then create or update the endpoint.

A pure function decides what to call (:func:`plan_deploy`); :func:`execute_deploy`
runs the plan on an injected SageMaker client.

Blue/green: an update points the stable endpoint at a new config and the old
config keeps serving until the new one is InService; only then is the config
it superseded (``previous_config``) retired with its model
(pipeline_core.retire). An update in place keeps the endpoint's kind
(:func:`check_same_kind`): instance-based and serverless do not convert.

Idempotent: a retry finds its model/config already there and carries on (only
if their tags show this stack, deployment and execution: anything else by that
name is a :class:`NameCollisionError` and is left alone); if
the endpoint already runs (or is moving to) our config, nothing is re-sent. A
``Failed`` endpoint (left by an earlier failed create) allows only
DeleteEndpoint, so it is deleted and created anew.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from pipeline_core.adopt import adopt_or_collide
from pipeline_core.awserrors import is_already_exists, is_not_found, named_error
from pipeline_core.config import PipelineConfig, has_local_storage
from pipeline_core.errors import (
    EndpointBusyError,
    EndpointDeploymentFailedError,
    InvalidInputError,
    TuningJobFailedError,
)
from pipeline_core.inputs import RunSpec
from pipeline_core.names import (
    ENDPOINT_TAG_KEY,
    STACK_TAG_KEY,
    tag_value,
    tags_to_dict,
)

VARIANT_NAME = "AllTraffic"
BUSY_STATES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})

Action = Literal["create", "update"]


@dataclass(frozen=True)
class DeployPlan:
    endpoint_name: str
    action: Action
    previous_config: str | None
    model_request: dict[str, Any]
    endpoint_config_request: dict[str, Any]
    #: CreateEndpoint or UpdateEndpoint kwargs; None when the endpoint already
    #: runs or is moving to our config (a retry).
    endpoint_request: dict[str, Any] | None
    #: Delete a Failed endpoint (and wait for it to go) before creating.
    delete_endpoint_first: bool = False
    #: The endpoint is already being deleted: wait for it before creating.
    wait_for_deletion: bool = False
    #: Endpoint mode: realtime or serverless.
    mode: str = "realtime"

    @property
    def model_name(self) -> str:
        return str(self.model_request["ModelName"])

    @property
    def endpoint_config_name(self) -> str:
        return str(self.endpoint_config_request["EndpointConfigName"])

    def result(self) -> dict[str, Any]:
        """``$.deploy``."""
        return {
            "endpoint_name": self.endpoint_name,
            "endpoint_config_name": self.endpoint_config_name,
            "model_name": self.model_name,
            "action": self.action,
            "previous_config": self.previous_config,
            "model_data_url": self.model_request["PrimaryContainer"]["ModelDataUrl"],
            "mode": self.mode,
        }


def deploy_tags(run: RunSpec) -> list[dict[str, str]]:
    """Run tags plus the endpoint tag (models and endpoint configs)."""
    return [*run.tag_list(), {"Key": ENDPOINT_TAG_KEY, "Value": tag_value(run.endpoint_name)}]


def build_model_request(
    run: RunSpec, tuning: dict[str, Any], *, image_uri: str, role_arn: str
) -> dict[str, Any]:
    best = tuning.get("best") or {}
    artifacts = best.get("model_artifacts")
    if not artifacts:
        raise TuningJobFailedError("no best training job with model artifacts to deploy")
    # A registered version brings its own image (its InferenceSpecification).
    image = str(best.get("image") or image_uri)
    return {
        "ModelName": run.names.model,
        "PrimaryContainer": {"Image": image, "ModelDataUrl": str(artifacts)},
        "ExecutionRoleArn": role_arn,
        # Serverless Inference excludes network isolation (as it does VPC config,
        # data capture and more than one variant); realtime and transform keep it.
        "EnableNetworkIsolation": run.endpoint_mode != "serverless",
        "Tags": deploy_tags(run),
    }


def build_endpoint_config_request(
    run: RunSpec, config: PipelineConfig, *, kms_key_arn: str | None = None
) -> dict[str, Any]:
    """With ``kms_key_arn`` the key encrypts the endpoint's ML storage volume
    (not possible, nor needed, on instance types with local storage)."""
    variant: dict[str, Any] = {"VariantName": VARIANT_NAME, "ModelName": run.names.model}
    if run.endpoint_mode == "serverless":
        # No instances: SageMaker bills per request; no KmsKeyId for serverless.
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": run.serverless_memory_mb,
            "MaxConcurrency": run.serverless_max_concurrency,
        }
    else:
        variant.update(
            {
                "InitialInstanceCount": run.endpoint_instance_count,
                "InstanceType": run.endpoint_instance_type,
                "InitialVariantWeight": 1.0,
            }
        )
    request: dict[str, Any] = {
        "EndpointConfigName": run.names.endpoint_config,
        "ProductionVariants": [variant],
        "Tags": deploy_tags(run),
    }
    serverless = run.endpoint_mode == "serverless"
    if kms_key_arn and not serverless and not has_local_storage(run.endpoint_instance_type):
        request["KmsKeyId"] = kms_key_arn
    return request


def plan_deploy(
    run: RunSpec,
    config: PipelineConfig,
    tuning: dict[str, Any],
    *,
    existing: dict[str, Any] | None,
    existing_tags: dict[str, str] | None,
    stack_tag: str,
    image_uri: str,
    role_arn: str,
    kms_key_arn: str | None = None,
    deployment_config: dict[str, Any] | None = None,
) -> DeployPlan:
    """Decide create vs update from DescribeEndpoint (``existing``, None if absent).

    ``deployment_config`` (pipeline_core.rollout) makes an update blue/green
    with traffic shifting and auto-rollback."""
    model = build_model_request(run, tuning, image_uri=image_uri, role_arn=role_arn)
    cfg = build_endpoint_config_request(run, config, kms_key_arn=kms_key_arn)
    ours = run.names.endpoint_config
    name = run.endpoint_name
    create = {"EndpointName": name, "EndpointConfigName": ours, "Tags": run.tag_list()}

    def plan(action: Action, previous: str | None, request: dict[str, Any] | None,
             **flags: bool) -> DeployPlan:  # fmt: skip
        return DeployPlan(
            name, action, previous, model, cfg, request, mode=run.endpoint_mode, **flags
        )

    if existing is None:
        return plan("create", None, create)
    if (existing_tags or {}).get(STACK_TAG_KEY) != tag_value(stack_tag):
        raise EndpointDeploymentFailedError(
            f"endpoint {name} exists but is not managed by this stack "
            f"(no tag {STACK_TAG_KEY}={stack_tag}); refusing to touch it"
        )
    status = str(existing.get("EndpointStatus"))
    current = existing.get("EndpointConfigName")
    pending = (existing.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    if status == "Failed":
        # Once ours serves, the failed endpoint's config and model are retired too.
        return plan("create", str(current) if current else None, create,
                    delete_endpoint_first=True)  # fmt: skip
    if status == "Deleting":
        return plan("create", None, create, wait_for_deletion=True)
    if current == ours and status == "Creating":
        return plan("create", None, None)
    if current == ours:  # InService on our config already: an earlier attempt did it
        return plan("update", None, None)
    if status in BUSY_STATES:
        if pending == ours:
            return plan("update", str(current) if current else None, None)
        raise EndpointBusyError(
            f"endpoint {name} is {status} (config {pending or current}); "
            "another deployment is in progress"
        )
    update: dict[str, Any] = {"EndpointName": name, "EndpointConfigName": ours}
    if deployment_config:
        update["DeploymentConfig"] = deployment_config
    return plan("update", str(current) if current else None, update)


#: Create call -> (kind, Describe call, its name parameter, its ARN field).
_DESCRIBE_FOR = {
    "CreateModel": ("model", "describe_model", "ModelName", "ModelArn"),
    "CreateEndpointConfig": (
        "endpoint config",
        "describe_endpoint_config",
        "EndpointConfigName",
        "EndpointConfigArn",
    ),
    "CreateEndpoint": ("endpoint", "describe_endpoint", "EndpointName", "EndpointArn"),
}


def _create_or_adopt(
    sm: Any, call: Callable[..., Any], action: str, request: dict[str, Any]
) -> None:
    try:
        call(**request)
        return
    except ClientError as e:
        if not is_already_exists(e):
            raise named_error(e, action) from e
    kind, describe, param, arn_field = _DESCRIBE_FOR[action]
    name = str(request[param])
    try:
        arn = str(getattr(sm, describe)(**{param: name})[arn_field])
    except ClientError as e:
        raise named_error(e, describe) from e
    adopt_or_collide(sm, kind, name, arn, list(request.get("Tags") or []))


def _describe_or_none(sm: Any, name: str) -> dict[str, Any] | None:
    try:
        described: dict[str, Any] = sm.describe_endpoint(EndpointName=name)
        return described
    except ClientError as e:
        if is_not_found(e):
            return None
        raise named_error(e, "DescribeEndpoint") from e


def _wait_until_gone(
    sm: Any, name: str, *, timeout: float, sleep: Callable[[float], None],
    clock: Callable[[], float], interval: float,
) -> None:  # fmt: skip
    deadline = clock() + timeout
    while _describe_or_none(sm, name) is not None:
        if clock() >= deadline:
            raise EndpointBusyError(f"endpoint {name} is still being deleted after {timeout:.0f}s")
        sleep(interval)


def endpoint_kind(config_description: dict[str, Any]) -> str:
    """``serverless`` or ``instance-based``, from DescribeEndpointConfig's variants."""
    variants = config_description.get("ProductionVariants") or []
    return "serverless" if any(v.get("ServerlessConfig") for v in variants) else "instance-based"


def _existing_kind(sm: Any, existing: dict[str, Any], config_name: str) -> str | None:
    """The kind of endpoint ``existing`` is (None: not knowable). Its config tells;
    if that config is gone, the endpoint's own variant summaries do."""
    try:
        return endpoint_kind(sm.describe_endpoint_config(EndpointConfigName=config_name))
    except ClientError as e:
        if not is_not_found(e):
            raise named_error(e, "DescribeEndpointConfig") from e
    summaries = existing.get("ProductionVariants") or []
    if not summaries:
        return None
    serverless = any(
        v.get("CurrentServerlessConfig") or v.get("DesiredServerlessConfig") for v in summaries
    )
    return "serverless" if serverless else "instance-based"


def check_same_kind(run: RunSpec, plan: DeployPlan, sm: Any, existing: dict[str, Any]) -> None:
    """An update in place must keep the endpoint's kind: SageMaker cannot update an
    instance-based endpoint to a serverless config, nor a serverless one back.
    Raises InvalidInputError before anything is created or sent."""
    if plan.action != "update" or plan.endpoint_request is None or not plan.previous_config:
        return
    kind = _existing_kind(sm, existing, plan.previous_config)
    _refuse_other_kind(run, plan.endpoint_name, plan.previous_config, kind)


#: Endpoints that Deploy deletes and recreates, so any kind may follow.
_RECREATED = frozenset({"Failed", "Deleting"})


def preflight_endpoint_kind(run: RunSpec, sm: Any) -> None:
    """ValidateInput's early look at the run's endpoint: a run of the other kind
    fails before any data is converted or any training job is paid for (Deploy
    checks again, as another run may have changed the endpoint meanwhile)."""
    if run.endpoint_mode not in ("realtime", "serverless"):
        return
    try:
        existing = sm.describe_endpoint(EndpointName=run.endpoint_name)
    except ClientError as e:
        if is_not_found(e):
            return
        raise named_error(e, "DescribeEndpoint") from e
    config = existing.get("EndpointConfigName")
    if not config or existing.get("EndpointStatus") in _RECREATED:
        return
    _refuse_other_kind(run, run.endpoint_name, str(config), _existing_kind(sm, existing, config))


def _refuse_other_kind(run: RunSpec, name: str, config: str, kind: str | None) -> None:
    wanted = "serverless" if run.endpoint_mode == "serverless" else "instance-based"
    if kind is None or kind == wanted:
        return
    raise InvalidInputError(
        f"endpoint.mode: {run.endpoint_mode!r} needs a {wanted} endpoint, but endpoint "
        f"{name} is {kind} (config {config}) and SageMaker cannot change "
        "an endpoint between instance-based and serverless in place. Either choose "
        "another endpoint_name for this run, or delete the endpoint "
        f"{name} (its TTL does, or DeleteEndpoint) and run again; nothing was changed"
    )


def execute_deploy(
    plan: DeployPlan,
    sm: Any,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    deletion_timeout: float = 240.0,
    deletion_interval: float = 5.0,
) -> dict[str, Any]:
    """Run ``plan``; returns ``$.deploy``."""
    _create_or_adopt(sm, sm.create_model, "CreateModel", plan.model_request)
    _create_or_adopt(
        sm, sm.create_endpoint_config, "CreateEndpointConfig", plan.endpoint_config_request
    )
    if plan.delete_endpoint_first:
        try:
            sm.delete_endpoint(EndpointName=plan.endpoint_name)
        except ClientError as e:
            if not is_not_found(e):
                raise named_error(e, "DeleteEndpoint") from e
    if plan.delete_endpoint_first or plan.wait_for_deletion:
        _wait_until_gone(
            sm, plan.endpoint_name, timeout=deletion_timeout, sleep=sleep, clock=clock,
            interval=deletion_interval,
        )  # fmt: skip
    if plan.endpoint_request is not None:
        request = plan.endpoint_request
        if plan.action == "create":
            # An "already exists" is adopted only if this execution created it.
            _create_or_adopt(sm, sm.create_endpoint, "CreateEndpoint", request)
        else:
            try:
                sm.update_endpoint(**request)
            except ClientError as e:
                raise named_error(e, "UpdateEndpoint") from e
    return plan.result()


def deploy(
    run: RunSpec,
    config: PipelineConfig,
    tuning: dict[str, Any],
    sm: Any,
    *,
    stack_tag: str,
    image_uri: str,
    role_arn: str,
    kms_key_arn: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    deletion_timeout: float = 240.0,
    deployment_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Describe the endpoint, plan, execute. Returns ``$.deploy``."""
    existing = _describe_or_none(sm, run.endpoint_name)
    tags: dict[str, str] | None = None
    if existing is not None:
        try:
            tags = tags_to_dict(sm.list_tags(ResourceArn=existing["EndpointArn"]).get("Tags"))
        except ClientError as e:
            raise named_error(e, "ListTags") from e
    plan = plan_deploy(
        run,
        config,
        tuning,
        existing=existing,
        existing_tags=tags,
        stack_tag=stack_tag,
        image_uri=image_uri,
        role_arn=role_arn,
        kms_key_arn=kms_key_arn,
        deployment_config=deployment_config,
    )
    if existing is not None:
        check_same_kind(run, plan, sm, existing)
    return execute_deploy(plan, sm, sleep=sleep, deletion_timeout=deletion_timeout)
