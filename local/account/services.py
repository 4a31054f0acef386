"""Embedded stand-ins for AWS, all bound to 127.0.0.1 and all stopped at exit.

- moto, in-process as a threaded server: S3, SNS, DynamoDB, Step Functions
  (with ``execute_state_machine``, so the synthesized definition really runs),
  EventBridge and EventBridge Scheduler (it stores the schedules; the
  account's :mod:`local.account.scheduler` fires them);
- the local SageMaker (:mod:`local.emulator.service`), served by
  :class:`training.serving.BackgroundServer`.

:func:`aws_environment` gives the ``AWS_ENDPOINT_URL_*`` variables that point
boto3 at them, so the handlers' plain ``boto3.client(...)`` calls land here.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

LOOPBACK = "127.0.0.1"
REGION = "us-east-1"
ACCOUNT = "123456789012"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


class MotoServer:
    """moto's threaded server with Step Functions execution switched on."""

    def __init__(self, port: int = 0) -> None:
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

        self._config = default_user_config
        self._saved: dict[str, Any] = {
            "stepfunctions": default_user_config.get("stepfunctions"),
            "lambda": default_user_config.get("lambda"),
        }
        self.port = port or free_port()
        self._saved_port: str | None = None
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=self.port, verbose=False)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        # moto's server logs every request; the run prints its own progress.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # Its ASL interpreter logs every failed state; the run reports failures itself.
        logging.getLogger("moto").setLevel(logging.CRITICAL)
        self._config["stepfunctions"] = {"execute_state_machine": True}
        self._config["lambda"] = {"use_docker": False}
        from local.account import moto_fixes

        moto_fixes.install()
        self._server.start()
        # moto's ASL interpreter builds its own clients against MOTO_PORT (a
        # process-wide setting: restored on stop for any server started before).
        self._saved_port = os.environ.get("MOTO_PORT")
        os.environ["MOTO_PORT"] = str(self.port)

    def stop(self) -> None:
        self._server.stop()
        if self._saved_port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = self._saved_port
        if self._saved["stepfunctions"] is not None:
            self._config["stepfunctions"] = self._saved["stepfunctions"]
        if self._saved["lambda"] is not None:
            self._config["lambda"] = self._saved["lambda"]


#: botocore service ids (as in ``AWS_ENDPOINT_URL_<ID>``) that moto serves.
#: Add one with :func:`register_moto_service`; moto answers every service on
#: its one port, so registering is all it takes.
MOTO_SERVICES: list[str] = [
    "S3",
    "STS",
    "IAM",
    "CLOUDWATCH_LOGS",
    "CLOUDWATCH",
    "SNS",
    "SFN",
    "LAMBDA",
    "SCHEDULER",
    "DYNAMODB",
    "EVENTBRIDGE",
    "SQS",
]


def register_moto_service(service_id: str) -> None:
    """Serve one more AWS service from moto (``"SQS"``, ``"SECRETS_MANAGER"``...)."""
    key = service_id.upper().replace(" ", "_").replace("-", "_")
    if key not in MOTO_SERVICES:
        MOTO_SERVICES.append(key)


def credentials_environment() -> dict[str, str]:
    """Dummy credentials and the region: all a client needs besides endpoints."""
    return {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "local",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


def endpoint_environment(moto_url: str, sagemaker_url: str) -> dict[str, str]:
    """``AWS_ENDPOINT_URL_<SERVICE>`` for every service of the local account."""
    env = {f"AWS_ENDPOINT_URL_{service}": moto_url for service in MOTO_SERVICES}
    # A host prefix (StartSyncExecution's "sync-") names no host on 127.0.0.1.
    env["AWS_DISABLE_HOST_PREFIX_INJECTION"] = "true"
    env["AWS_ENDPOINT_URL_SAGEMAKER"] = sagemaker_url
    env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = sagemaker_url
    return env


def aws_environment(
    moto_url: str, sagemaker_url: str, log_level: str = "WARNING"
) -> dict[str, str]:
    """Environment that points boto3 at the local stand-ins."""
    return {
        "POWERTOOLS_LOG_LEVEL": log_level,
        **credentials_environment(),
        **endpoint_environment(moto_url, sagemaker_url),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "mnist-ll-local",
        "AWS_XRAY_SDK_ENABLED": "false",
    }


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
