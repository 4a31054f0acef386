"""``make synth`` as a user runs it: the CDK CLI, cdk-nag and the CDK's
CloudFormation validation on.

The CLI always sets ``CDK_DEFAULT_REGION`` (us-east-1 when none is configured)
and ``CDK_DEFAULT_ACCOUNT`` when it finds credentials, so CDK-built policies
render a concrete region (and account): the acknowledgements must match them.
The synth bundles the Lambda asset: ``cdk synth`` bundles every stack unless
``--exclusively`` names others, so the CLI offers no way to skip it (the pip
result is cached under ``.build/``, so a re-synth only copies files).
With credentials ``cdk deploy`` also sets the account: ``app.py`` takes both
(:func:`test_the_app_takes_the_account_and_region_the_cli_resolves`), and
``test_regions.py`` synthesizes that stack, nag on, in three regions.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import pytest

import app as cdk_app
from local.account.services import ACCOUNT, REGION
from local.account.synth import SynthesizedPipeline, synthesize
from tests.stack.helpers import ROOT, make_app

CLI = ROOT / "node_modules" / ".bin" / "cdk"


def _start_synth(outdir: Path, *extra: str) -> subprocess.Popen[str]:
    assert CLI.exists(), "the CDK CLI is missing: `make test` installs it (npm ci)"
    # As `cdk deploy` runs: the CDK's CloudFormation validation on, whatever this shell says.
    dropped = ("CDK_DEFAULT_", "CDK_CONTEXT", "CDK_VALIDATION")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        CDK_DISABLE_CLI_TELEMETRY="true",
    )
    return subprocess.Popen(
        ["npx", "cdk", "synth", "--no-notices", "--quiet", "-o", str(outdir), *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@dataclass(frozen=True)
class CliSynth:
    returncode: int
    output: str
    outdir: Path


@pytest.fixture(scope="module")
def cli_synth(tmp_path_factory: pytest.TempPathFactory) -> CliSynth:
    """``make synth`` (with ``-o``): region us-east-1, no credentials."""
    outdir = tmp_path_factory.mktemp("cli")
    proc = _start_synth(outdir)
    output, _ = proc.communicate(timeout=600)
    return CliSynth(proc.returncode, output, outdir)


def _assert_clean(result: CliSynth) -> dict[str, object]:
    output, outdir = result.output, result.outdir
    assert result.returncode == 0, output[-4000:]
    assert "with errors" not in output, output[-4000:]
    assert "AwsSolutions-" not in output, output[-4000:]
    report = json.loads((outdir / "validation-report.json").read_text())
    # The CDK lists a plugin only with findings: a clean CloudFormation
    # validation adds no report, cdk-nag's lists its acknowledged findings.
    (plugin,) = report["pluginReports"]
    assert plugin["pluginName"] == "AwsSolutions"
    assert plugin["conclusion"] == "success"
    assert plugin["violations"] == []
    template: dict[str, object] = json.loads((outdir / "Pipeline.template.json").read_text())
    return template


def _distributed_map_resources(template: dict[str, object]) -> list[object]:
    resources = template["Resources"]
    assert isinstance(resources, dict)
    return [
        resource
        for res in resources.values()
        if res["Type"] == "AWS::IAM::Policy"
        for st in res["Properties"]["PolicyDocument"]["Statement"]
        if "states:DescribeExecution" in st["Action"]
        for resource in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]])
    ]


def test_make_synth_passes_with_the_cli_default_region(cli_synth: CliSynth) -> None:
    template = _assert_clean(cli_synth)
    rendered = json.dumps(_distributed_map_resources(template))
    assert "arn:aws:states:us-east-1:" in rendered


def test_the_app_takes_the_account_and_region_the_cli_resolves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What ``cdk deploy`` sets for an account with credentials reaches the stack."""
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", "123456789012")
    monkeypatch.setenv("CDK_DEFAULT_REGION", "eu-west-1")
    stack = cdk_app.build(make_app(), nag=False)
    assert (stack.account, stack.region) == ("123456789012", "eu-west-1")
    monkeypatch.delenv("CDK_DEFAULT_ACCOUNT")
    monkeypatch.delenv("CDK_DEFAULT_REGION")
    agnostic = cdk_app.build(make_app(), nag=False)
    assert cdk.Token.is_unresolved(agnostic.account) and cdk.Token.is_unresolved(agnostic.region)


def test_the_local_run_executes_the_definition_the_cli_synthesizes(cli_synth: CliSynth) -> None:
    """`make run` synthesizes without bundling, cdk-nag's checks and the CDK's
    CloudFormation validation (local/account/synth.py); the state machine and
    the Lambda environments it runs are still exactly what `make synth` emits."""
    template = _assert_clean(cli_synth)
    local = synthesize()
    cli = SynthesizedPipeline(template)
    assert local.definition(region=REGION, account=ACCOUNT) == cli.definition(
        region=REGION, account=ACCOUNT
    )
    local_fns = local.lambda_functions(region=REGION, account=ACCOUNT)
    cli_fns = cli.lambda_functions(region=REGION, account=ACCOUNT)
    assert local_fns.keys() == cli_fns.keys() and local_fns
    for arn, fn in cli_fns.items():
        assert (local_fns[arn].handler, local_fns[arn].environment) == (
            fn.handler,
            fn.environment,
        ), arn
