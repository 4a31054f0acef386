"""``python -m local services``: keep a local AWS account up until Ctrl-C.

It prints (and with ``--env-file`` writes) ``export`` lines: every
``AWS_ENDPOINT_URL_<SERVICE>``, the region, dummy credentials, the pipeline's
state machine and bucket, and ``SAGEMAKER_USER_CONFIG_OVERRIDE`` pointing at
a SageMaker SDK config file (default bucket, telemetry off). After
``source``-ing them the AWS CLI, boto3 and the SageMaker SDK work against it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from local.account.local_account import LocalAccount, export_lines
from local.account.mnist_cache import ensure_mnist
from local.account.synth import synthesize


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
    services.add_argument("--port", type=int, default=0, help="moto's port (default: free)")
    services.add_argument(
        "--sagemaker-port", type=int, default=0, help="the local SageMaker's port (default: free)"
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
    from local.account.backend import LinearLearnerBackend

    def note(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    # Handlers first: whoever reads the "is up" line may stop it at once.
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    dataset = ensure_mnist(progress=lambda m: note(f"dataset: {m}"))
    synth = None if args.no_pipeline else synthesize()
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
                    synth,
                    function_overrides={"ALLOW_LOCAL_SOURCES": "true"},
                    config_overrides={"poll_seconds": args.poll_seconds},
                )
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
    return 0
