"""The stack in concrete environments, as ``cdk synth`` makes it for a user.

One in-process synth per region (a custom ``stack_name``, as ``-c
stack_name=…``), each with every cdk-nag acknowledgement recorded: no
AwsSolutions error, and no acknowledgement that suppresses nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match

import stacks.nag as nag
from tests.stack.conftest import Synth, make_synth

ACCOUNT = "123456789012"
REGIONS = ("us-east-1", "eu-west-1", "ap-northeast-1")
STACK_NAME = "MnistRegional"


@dataclass
class Regional:
    region: str
    synth: Synth
    acknowledged: set[tuple[str, str]]

    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads(
            (Path(self.synth.assembly_dir) / "validation-report.json").read_text()
        )
        return report


@pytest.fixture(scope="module", params=REGIONS)
def regional(request: pytest.FixtureRequest) -> Iterator[Regional]:
    made: set[tuple[str, str]] = set()
    acknowledge = nag.acknowledge

    def recording(scope: Any, finding: str, reason: str) -> None:
        made.add((scope.node.path, f"AwsSolutions::AwsSolutions-{finding}"))
        acknowledge(scope, finding, reason)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nag, "acknowledge", recording)
        s = make_synth(
            {"stack_name": STACK_NAME},
            env=cdk.Environment(account=ACCOUNT, region=request.param),
        )
    yield Regional(request.param, s, made)


def test_no_aws_solutions_error(regional: Regional) -> None:
    errors = Annotations.from_stack(regional.synth.stack).find_error(
        "*", Match.string_like_regexp("AwsSolutions")
    )
    assert errors == []
    (plugin,) = regional.report()["pluginReports"]
    assert plugin["conclusion"] == "success"
    assert plugin["violations"] == []


def test_every_acknowledgement_suppresses_a_finding(regional: Regional) -> None:
    (plugin,) = regional.report()["pluginReports"]
    used = {(v["acknowledgedAt"], v["acknowledgedId"]) for v in plugin["suppressedViolations"]}
    assert regional.acknowledged
    assert sorted(regional.acknowledged - used) == []


def test_the_stack_is_the_named_one_in_that_region(regional: Regional) -> None:
    stack = regional.synth.stack
    assert (stack.stack_name, stack.region, stack.account) == (STACK_NAME, regional.region, ACCOUNT)
    # CDK's own DistributedMap grant renders the concrete environment.
    regional.synth.template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": Match.array_with(["states:DescribeExecution"]),
                                "Resource": {
                                    "Fn::Join": [
                                        "",
                                        Match.array_with(
                                            [
                                                f"arn:aws:states:{regional.region}:{ACCOUNT}:execution:"
                                            ]
                                        ),
                                    ]
                                },
                            }
                        )
                    ]
                )
            }
        },
    )
