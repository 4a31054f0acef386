"""Synthesize the app the way ``cdk synth`` does, minus asset bundling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk

import app as cdk_app
from stacks.pipeline_stack import PipelineStack

ROOT = Path(__file__).resolve().parents[2]
SKIP_BUNDLING = {"aws:cdk:bundling-stacks": []}


def cdk_json_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


def bare_app(**props: Any) -> cdk.App:
    """An app without the CDK's built-in CloudFormation template validation.

    Outside the CDK CLI it can only warn (its errors become warnings unless a
    feature flag says otherwise) and its WASM engine costs seconds in every
    process; ``test_cli_synth.py`` synthesizes with it on, as ``cdk deploy`` does.
    """
    return cdk.App(builtin_cloud_formation_validation=False, **props)


def make_app(overrides: dict[str, Any] | None = None, *, outdir: str | None = None) -> cdk.App:
    context = {**cdk_json_context(), **SKIP_BUNDLING, **(overrides or {})}
    return bare_app(context=context, outdir=outdir)


def synth(
    overrides: dict[str, Any] | None = None,
    *,
    nag: bool = True,
    outdir: str | None = None,
    env: cdk.Environment | None = None,
) -> tuple[cdk.App, PipelineStack, cdk.cx_api.CloudAssembly]:
    """Build the app with ``app.build`` and synthesize it (nag findings raise).

    ``env`` (account/region) as the CDK CLI would set them; by default the
    process environment's ``CDK_DEFAULT_*`` (unset in tests: pseudo parameters).
    """
    app = make_app(overrides, outdir=outdir)
    stack = cdk_app.build(app, nag=nag, env=env)
    assembly = app.synth()
    return app, stack, assembly
