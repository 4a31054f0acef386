"""``python -m local services``: keep a local AWS account up until Ctrl-C or SIGTERM.

It prints (and with ``--env-file`` writes) ``export`` lines: every
``AWS_ENDPOINT_URL_<SERVICE>``, the region, dummy credentials, the pipeline's
state machine and bucket, and ``SAGEMAKER_USER_CONFIG_OVERRIDE`` pointing at
a SageMaker SDK config file (default bucket, telemetry off). After
``source``-ing them the AWS CLI, boto3 and the SageMaker SDK work against it.
"""

from __future__ import annotations

import argparse
import errno
import json
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local.account.mnist_cache import ensure_mnist
from local.account.synth import synthesize_in_background
from pipeline_core.failures import failure_message

if TYPE_CHECKING:
    from local.account.local_account import LocalAccount

#: Fixed ports, so the env file stays right across restarts (0: a free port).
DEFAULT_MOTO_PORT = 5055
DEFAULT_SAGEMAKER_PORT = 5056
LOOPBACK = "127.0.0.1"


class PortTakenError(RuntimeError):
    """A port the account should listen on is in use."""


def check_port(port: int, flag: str, what: str) -> None:
    """Fail early, naming the flag to change, when ``port`` is taken."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
            raise PortTakenError(
                f"port {port} ({what}) is taken, is another `python -m local services` "
                f"running? Pass {flag} N for another port (0: any free port)"
            ) from e


def approval_line(event: dict[str, Any]) -> str | None:
    """The line to print for a "SageMaker Model Package State Change" event
    when a version waits for a person (approval ``manual``), else None."""
    detail = event.get("detail") or {}
    if detail.get("ModelApprovalStatus") != "PendingManualApproval":
        return None
    arn = detail.get("ModelPackageArn")
    return f"waiting for approval: {arn} — approve with: python -m local approve {arn}"


def execution_line(event: dict[str, Any]) -> str | None:
    """What ``services`` prints for a Step Functions status change: the start,
    and the end with its result (metrics, or the failure's next step)."""
    if event.get("detail-type") != "Step Functions Execution Status Change":
        return None
    detail = event.get("detail") or {}
    name, status = detail.get("name"), detail.get("status")
    if status == "RUNNING":
        return f"execution {name} started"
    seconds = ""
    if detail.get("startDate") and detail.get("stopDate"):
        seconds = f" in {(detail['stopDate'] - detail['startDate']) / 1000:.0f}s"
    if status == "SUCCEEDED":
        try:
            output = json.loads(detail.get("output") or "{}")
        except json.JSONDecodeError:
            output = {}
        metrics = output.get("metrics") if isinstance(output, dict) else None
        result = (
            f": accuracy {metrics['accuracy']:.4f}, F1 {metrics['f1']:.4f}"
            if isinstance(metrics, dict) and {"accuracy", "f1"} <= set(metrics)
            else ""
        )
        return f"execution {name} SUCCEEDED{seconds}{result}"
    message = failure_message(detail.get("error"), detail.get("cause"))
    return f"execution {name} {status}{seconds}: {message}"


def abort_running(account: LocalAccount, note: Callable[[str], None], wait: float = 30.0) -> int:
    """Stop the pipeline's running executions as a console Stop would, and wait
    until their ABORTED events reached ExecutionEnded (which stops their jobs);
    how many were stopped."""
    import boto3

    if account.deployment is None:
        return 0
    sfn = boto3.client("stepfunctions")
    running = sfn.list_executions(
        stateMachineArn=account.deployment.state_machine_arn, statusFilter="RUNNING"
    ).get("executions", [])
    for execution in running:
        note(f"stopping execution {execution['name']}")
        sfn.stop_execution(
            executionArn=execution["executionArn"],
            error="ServicesStopped",
            cause="python -m local services was stopped (Ctrl-C or SIGTERM)",
        )
    for execution in running:
        try:
            ending = account.executions.wait_ending(execution["executionArn"], wait)
        except TimeoutError:
            continue
        for delivery in ending.deliveries:
            delivery.done.wait(wait)
    return len(running)


def add_parser(sub: Any) -> None:
    services = sub.add_parser(
        "services",
        help="start a local AWS account (moto + local SageMaker) until Ctrl-C",
        description=(
            "Start a local AWS account on 127.0.0.1: S3, STS, IAM, CloudWatch Logs, SNS, "
            "Step Functions, Lambda, Scheduler, DynamoDB, EventBridge (moto) and SageMaker "
            "and SageMaker Runtime (local Linear Learner), with the pipeline deployed and the "
            "tutorial's MNIST object at its public bucket and key. Prints export lines."
        ),
    )
    services.add_argument("--env-file", type=Path, help="also write the export lines here")
    services.add_argument(
        "--sdk-config",
        type=Path,
        help="where to write the SageMaker SDK config file (default: next to --env-file, "
        "else in the work folder)",
    )
    services.add_argument(
        "--port",
        type=int,
        default=DEFAULT_MOTO_PORT,
        help=f"moto's port (default {DEFAULT_MOTO_PORT}; 0: any free port)",
    )
    services.add_argument(
        "--sagemaker-port",
        type=int,
        default=DEFAULT_SAGEMAKER_PORT,
        help=f"the local SageMaker's port (default {DEFAULT_SAGEMAKER_PORT}; 0: any free port)",
    )
    services.add_argument(
        "--poll-seconds",
        type=int,
        default=1,
        help="Wait-state seconds of the pipeline's polling loops (default 1)",
    )
    services.add_argument(
        "--no-pipeline",
        action="store_true",
        help="do not deploy the pipeline (skips the CDK synth)",
    )
    services.add_argument(
        "--verbose", action="store_true", help="show the Lambda handlers' logs (INFO and up)"
    )


def run(args: argparse.Namespace) -> int:
    def note(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        check_port(args.port, "--port", "moto")
        check_port(args.sagemaker_port, "--sagemaker-port", "the local SageMaker")
    except PortTakenError as e:
        note(f"error: {e}")
        return 2
    # Handlers first: whoever reads the "is up" line may stop it at once.
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # The synth (a subprocess) runs while the dataset is checked and the account starts.
    synth = None if args.no_pipeline else synthesize_in_background()
    # The account's modules (boto3, moto, the local SageMaker) load while it runs.
    from local.account.backend import LinearLearnerBackend
    from local.account.local_account import LocalAccount, export_lines
    from local.account.runner import LOCAL_LEASE_INTERVAL_SECONDS

    dataset = ensure_mnist(progress=lambda m: note(f"dataset: {m}"))
    with tempfile.TemporaryDirectory(prefix="mnist-ll-account-") as tmp:
        work = Path(tmp)
        account = LocalAccount(
            work_dir=work,
            backend=LinearLearnerBackend(work_dir=work / "backend"),
            log_level="INFO" if args.verbose else "CRITICAL",
            moto_port=args.port,
            sagemaker_port=args.sagemaker_port,
        )
        with account:
            if synth is not None:
                account.deploy_pipeline(
                    synth.result(),
                    function_overrides={"ALLOW_LOCAL_SOURCES": "true"},
                    config_overrides={
                        "poll_seconds": args.poll_seconds,
                        "endpoint_busy_interval_seconds": LOCAL_LEASE_INTERVAL_SECONDS,
                    },
                )
                assert account.sagemaker is not None
                registry = account.sagemaker.registry
                forward = registry.on_state_change

                def announce(event: dict[str, Any]) -> None:
                    forward(event)
                    line = approval_line(event)
                    if line:
                        note(line)

                registry.on_state_change = announce

                def tell(event: dict[str, Any]) -> None:
                    line = execution_line(event)
                    if line:
                        note(line)

                account.executions.listeners.append(tell)
            uri = account.seed_tutorial_object(dataset)
            account.create_sdk_bucket()
            sdk_config = args.sdk_config or (
                args.env_file.with_name(args.env_file.name + ".sagemaker-config.yaml")
                if args.env_file
                else work / "sagemaker-config.yaml"
            )
            account.write_sdk_config(sdk_config.resolve())
            lines = export_lines(account.client_environment(sdk_config.resolve()))
            if args.env_file:
                args.env_file.parent.mkdir(parents=True, exist_ok=True)
                args.env_file.write_text("\n".join(lines) + "\n")
            for line in lines:
                print(line)
            sys.stdout.flush()
            note(f"tutorial object: {uri}")
            note(f"role ARN to pass: {account.role_arn}")
            note("local AWS account is up; Ctrl-C or SIGTERM stops it")
            while not stop.wait(0.5):
                pass
            note("stopping")
            # As Ctrl-C does for `run`: running executions end ABORTED, their jobs stopped.
            abort_running(account, note)
    return 0
