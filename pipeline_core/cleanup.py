"""Stack teardown: remove what executions created outside CloudFormation.

Endpoints, endpoint configs and models made by executions are not stack
resources, so ``cdk destroy`` would leave them billing. The cleanup custom
resource deletes exactly those named ``<name_prefix>-*`` and tagged
``mnist-ll:stack=<STACK_TAG>`` (never untagged or foreign ones) and stops our
in-progress tuning jobs. Best effort
within a time budget: each failure is logged and skipped, nothing raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from pipeline_core.awserrors import is_not_found, is_transient
from pipeline_core.names import STACK_TAG_KEY, tag_value, tags_to_dict

# (kind, list op, list key, name field, arn field, delete op, delete param)
_KINDS: tuple[tuple[str, str, str, str, str, str, str], ...] = (
    ("endpoint", "list_endpoints", "Endpoints", "EndpointName", "EndpointArn",
     "delete_endpoint", "EndpointName"),
    ("endpoint_config", "list_endpoint_configs", "EndpointConfigs", "EndpointConfigName",
     "EndpointConfigArn", "delete_endpoint_config", "EndpointConfigName"),
    ("model", "list_models", "Models", "ModelName", "ModelArn", "delete_model", "ModelName"),
    ("tuning_job", "list_hyper_parameter_tuning_jobs", "HyperParameterTuningJobSummaries",
     "HyperParameterTuningJobName", "HyperParameterTuningJobArn",
     "stop_hyper_parameter_tuning_job", "HyperParameterTuningJobName"),
)  # fmt: skip


def cleanup_stack_resources(
    sm: Any,
    *,
    stack_tag: str,
    name_prefix: str,
    remaining_seconds: Callable[[], float],
    log: Callable[[str], None] = lambda _msg: None,
    margin_seconds: float = 10.0,
) -> dict[str, Any]:
    """Delete our endpoints, then configs, then models; stop our running tuning jobs.

    Only names starting with ``<name_prefix>-`` are listed (``NameContains``) and
    tag-checked: every name an execution creates has that prefix, and foreign
    resources are never even looked at. Returns ``{"deleted": {kind: [names]},
    "failed": [...], "skipped_foreign": n, "out_of_time": bool}``.
    """
    wanted = tag_value(stack_tag)
    ours = f"{name_prefix}-"
    deleted: dict[str, list[str]] = {k[0]: [] for k in _KINDS}
    failed: list[dict[str, Any]] = []
    foreign = 0
    out_of_time = False

    def time_left() -> bool:
        nonlocal out_of_time
        if remaining_seconds() < margin_seconds:
            out_of_time = True
        return not out_of_time

    def failure(kind: str, name: str, what: str, e: BaseException) -> None:
        log(f"cleanup: cannot {what} {kind} {name}: {e!r}")
        failed.append({"kind": kind, "name": name, "error": repr(e), "transient": is_transient(e)})

    for kind, list_op, list_key, name_key, arn_key, delete_op, param in _KINDS:
        if not time_left():
            break
        list_args: dict[str, Any] = {"NameContains": name_prefix}
        if kind == "tuning_job":
            list_args["StatusEquals"] = "InProgress"
        try:
            items = [
                item
                for page in sm.get_paginator(list_op).paginate(**list_args)
                for item in page.get(list_key, [])
            ]
        except Exception as e:  # never fail a stack deletion over one listing
            failure(kind, "*", "list", e)
            continue
        for item in items:
            name, arn = str(item[name_key]), str(item[arn_key])
            if not name.startswith(ours):  # NameContains also matches mid-name
                continue
            if not time_left():
                break
            try:
                tags = tags_to_dict(sm.list_tags(ResourceArn=arn).get("Tags"))
            except Exception as e:
                failure(kind, name, "read the tags of", e)
                continue
            if tags.get(STACK_TAG_KEY) != wanted:
                foreign += 1
                continue
            try:
                getattr(sm, delete_op)(**{param: name})
            except ClientError as e:
                if not is_not_found(e):
                    failure(kind, name, "remove", e)
                    continue
            except Exception as e:  # never fail a stack deletion over one resource
                failure(kind, name, "remove", e)
                continue
            deleted[kind].append(name)
    if out_of_time:
        log("cleanup: stopped early, the time budget ran out")
    return {
        "deleted": deleted,
        "failed": failed,
        "skipped_foreign": foreign,
        "out_of_time": out_of_time,
    }


def delete_endpoint_resources(
    sm: Any, *, endpoint_name: str, stack_tag: str, log: Callable[[str], None] = lambda _m: None
) -> dict[str, Any]:
    """Delete one endpoint of this stack, the config it serves and that config's
    models (the endpoint TTL). Returns ``{"endpoint", "deleted": [{kind, name}],
    "skipped": reason or None}``; an endpoint still Creating/Updating raises
    EndpointBusyError (EndpointTtl re-arms the TTL: pipeline_core.ttl.expire_endpoint)."""
    from pipeline_core.awserrors import named_error
    from pipeline_core.errors import EndpointBusyError

    out: dict[str, Any] = {"endpoint": endpoint_name, "deleted": [], "skipped": None}
    try:
        described = sm.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as e:
        if is_not_found(e):
            out["skipped"] = "the endpoint does not exist (already deleted)"
            return out
        raise named_error(e, "DescribeEndpoint") from e
    tags = tags_to_dict(sm.list_tags(ResourceArn=described["EndpointArn"]).get("Tags"))
    if tags.get(STACK_TAG_KEY) != tag_value(stack_tag):
        out["skipped"] = f"not tagged {STACK_TAG_KEY}={stack_tag}; left alone"
        return out
    if described["EndpointStatus"] in ("Creating", "Updating", "SystemUpdating", "RollingBack"):
        raise EndpointBusyError(
            f"endpoint {endpoint_name} is {described['EndpointStatus']}; retry the deletion later"
        )
    config_name = str(described.get("EndpointConfigName") or "")
    models: list[str] = []
    if config_name:
        try:
            config = sm.describe_endpoint_config(EndpointConfigName=config_name)
            models = [str(v["ModelName"]) for v in config.get("ProductionVariants", [])]
        except ClientError as e:
            if not is_not_found(e):
                raise named_error(e, "DescribeEndpointConfig") from e
    steps: list[tuple[str, str, Callable[..., Any], dict[str, str]]] = [
        ("endpoint", endpoint_name, sm.delete_endpoint, {"EndpointName": endpoint_name}),
    ]
    if config_name:
        steps.append(
            ("endpoint_config", config_name, sm.delete_endpoint_config,
             {"EndpointConfigName": config_name})
        )  # fmt: skip
    steps.extend(("model", m, sm.delete_model, {"ModelName": m}) for m in models)
    for kind, name, call, kwargs in steps:
        try:
            call(**kwargs)
        except ClientError as e:
            if not is_not_found(e):
                raise named_error(e, f"Delete {kind}") from e
            log(f"{kind} {name} was already gone")
            continue
        out["deleted"].append({"kind": kind, "name": name})
    return out
