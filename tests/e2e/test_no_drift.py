"""The local run executes exactly what `cdk deploy` would create.

The state machine moto runs must equal the definition of a fresh in-process
synth of the current sources, and every Lambda task must be dispatched with
the handler and environment the template gives that function.
"""

from __future__ import annotations

import json

import boto3

from local.account.runner import LOCAL_LEASE_INTERVAL_SECONDS, LocalPipeline
from local.account.services import ACCOUNT, REGION
from local.account.synth import override_retry_interval
from stacks.asl import extract_definition, lambda_functions_by_arn
from tests.stack.helpers import synth


def test_local_state_machine_is_the_freshly_synthesized_definition(
    pipeline: LocalPipeline,
) -> None:
    _app, stack, _assembly = synth(nag=False)
    from aws_cdk.assertions import Template

    fresh = Template.from_stack(stack).to_json()
    expected = extract_definition(fresh, region=REGION, account=ACCOUNT)
    running = boto3.client("stepfunctions").describe_state_machine(
        stateMachineArn=pipeline.state_machine_arn
    )["definition"]
    # The one local change: a held endpoint lease is retried every few seconds,
    # not every endpoint_busy_interval_seconds (docs/LOCAL_AWS.md).
    assert override_retry_interval(expected, "EndpointBusyError", LOCAL_LEASE_INTERVAL_SECONDS)
    assert json.loads(running) == expected


def test_every_task_resource_dispatches_to_the_templates_handler_and_env(
    pipeline: LocalPipeline,
) -> None:
    _app, stack, _assembly = synth(nag=False)
    from aws_cdk.assertions import Template

    fresh = lambda_functions_by_arn(Template.from_stack(stack).to_json())
    definition = pipeline.synth.definition(region=REGION, account=ACCOUNT)
    resources = {
        state["Resource"]
        for state in definition["States"].values()
        if state.get("Type") == "Task" and state["Resource"].startswith("arn:aws:lambda:")
    }
    assert resources, "the definition invokes no Lambda directly"
    assert pipeline.dispatcher is not None
    for arn in resources:
        _, fn = pipeline.dispatcher.lookup(arn)
        assert fn.handler == fresh[arn]["handler"]
        local_only = {"ALLOW_LOCAL_SOURCES", "PIPELINE_CONFIG"}
        for key, value in fresh[arn]["environment"].items():
            if key not in local_only:
                assert fn.environment[key] == value, key
        config = json.loads(fn.environment["PIPELINE_CONFIG"])
        cloud = json.loads(fresh[arn]["environment"]["PIPELINE_CONFIG"])
        # Only the Wait-state seconds and the lease retry interval differ locally.
        local_keys = {"poll_seconds", "endpoint_busy_interval_seconds"}
        assert {k: v for k, v in config.items() if k not in local_keys} == {
            k: v for k, v in cloud.items() if k not in local_keys
        }
