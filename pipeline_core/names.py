"""Deterministic SageMaker resource names and tags, derived from the execution name.

A retried Lambda must find the job it already started, so names are a pure
function of ``$$.Execution.Name`` (never timestamps or uuid4). Step Functions
allows up to 80 characters including ``_``, ``.`` and non-ASCII letters;
SageMaker wants ``^[a-zA-Z0-9](-*[a-zA-Z0-9])*`` and at most 32 characters for
a tuning job (its training jobs append ``-NNN-xxxxxxxx``) or 63 otherwise. A
readable slug of the execution name is kept when it fits, and a hash of the
*full* name keeps names of distinct executions distinct.

The hash also covers the deployment's *salt* (the UUID of the CloudFormation
stack id, new on every create of the stack), so two stacks in one account, or
one stack destroyed and deployed again, never derive the same names from the
same execution name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from typing import Any

STACK_TAG_KEY = "mnist-ll:stack"
EXECUTION_TAG_KEY = "mnist-ll:execution"
#: Extra tag on models and endpoint configs: the endpoint they were made for,
#: so retiring superseded configs never touches another endpoint's.
ENDPOINT_TAG_KEY = "mnist-ll:endpoint"
#: The deployment's salt: tells this stack from an earlier one of the same name.
DEPLOYMENT_TAG_KEY = "mnist-ll:deployment"

TUNING_JOB_MAX = 32
RESOURCE_MAX = 63
HASH_LEN = 8

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
# SageMaker tag values: letters, numbers, spaces and _ . : / = + - @
_TAG_UNSAFE = re.compile(r"[^\w .:/=+\-@]")
#: What SageMaker's tag values and CustomerMetadataProperties values refuse
#: (botocore: ``([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)``).
METADATA_UNSAFE = _TAG_UNSAFE


@dataclass(frozen=True)
class ResourceNames:
    tuning_job: str
    model: str
    endpoint_config: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResourceNames:
        return cls(
            tuning_job=str(data["tuning_job"]),
            model=str(data["model"]),
            endpoint_config=str(data["endpoint_config"]),
        )


def execution_hash(execution_name: str, salt: str = "") -> str:
    """Short stable hash of the deployment salt and the full execution name (hex)."""
    text = f"{salt}/{execution_name}" if salt else execution_name
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LEN]


def slug(text: str) -> str:
    """Lower-case ASCII letters and digits, other runs collapsed to one ``-``."""
    return _NOT_ALNUM.sub("-", text.lower()).strip("-")


def _compose(
    prefix: str, execution_name: str, max_len: int, suffix: str = "", salt: str = ""
) -> str:
    parts_fixed = [prefix, execution_hash(execution_name, salt)] + ([suffix] if suffix else [])
    fixed = sum(len(p) for p in parts_fixed) + len(parts_fixed) - 1
    room = max_len - fixed - 1  # minus the hyphen before the slug
    body = slug(execution_name)[: max(room, 0)].strip("-")
    parts = [prefix] + ([body] if body else []) + parts_fixed[1:]
    name = "-".join(parts)
    if len(name) > max_len or not SAGEMAKER_NAME.match(name):
        raise ValueError(f"cannot derive a valid name from prefix {prefix!r}")
    return name


def tuning_job_name(prefix: str, execution_name: str, salt: str = "") -> str:
    """``<prefix>-<slug>-<hash>``, at most 32 characters."""
    return _compose(prefix, execution_name, TUNING_JOB_MAX, salt=salt)


def model_name(prefix: str, execution_name: str, salt: str = "") -> str:
    """``<prefix>-<slug>-<hash>-model``, at most 63 characters."""
    return _compose(prefix, execution_name, RESOURCE_MAX, "model", salt=salt)


def endpoint_config_name(prefix: str, execution_name: str, salt: str = "") -> str:
    """``<prefix>-<slug>-<hash>-config``, at most 63 characters."""
    return _compose(prefix, execution_name, RESOURCE_MAX, "config", salt=salt)


def resource_names(prefix: str, execution_name: str, salt: str = "") -> ResourceNames:
    return ResourceNames(
        tuning_job=tuning_job_name(prefix, execution_name, salt),
        model=model_name(prefix, execution_name, salt),
        endpoint_config=endpoint_config_name(prefix, execution_name, salt),
    )


def default_endpoint_name(prefix: str, stack_name: str) -> str:
    """``<prefix>-<slug of the stack name>-<hash>-endpoint`` (at most 63 characters):
    each stack's own default endpoint, known at synth time. The hash of the full
    stack name keeps stacks whose slugs are equal (or cut short) apart."""
    return _compose(prefix, stack_name, RESOURCE_MAX, "endpoint")


def model_package_group_name(prefix: str, stack_name: str) -> str:
    """``<prefix>-<slug of the stack name>-<hash>-models`` (at most 63 characters):
    each stack's own registry, so two stacks never share a Model Package Group."""
    return _compose(prefix, stack_name, RESOURCE_MAX, "models")


#: EventBridge Scheduler's schedule names (botocore: 1-64 of ``[0-9a-zA-Z-_.]``).
SCHEDULE_NAME_MAX = 64


def retraining_schedule_name(stack_name: str) -> str:
    """``<stack name>-retraining``; a stack name too long for Scheduler's 64
    characters is cut and keeps a hash of the whole name, so two long stack
    names never share a schedule."""
    name = f"{stack_name}-retraining"
    if len(name) <= SCHEDULE_NAME_MAX:
        return name
    tail = f"-{execution_hash(stack_name)}-retraining"
    return stack_name[: SCHEDULE_NAME_MAX - len(tail)].rstrip("-") + tail


def tag_value(text: str) -> str:
    """``text`` made acceptable as a SageMaker tag value (at most 256 chars)."""
    return _TAG_UNSAFE.sub("_", text)[:256]


def resource_tags(stack_tag: str, execution_name: str, salt: str = "") -> list[dict[str, str]]:
    """The tags every SageMaker resource an execution creates carries."""
    tags = [
        {"Key": STACK_TAG_KEY, "Value": tag_value(stack_tag)},
        {"Key": EXECUTION_TAG_KEY, "Value": tag_value(execution_name)},
    ]
    if salt:
        tags.append({"Key": DEPLOYMENT_TAG_KEY, "Value": tag_value(salt)})
    return tags


def carries_tags(tags: dict[str, str], expected: list[dict[str, str]]) -> bool:
    """True if ``tags`` hold every key/value of ``expected`` (a run's own tags)."""
    return all(tags.get(t["Key"]) == t["Value"] for t in expected)


def tags_to_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}
