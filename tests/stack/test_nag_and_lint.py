"""cdk-nag AwsSolutions: zero unacknowledged findings. cfn-lint: clean template."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import stacks.pipeline_stack as pipeline_stack
from tests.stack.conftest import Synth
from tests.stack.helpers import synth


@pytest.mark.parametrize("fixture", ["synthesized", "synthesized_kms"])
def test_no_unacknowledged_cdk_nag_findings(fixture: str, request: pytest.FixtureRequest) -> None:
    s: Synth = request.getfixturevalue(fixture)  # synth itself raises on a finding
    report = json.loads((Path(s.assembly_dir) / "validation-report.json").read_text())
    (plugin,) = report["pluginReports"]
    assert plugin["pluginName"] == "AwsSolutions"
    assert plugin["conclusion"] == "success"
    assert plugin["violations"] == []
    for suppressed in plugin["suppressedViolations"]:
        assert len(suppressed["reason"]) > 40, suppressed["ruleName"]


def test_acknowledgements_are_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without them synth fails: the check is live, not silently off."""
    monkeypatch.setattr(pipeline_stack, "acknowledge_findings", lambda stack: None)
    with pytest.raises(RuntimeError) as raised:
        synth()
    assert str(raised.value).startswith("ValidationFailed")
    assert "AwsSolutions-IAM5" in str(raised.value)


def test_every_acknowledgement_suppresses_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    """A grant that goes must take its acknowledgement along: a stale one would
    silently accept the same finding if it came back."""
    import stacks.nag as nag

    made: list[tuple[str, str]] = []
    acknowledge = nag.acknowledge

    def recording(scope: Any, finding: str, reason: str) -> None:
        made.append((scope.node.path, f"AwsSolutions::AwsSolutions-{finding}"))
        acknowledge(scope, finding, reason)

    monkeypatch.setattr(nag, "acknowledge", recording)
    for overrides in (None, {"enable_kms": True}):
        made.clear()
        _app, _stack, assembly = synth(overrides)
        report = json.loads((Path(assembly.directory) / "validation-report.json").read_text())
        used = {
            (v["acknowledgedAt"], v["acknowledgedId"])
            for v in report["pluginReports"][0]["suppressedViolations"]
        }
        assert made and sorted(set(made) - used) == [], overrides


def test_no_blanket_acknowledgements(synthesized: Synth) -> None:
    report = json.loads((Path(synthesized.assembly_dir) / "validation-report.json").read_text())
    rules = {v["ruleName"] for v in report["pluginReports"][0]["suppressedViolations"]}
    # Only granular IAM findings are acknowledged; nothing about buckets, topics,
    # logging, tracing or runtimes.
    assert all(r.startswith(("AwsSolutions-IAM5[", "AwsSolutions-IAM4[")) for r in rules), rules


def test_cfn_lint_passes_with_the_definition_inlined(synthesized: Synth, tmp_path: Path) -> None:
    # cfn-lint skips an Fn::Join definition; give it the plain ASL so it checks it too.
    template = json.loads(json.dumps(synthesized.json))
    for res in template["Resources"].values():
        if res["Type"] == "AWS::StepFunctions::StateMachine":
            res["Properties"].pop("DefinitionString")
            res["Properties"]["Definition"] = synthesized.asl
    path = tmp_path / "Pipeline.template.json"
    path.write_text(json.dumps(template))
    # W3005: CDK adds explicit DependsOn next to GetAtt (harmless, by design).
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(path), "-i", "W3005"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
