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

from pipeline_core.awserrors import is_not_found
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
    failed: list[dict[str, str]] = []
    foreign = 0
    out_of_time = False

    def time_left() -> bool:
        nonlocal out_of_time
        if remaining_seconds() < margin_seconds:
            out_of_time = True
        return not out_of_time

    def failure(kind: str, name: str, what: str, e: BaseException) -> None:
        log(f"cleanup: cannot {what} {kind} {name}: {e!r}")
        failed.append({"kind": kind, "name": name, "error": repr(e)})

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
