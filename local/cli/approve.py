"""``python -m local approve <model-package-arn> [--reject]``: decide a
registered version on a ``python -m local services`` account.

It makes the call a person makes on AWS (``UpdateModelPackage`` with the new
``ModelApprovalStatus``, as ``aws sagemaker update-model-package`` or the
console does); the local SageMaker then emits "SageMaker Model Package State
Change", and the stack's rule releases the execution waiting in
WaitForApproval, exactly the AWS path. Needs the account's endpoints: source
the env file ``python -m local services --env-file`` wrote, or pass it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from local.account.services import patched_environ


def add_parser(sub: Any) -> None:
    approve = sub.add_parser(
        "approve",
        help="approve (or --reject) a registered model version on python -m local services",
        description=(
            "Set a model package version's approval status on the local account started by "
            "python -m local services; an execution waiting for it (approval manual) "
            "deploys it, or ends in ModelRejected (with --description in its cause)."
        ),
    )
    approve.add_argument(
        "model_package_arn",
        nargs="?",
        help="the version's ARN (execution output, or the line python -m local services prints)",
    )
    approve.add_argument(
        "--execution",
        metavar="NAME",
        help="instead of the ARN: the execution whose registered version to decide",
    )
    approve.add_argument("--reject", action="store_true", help="reject instead of approve")
    approve.add_argument("--description", default="", help="ApprovalDescription to record")
    approve.add_argument(
        "--env-file",
        type=Path,
        help="the env file python -m local services --env-file wrote (default: the "
        "current environment)",
    )


def read_env_file(path: Path) -> dict[str, str]:
    """``export KEY=VALUE`` lines (shell-quoted) into a mapping."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        parts = shlex.split(line)
        if len(parts) == 2 and parts[0] == "export" and "=" in parts[1]:
            key, _, value = parts[1].partition("=")
            env[key] = value
    return env


class NoVersionError(LookupError):
    """No model package version was registered by the execution."""


def find_version(execution: str) -> str:
    """The ARN of the latest version registered by ``execution`` (its
    ``execution`` metadata), in any of the account's Model Package Groups."""
    import boto3

    sm = boto3.client("sagemaker")
    found: list[tuple[int, str]] = []
    groups = sm.get_paginator("list_model_package_groups").paginate()
    for group in (g for page in groups for g in page["ModelPackageGroupSummaryList"]):
        pages = sm.get_paginator("list_model_packages").paginate(
            ModelPackageGroupName=group["ModelPackageGroupName"]
        )
        for summary in (p for page in pages for p in page["ModelPackageSummaryList"]):
            arn = summary["ModelPackageArn"]
            described = sm.describe_model_package(ModelPackageName=arn)
            metadata = described.get("CustomerMetadataProperties") or {}
            if metadata.get("execution") == execution:
                found.append((int(summary.get("ModelPackageVersion") or 0), arn))
    if not found:
        raise NoVersionError(f"no model version was registered by execution {execution}")
    return max(found)[1]


def decide(arn: str, *, reject: bool, description: str) -> dict[str, Any]:
    """UpdateModelPackage; returns the version's description afterwards."""
    import boto3

    sm = boto3.client("sagemaker")
    request: dict[str, Any] = {
        "ModelPackageArn": arn,
        "ModelApprovalStatus": "Rejected" if reject else "Approved",
    }
    if description:
        request["ApprovalDescription"] = description
    sm.update_model_package(**request)
    described: dict[str, Any] = sm.describe_model_package(ModelPackageName=arn)
    return described


def run(args: argparse.Namespace) -> int:
    env = read_env_file(args.env_file) if args.env_file else {}
    with patched_environ(env):
        if not os.environ.get("AWS_ENDPOINT_URL_SAGEMAKER"):
            print(
                "error: no local account: source the env file of `python -m local services` "
                "or pass --env-file (on AWS use `aws sagemaker update-model-package`)",
                file=sys.stderr,
            )
            return 2
        if bool(args.model_package_arn) == bool(args.execution):
            print("error: give a model package ARN or --execution NAME", file=sys.stderr)
            return 2
        try:
            arn = args.model_package_arn or find_version(args.execution)
        except NoVersionError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        described = decide(arn, reject=args.reject, description=args.description)
    status = described["ModelApprovalStatus"]
    execution = (described.get("CustomerMetadataProperties") or {}).get("execution", "?")
    print(f"{arn}: {status} (registered by execution {execution})")
    return 0
