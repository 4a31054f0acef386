"""Cleanup custom resource and outputs."""

from __future__ import annotations

from pipeline_core.names import default_endpoint_name
from tests.stack.conftest import Synth


def _lid(s: Synth, construct: object) -> str:
    return s.stack.get_logical_id(construct.node.default_child)  # type: ignore[attr-defined]


def test_cleanup_runs_the_cleanup_handler_with_the_stack_tag(synthesized: Synth) -> None:
    (resource,) = synthesized.resources("Custom::MnistLinearLearnerCleanup").values()
    assert resource["Properties"]["StackTag"] == "MnistLinearLearnerPipeline"
    provider = synthesized.stack.cleanup.provider
    on_event = provider.on_event_handler
    handler = synthesized.json["Resources"][_lid(synthesized, on_event)]["Properties"]["Handler"]
    assert handler == "lambdas.cleanup.handler"


def test_cleanup_is_deleted_before_the_state_machine_and_roles(synthesized: Synth) -> None:
    (resource,) = synthesized.resources("Custom::MnistLinearLearnerCleanup").values()
    depends = set(resource["DependsOn"])
    stack = synthesized.stack
    assert _lid(synthesized, stack.pipeline.state_machine) in depends
    assert _lid(synthesized, stack.sagemaker_role) in depends
    assert _lid(synthesized, stack.functions["Deploy"].role) in depends
    assert _lid(synthesized, stack.storage.bucket) in depends


def test_outputs_name_bucket_state_machine_console_and_endpoint(synthesized: Synth) -> None:
    outputs = synthesized.json["Outputs"]
    assert {"BucketName", "StateMachineArn", "StartExecutionUrl", "EndpointName"} <= set(outputs)
    assert outputs["BucketName"]["Value"] == {
        "Ref": _lid(synthesized, synthesized.stack.storage.bucket)
    }
    assert outputs["EndpointName"]["Value"] == default_endpoint_name(
        "mnist-ll", "MnistLinearLearnerPipeline"
    )
