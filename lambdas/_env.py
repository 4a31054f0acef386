"""Settings and boto3 clients for the handlers, built when a handler runs.

Nothing here runs at import time: :func:`lambdas._handler.task` calls
:func:`load_settings` when an invocation starts, and each handler gets its
clients with :func:`client` in its own ``_clients()``, which tests patch; a
client is built on its first use and reused by later invocations. The
local run points the plain clients at local services with
``AWS_ENDPOINT_URL_*`` variables, which boto3 honours natively.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from pipeline_core.config import CONFIG_ENV, DEFAULTS, PipelineConfig
from pipeline_core.errors import InvalidConfigError, InvalidInputError
from pipeline_core.inputs import RunSpec, resolve_run
from pipeline_core.names import default_endpoint_name

#: Standard retry mode retries throttling with backoff inside the Lambda
#: (5 attempts in all, the first included).
BOTO_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 5},
    connect_timeout=10,
    read_timeout=70,
)


@dataclass(frozen=True)
class Settings:
    config: PipelineConfig
    bucket: str
    role_arn: str
    image_uri: str
    default_endpoint_name: str
    stack_tag: str
    region: str
    allow_local_sources: bool
    kms_key_arn: str | None
    #: Set only on the functions that need them (stacks/pipeline_stack.py).
    topic_arn: str = ""
    state_machine_arn: str = ""
    ttl_function_arn: str = ""
    scheduler_role_arn: str = ""
    #: Cleanup: the stack keeps its Model Package Group (removal policy retain).
    registry_retained: bool = False
    #: The deployment's salt (UUID of the stack id): part of every name and tag.
    salt: str = ""
    #: DynamoDB table of the endpoint leases (one deploy at a time per endpoint).
    lock_table: str = ""
    #: The stack's Model Package Group (the registry); one per stack.
    model_package_group: str = ""

    def resolve_run(self, raw: Any, execution_name: str) -> RunSpec:
        """An execution input resolved into its run spec with this stack's settings
        (ValidateInput's resolution; ExecutionEnded repeats it from the event)."""
        return resolve_run(
            raw,
            execution_name=execution_name,
            config=self.config,
            bucket=self.bucket,
            region=self.region,
            default_endpoint_name=self.default_endpoint_name,
            stack_tag=self.stack_tag,
            allow_local_sources=self.allow_local_sources,
            salt=self.salt,
            model_package_group=self.model_package_group,
        )

    def require(self, **values: str) -> None:
        """Raise InvalidConfigError naming the first empty setting."""
        for env_name, value in values.items():
            if not value:
                raise InvalidConfigError(f"{env_name}: environment variable is not set")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    raw = env.get(CONFIG_ENV)
    # cdk synth checked the instance types against the job lists; a Lambda
    # does not load SageMaker's model for it at every cold start.
    config = PipelineConfig.from_json(raw, sagemaker_types=False) if raw else DEFAULTS
    stack_tag = env.get("STACK_TAG", "")
    return Settings(
        config=config,
        bucket=env.get("DATA_BUCKET", ""),
        role_arn=env.get("SAGEMAKER_ROLE_ARN", ""),
        image_uri=env.get("LINEAR_LEARNER_IMAGE", ""),
        default_endpoint_name=env.get("DEFAULT_ENDPOINT_NAME")
        or default_endpoint_name(config.name_prefix, stack_tag or "default"),
        stack_tag=stack_tag,
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        allow_local_sources=env.get("ALLOW_LOCAL_SOURCES", "").lower() == "true",
        kms_key_arn=env.get("KMS_KEY_ARN") or None,
        topic_arn=env.get("TOPIC_ARN", ""),
        state_machine_arn=env.get("STATE_MACHINE_ARN", ""),
        ttl_function_arn=env.get("TTL_FUNCTION_ARN", ""),
        scheduler_role_arn=env.get("SCHEDULER_ROLE_ARN", ""),
        registry_retained=env.get("MODEL_REGISTRY_RETAINED", "").lower() == "true",
        salt=env.get("DEPLOYMENT_SALT", ""),
        lock_table=env.get("LOCK_TABLE", ""),
        model_package_group=env.get("MODEL_PACKAGE_GROUP") or config.model_package_group,
    )


_CLIENTS: dict[tuple[object, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def build_client(service: str, region: str) -> Any:
    """A new plain boto3 client with standard retries (tests that register
    their own event handlers on a client take one of these)."""
    return boto3.client(service, region_name=region, config=BOTO_CONFIG)


def client(service: str, region: str) -> Any:
    """A plain boto3 client with standard retries, built on first use and then
    reused by later invocations, as AWS advises for Lambda (a client costs
    tens of milliseconds to build; most handlers make one or two calls).

    The key holds every ``AWS_*`` variable, so another endpoint URL or
    credential (the local account's ports, a test's moto) gets its own client.
    """
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))
    key = (service, region, env)
    with _CLIENTS_LOCK:
        found = _CLIENTS.get(key)
        if found is None:
            found = _CLIENTS[key] = build_client(service, region)
    return found


def field(event: Mapping[str, Any], key: str) -> Any:
    """``event[key]``, or InvalidInputError naming the missing payload key."""
    if not isinstance(event, Mapping) or key not in event or event[key] is None:
        raise InvalidInputError(f"{key}: missing from the task payload")
    return event[key]


def remaining_seconds(context: object, default: float = 900.0) -> float:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    if getter is None:
        return default
    return float(getter()) / 1000.0
