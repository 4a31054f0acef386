#!/usr/bin/env python3
"""CDK app: the only place that reads context and the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from pipeline_core.config import SKIP_NAG_ENV
from stacks.pipeline_stack import PipelineStack
from stacks.settings import KNOWN_KEYS, StackSettings

PROJECT_ROOT = Path(__file__).resolve().parent


def settings_from_app(app: cdk.App) -> StackSettings:
    """Typed, validated settings from the app's context (cdk.json + -c)."""
    context: dict[str, Any] = {key: app.node.try_get_context(key) for key in KNOWN_KEYS}
    return StackSettings.from_context(context)


def environment_from_cli() -> cdk.Environment:
    """The account and region the CDK CLI resolved (``CDK_DEFAULT_*``).

    The CLI always sets the region (us-east-1 when none is configured) and
    the account when it finds credentials; outside the CLI both may be unset
    and the stack is environment-agnostic (pseudo parameters).
    """
    return cdk.Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
        region=os.environ.get("CDK_DEFAULT_REGION"),
    )


def build(app: cdk.App, *, nag: bool = True, env: cdk.Environment | None = None) -> PipelineStack:
    """Add the pipeline stack (and the cdk-nag checks) to ``app``.

    ``env`` defaults to :func:`environment_from_cli`; tests pass their own.
    """
    settings = settings_from_app(app)
    stack = PipelineStack(
        app,
        "Pipeline",
        settings=settings,
        project_root=PROJECT_ROOT,
        env=env if env is not None else environment_from_cli(),
        description="MNIST Linear Learner (is this digit a 0?) as a Step Functions pipeline",
    )
    if nag:
        # Imported here: loading cdk-nag's jsii assembly costs the local synth time.
        from cdk_nag import AwsSolutionsChecks

        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return stack


def main() -> None:
    app = cdk.App()
    build(app, nag=os.environ.get(SKIP_NAG_ENV) != "1")
    app.synth()


if __name__ == "__main__":
    main()
