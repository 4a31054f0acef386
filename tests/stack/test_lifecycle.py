"""Cost and lifecycle in the template: instance-type caps in IAM, the
end-of-execution rule, the TTL scheduler role, the waiting destroy, and the
endpoint-mode branches of the state machine."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline_core.config import DEFAULTS
from pipeline_core.errors import InvalidInputError
from pipeline_core.inputs import resolve_run
from pipeline_core.instance_types import instance_types
from tests.stack.conftest import Synth
from tests.stack.test_iam import _as_list, role_statements, statements
from tests.stack.test_state_machine import choose

LAUNCHING = {
    "sagemaker:CreateHyperParameterTuningJob",
    "sagemaker:CreateEndpointConfig",
    "sagemaker:CreateTransformJob",
}


def _instance_type_conditions(s: Synth) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for _, st in statements(s):
        for action in set(_as_list(st["Action"])) & LAUNCHING:
            cond = st.get("Condition") or {}
            found[action] = cond.get("ForAllValues:StringEquals", {}).get(
                "sagemaker:InstanceTypes", []
            )
    return found


def test_every_create_that_launches_instances_is_capped_to_the_allowlist(
    synthesized: Synth,
) -> None:
    found = _instance_type_conditions(synthesized)
    assert set(found) == LAUNCHING
    for action, types in found.items():
        assert _as_list(types) == list(DEFAULTS.allowed_instance_types), action


def test_iam_and_validate_input_enforce_the_same_list(synthesized: Synth) -> None:
    (iam_types,) = {tuple(_as_list(t)) for t in _instance_type_conditions(synthesized).values()}
    config = synthesized.stack.settings.pipeline
    common = {
        "execution_name": "e",
        "config": config,
        "bucket": "b",
        "region": "us-east-1",
        "default_endpoint_name": "mnist-ll-endpoint",
        "stack_tag": "s",
    }
    for t in iam_types:  # every type IAM allows, ValidateInput accepts for its jobs ...
        resolve_run({"endpoint": {"instance_type": t}}, **common)
        if t in instance_types("training"):
            resolve_run({"training_instance_type": t}, **common)
        else:  # ml.c5.large: an endpoint type that SageMaker does not train on
            with pytest.raises(InvalidInputError, match=r"not a SageMaker training instance"):
                resolve_run({"training_instance_type": t}, **common)
    for t in ("ml.p5.48xlarge", "ml.m5.2xlarge", "ml.g5.xlarge"):  # ... and nothing more
        assert t not in iam_types
        with pytest.raises(InvalidInputError, match=r"^training_instance_type"):
            resolve_run({"training_instance_type": t}, **common)


def test_a_custom_allowlist_reaches_iam() -> None:
    from tests.stack.conftest import make_synth

    types = ["ml.m5.large", "ml.m5.xlarge"]
    s = make_synth(
        {
            "pipeline": {
                "allowed_instance_types": types,
                "training_instance_type": "ml.m5.xlarge",
                "endpoint_instance_type": "ml.m5.large",
                "transform_instance_type": "ml.m5.large",
            }
        }
    )
    for action, found in _instance_type_conditions(s).items():
        assert _as_list(found) == types, action


def test_end_of_execution_rule_targets_the_handler_for_this_state_machine(
    synthesized: Synth,
) -> None:
    (rule,) = [  # the registry's approval rule is the other one
        r
        for r in synthesized.resources("AWS::Events::Rule").values()
        if r["Properties"]["EventPattern"]["source"] == ["aws.states"]
    ]
    props = rule["Properties"]
    pattern = props["EventPattern"]
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    sm_lid = synthesized.stack.get_logical_id(
        synthesized.stack.pipeline.state_machine.node.default_child
    )
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": sm_lid}]
    (target,) = props["Targets"]
    fn_lid = synthesized.stack.get_logical_id(
        synthesized.stack.functions["ExecutionEnded"].function.node.default_child
    )
    assert target["Arn"] == {"Fn::GetAtt": [fn_lid, "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    # EventBridge may invoke it.
    permissions = [
        p["Properties"]
        for p in synthesized.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "events.amazonaws.com"
    ]
    assert any(p["FunctionName"] == {"Fn::GetAtt": [fn_lid, "Arn"]} for p in permissions)


def test_scheduler_role_may_only_invoke_the_ttl_function(synthesized: Synth) -> None:
    stack = synthesized.stack
    role_lid = stack.get_logical_id(stack.scheduler_role.node.default_child)
    role = synthesized.json["Resources"][role_lid]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    sts = role_statements(synthesized, stack.scheduler_role)
    ttl_lid = stack.get_logical_id(stack.functions["EndpointTtl"].function.node.default_child)
    assert sts == [
        {
            "Action": "lambda:InvokeFunction",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [ttl_lid, "Arn"]},
        }
    ]


def test_destroy_waits_with_an_is_complete_handler_up_to_55_minutes(synthesized: Synth) -> None:
    stack = synthesized.stack
    provider = stack.cleanup.provider
    # The framework's isComplete function and its waiter exist only with is_complete_handler.
    assert provider.node.try_find_child("framework-isComplete") is not None
    waiter = [
        m
        for lid, m in synthesized.resources("AWS::StepFunctions::StateMachine").items()
        if "waiterstatemachine" in lid.lower()
    ]
    assert len(waiter) == 1
    text = json.dumps(waiter[0]["Properties"]["DefinitionString"])
    # query_interval 30 s, total_timeout 55 min -> 110 attempts.
    assert '\\"IntervalSeconds\\":30' in text and '\\"MaxAttempts\\":110' in text
    complete_lid = stack.get_logical_id(
        stack.functions["CleanupComplete"].function.node.default_child
    )
    framework = [
        r["Properties"]
        for r in synthesized.resources("AWS::Lambda::Function").values()
        if "USER_IS_COMPLETE_FUNCTION_ARN"
        in r["Properties"].get("Environment", {}).get("Variables", {})
    ]
    assert framework
    assert all(
        f["Environment"]["Variables"]["USER_IS_COMPLETE_FUNCTION_ARN"]
        == {"Fn::GetAtt": [complete_lid, "Arn"]}
        for f in framework
    )


def test_cleanup_knows_the_state_machine_and_the_ttl_function(synthesized: Synth) -> None:
    stack = synthesized.stack
    fn = stack.get_logical_id(stack.functions["Cleanup"].function.node.default_child)
    env = synthesized.json["Resources"][fn]["Properties"]["Environment"]["Variables"]
    sm_lid = stack.get_logical_id(stack.pipeline.state_machine.node.default_child)
    assert env["STATE_MACHINE_ARN"] == {"Ref": sm_lid}
    ttl_lid = stack.get_logical_id(stack.functions["EndpointTtl"].function.node.default_child)
    assert env["TTL_FUNCTION_ARN"] == {"Fn::GetAtt": [ttl_lid, "Arn"]}


def _env(s: Synth, name: str) -> dict[str, Any]:
    fn = s.stack.get_logical_id(s.stack.functions[name].function.node.default_child)
    env: dict[str, Any] = s.json["Resources"][fn]["Properties"]["Environment"]["Variables"]
    return env


def test_ttl_functions_know_the_scheduler_role_and_ttl_target(synthesized: Synth) -> None:
    stack = synthesized.stack
    role = {"Fn::GetAtt": [stack.get_logical_id(stack.scheduler_role.node.default_child), "Arn"]}
    ttl_lid = stack.get_logical_id(stack.functions["EndpointTtl"].function.node.default_child)
    # EndpointTtl re-arms itself: its own ARN comes from the invocation (no cycle).
    assert _env(synthesized, "EndpointTtl")["SCHEDULER_ROLE_ARN"] == role
    assert "TTL_FUNCTION_ARN" not in _env(synthesized, "EndpointTtl")
    ended = _env(synthesized, "ExecutionEnded")
    assert ended["SCHEDULER_ROLE_ARN"] == role
    assert ended["TTL_FUNCTION_ARN"] == {"Fn::GetAtt": [ttl_lid, "Arn"]}


@pytest.mark.parametrize("name", ["EndpointTtl", "ExecutionEnded"])
def test_ttl_schedules_are_made_on_our_prefix_and_pass_only_the_scheduler_role(
    synthesized: Synth, name: str
) -> None:
    stack = synthesized.stack
    sts = role_statements(synthesized, stack.functions[name].role)
    creates = [st for st in sts if "scheduler:CreateSchedule" in _as_list(st["Action"])]
    assert len(creates) == 1
    assert json.dumps(creates[0]["Resource"]).endswith('schedule/default/mnist-ll-*"]]}')
    (passes,) = [st for st in sts if "iam:PassRole" in _as_list(st["Action"])]
    role_lid = stack.get_logical_id(stack.scheduler_role.node.default_child)
    assert passes["Resource"] == {"Fn::GetAtt": [role_lid, "Arn"]}
    assert passes["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
    }


def test_async_functions_send_what_they_cannot_handle_to_the_topic(synthesized: Synth) -> None:
    stack = synthesized.stack
    topic = {"Ref": stack.get_logical_id(stack.notifications.topic.node.default_child)}
    configs = synthesized.resources("AWS::Lambda::EventInvokeConfig")
    by_function = {c["Properties"]["FunctionName"]["Ref"]: c for c in configs.values()}
    for name in ("EndpointTtl", "ExecutionEnded", "ApprovalDecided"):
        fn = stack.functions[name]
        config = by_function.pop(stack.get_logical_id(fn.function.node.default_child))
        props = config["Properties"]
        assert props["DestinationConfig"] == {"OnFailure": {"Destination": topic}}, name
        assert props["MaximumRetryAttempts"] == 2 and props["Qualifier"] == "$LATEST", name
        # Lambda checks the role may publish when the config is created.
        policy = stack.get_logical_id(fn.role.node.find_child("DefaultPolicy").node.default_child)
        assert policy in config["DependsOn"], name
        publish = [
            st
            for st in role_statements(synthesized, fn.role)
            if "sns:Publish" in _as_list(st["Action"])
        ]
        assert [st["Resource"] for st in publish] == [topic], name
    assert by_function == {}  # the state machine's own functions answer it synchronously


@pytest.mark.parametrize(
    ("mode", "next_state"),
    [("realtime", "Deploy"), ("serverless", "Deploy"), ("none", "StartTransform")],
)
def test_endpoint_mode_picks_the_branch(synthesized: Synth, mode: str, next_state: str) -> None:
    doc = {"run": {"endpoint_mode": mode}}
    assert choose(synthesized.asl["States"]["EndpointMode"], doc) == next_state


@pytest.mark.parametrize(
    ("transform", "next_state"),
    [
        ({"status": "Completed"}, "Evaluate"),
        ({"status": "InProgress"}, "WaitForTransform"),
        ({"status": "Pending"}, "WaitForTransform"),
        ({"status": "Failed"}, "TransformNotCompleted"),
        ({"status": "Stopped"}, "TransformNotCompleted"),
        ({"status": "Weird"}, "UnexpectedTransformStatus"),
        ({}, "UnexpectedTransformStatus"),
    ],
)
def test_transform_status_never_loops_on_unknown_or_missing_status(
    synthesized: Synth, transform: dict[str, Any], next_state: str
) -> None:
    doc = {"lifecycle": {"transform": transform}}
    assert choose(synthesized.asl["States"]["TransformStatus"], doc) == next_state


def test_both_branches_reach_evaluate_with_ttl_and_transform_present(synthesized: Synth) -> None:
    s = synthesized.asl["States"]
    seed = s["StartDeployment"]
    assert seed["ResultPath"] == "$.lifecycle"
    assert seed["Result"]["ttl"] == {"action": "none"}  # no deletes_at: null in the report
    assert seed["Result"]["transform"] == {"status": "Pending", "polls": 0, "seconds": 0}
    assert s["TransformNotCompleted"]["Parameters"]["Error"] == "TransformJobFailedError"
