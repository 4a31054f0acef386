"""Each run deletes what it created once it no longer serves.

Bounded per run, with no listing: a run knows what it made and what it
replaced, so every call below names its resource.

- :func:`retire_superseded` (the endpoint is InService on our config): the
  config this run replaced (``$.deploy.previous_config``, read from
  DescribeEndpoint before the update, or the config of a Failed endpoint that
  was deleted and created anew) and that config's models; only if the config
  carries our stack tag and the endpoint's tag. One DescribeEndpointConfig, one
  ListTags and one delete per config and model.
- :func:`discard_unserved` (the update was rolled back): this run's own
  config and model, which never served; the serving config is untouched.
- :func:`retire_transform_model` (mode ``none``, the transform job ended):
  the model StartTransform created for the job.

Best effort: a failed delete is logged and the run carries on (the endpoint's
TTL and the stack's cleanup remove what is left). "Not found" counts as done,
so a retried step repeats safely.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from pipeline_core.awserrors import is_not_found
from pipeline_core.names import ENDPOINT_TAG_KEY, STACK_TAG_KEY, tag_value, tags_to_dict

Log = Callable[[str], None]
Retired = list[dict[str, str]]


def _quiet(_message: str) -> None:
    pass


#: Kind -> the Delete call's name parameter.
_PARAM = {"endpoint_config": "EndpointConfigName", "model": "ModelName"}
#: (kind, name, the client's Delete call for it)
Item = tuple[str, str, Callable[..., Any]]


def _delete(kind: str, name: str, call: Callable[..., Any], log: Log) -> bool:
    """Delete one endpoint config or model; True if it is gone afterwards."""
    try:
        call(**{_PARAM[kind]: name})
    except ClientError as e:
        if not is_not_found(e):
            log(f"cannot delete {kind} {name}: {e}")
            return False
    return True


def _delete_all(items: list[Item], log: Log) -> Retired:
    """Configs first: a model may not go while a config still names it."""
    ordered = sorted(items, key=lambda item: item[0] != "endpoint_config")
    return [{"kind": k, "name": n} for k, n, call in ordered if _delete(k, n, call, log)]


def retire_superseded(
    deploy_result: dict[str, Any], sm: Any, *, stack_tag: str, log: Log = _quiet
) -> Retired:
    """Delete the config this run superseded and its models (see the module doc)."""
    previous = deploy_result.get("previous_config")
    if not previous or previous == deploy_result.get("endpoint_config_name"):
        return []
    try:
        config = sm.describe_endpoint_config(EndpointConfigName=str(previous))
        tags = tags_to_dict(sm.list_tags(ResourceArn=config["EndpointConfigArn"]).get("Tags"))
    except ClientError as e:
        if not is_not_found(e):
            log(f"cannot read the superseded config {previous}: {e}")
        return []
    endpoint = str(deploy_result["endpoint_name"])
    if (tags.get(STACK_TAG_KEY), tags.get(ENDPOINT_TAG_KEY)) != (
        tag_value(stack_tag),
        tag_value(endpoint),
    ):
        log(f"config {previous} is not this stack's config of {endpoint}; left alone")
        return []
    serving_model = deploy_result.get("model_name")
    models = {
        str(v["ModelName"])
        for v in config.get("ProductionVariants") or []
        if v.get("ModelName") and v.get("ModelName") != serving_model
    }
    items: list[Item] = [("endpoint_config", str(previous), sm.delete_endpoint_config)]
    items.extend(("model", m, sm.delete_model) for m in sorted(models))
    return _delete_all(items, log)


def discard_unserved(
    deploy_result: dict[str, Any], *, serving_config: str | None, sm: Any, log: Log = _quiet
) -> Retired:
    """The update was rolled back: delete this run's config and model (never served)."""
    ours = str(deploy_result["endpoint_config_name"])
    if serving_config == ours:
        return []
    model = str(deploy_result["model_name"])
    items: list[Item] = [
        ("endpoint_config", ours, sm.delete_endpoint_config),
        ("model", model, sm.delete_model),
    ]
    return _delete_all(items, log)


def retire_transform_model(deploy_result: dict[str, Any], sm: Any, *, log: Log = _quiet) -> Retired:
    """The transform job ended: delete the model StartTransform created for it."""
    model = deploy_result.get("model_name")
    if not model:
        return []
    return _delete_all([("model", str(model), sm.delete_model)], log)
