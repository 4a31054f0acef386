"""Synthesize the default and the KMS stack once per test process (bundling
skipped, cdk-nag on): tests only read them, and a synth costs seconds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")

import aws_cdk as cdk
from aws_cdk.assertions import Template

from stacks.asl import extract_definition
from stacks.pipeline_stack import PipelineStack
from tests.stack.helpers import synth


@dataclass
class Synth:
    stack: PipelineStack
    template: Template
    json: dict[str, Any]
    asl: dict[str, Any]
    assembly_dir: str

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.json["Resources"].items() if v["Type"] == kind}


def make_synth(
    overrides: dict[str, Any] | None = None, *, env: cdk.Environment | None = None
) -> Synth:
    _app, stack, assembly = synth(overrides, env=env)
    template = Template.from_stack(stack)
    data = template.to_json()
    pipeline_id = stack.get_logical_id(stack.pipeline.state_machine.node.default_child)
    return Synth(
        stack, template, data, extract_definition(data, logical_id=pipeline_id), assembly.directory
    )


@pytest.fixture(scope="session")
def synthesized() -> Iterator[Synth]:
    yield make_synth()


@pytest.fixture(scope="session")
def synthesized_kms() -> Iterator[Synth]:
    yield make_synth(
        {
            "enable_kms": True,
            "notification_email": "ops@example.com",
            "removal_policy": "retain",
            "auto_delete_objects": False,
        }
    )
