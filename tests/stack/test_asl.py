"""stacks.asl: plain ASL + Lambda specs from the template, for the local run."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from stacks.asl import extract_definition, lambda_functions, lambda_functions_by_arn, stack_outputs
from stacks.state_machine import PipelineFunctions
from tests.stack.conftest import Synth
from tests.stack.helpers import ROOT


def test_definition_has_no_unresolved_intrinsics(synthesized: Synth) -> None:
    text = json.dumps(synthesized.asl)
    assert "Fn::" not in text and '"Ref"' not in text and "<" not in text


def test_every_lambda_resource_maps_to_a_handler_and_its_env(synthesized: Synth) -> None:
    by_arn = lambda_functions_by_arn(synthesized.json)

    def states(machine: dict[str, Any]) -> list[dict[str, Any]]:
        found = list(machine["States"].values())
        for st in machine["States"].values():
            if "ItemProcessor" in st:  # a Map's child workflow
                found += states(st["ItemProcessor"])
        return found

    arns = {
        st["Resource"]
        for st in states(synthesized.asl)
        if st.get("Resource", "").startswith("arn:aws:lambda:")
    }
    # Every function the state machine is given, and nothing else.
    assert len(arns) == len(fields(PipelineFunctions))
    for arn in arns:
        info = by_arn[arn]
        assert info["handler"].startswith("lambdas.") and info["handler"].endswith(".handler")
        env = info["environment"]
        assert env["DATA_BUCKET"] == env["DATA_BUCKET"].lower()
        assert env["SAGEMAKER_ROLE_ARN"].startswith("arn:aws:iam::123456789012:role/")
        assert "<" not in json.dumps(env)


def test_region_and_account_flow_into_arns(synthesized: Synth) -> None:
    asl = extract_definition(synthesized.json, region="eu-west-1", account="111122223333")
    validate = asl["States"]["ValidateInput"]["Resource"]
    assert validate.startswith("arn:aws:lambda:eu-west-1:111122223333:function:")
    china = extract_definition(synthesized.json, region="cn-north-1")
    assert china["States"]["ValidateInput"]["Resource"].startswith("arn:aws-cn:lambda:cn-north-1:")


def test_stack_template_and_file_give_the_same_definition(
    synthesized: Synth, tmp_path: Path
) -> None:
    path = tmp_path / "Pipeline.template.json"
    path.write_text(json.dumps(synthesized.json))
    assert extract_definition(path) == synthesized.asl
    assert extract_definition(synthesized.stack) == synthesized.asl


def test_functions_keyed_by_logical_id(synthesized: Synth) -> None:
    functions = lambda_functions(synthesized.json)
    convert = synthesized.stack.get_logical_id(
        synthesized.stack.functions["Convert"].function.node.default_child
    )
    assert functions[convert]["handler"] == "lambdas.convert.handler"
    assert functions[convert]["arn"].endswith(f":function:{convert}")
    assert functions[convert]["memory_size"] >= 2048


def test_outputs_resolve(synthesized: Synth) -> None:
    outputs = stack_outputs(synthesized.json)
    assert outputs["EndpointName"] == synthesized.stack.endpoint_name
    assert outputs["EndpointName"].startswith("mnist-ll-mnistlinearlearnerpipeline-")
    assert outputs["StateMachineArn"].startswith("arn:aws:states:us-east-1:123456789012:")
    assert outputs["StartExecutionUrl"] == (
        "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1"
        f"#/statemachines/view/{outputs['StateMachineArn']}"
    )


def test_cli_prints_the_definition_and_the_functions(synthesized: Synth, tmp_path: Path) -> None:
    path = tmp_path / "Pipeline.template.json"
    path.write_text(json.dumps(synthesized.json))
    out = subprocess.run(
        [sys.executable, "-m", "stacks.asl", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout) == synthesized.asl
    out = subprocess.run(
        [sys.executable, "-m", "stacks.asl", str(path), "--functions"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout) == lambda_functions_by_arn(synthesized.json)
