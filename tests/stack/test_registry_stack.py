"""Template assertions for the model registry, approval, safe rollout, the
dashboard and the optional retraining schedule."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from pipeline_core.errors import InvalidConfigError
from tests.stack.conftest import Synth, make_synth
from tests.stack.test_iam import actions_of, role_statements
from tests.stack.test_state_machine import choose

ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mnist-ll-models/2"


def test_the_stack_owns_the_model_package_group(synthesized: Synth) -> None:
    synthesized.template.has_resource_properties(
        "AWS::SageMaker::ModelPackageGroup",
        {"ModelPackageGroupName": synthesized.stack.model_package_group},
    )
    outputs = synthesized.json["Outputs"]
    assert outputs["ModelPackageGroupName"]["Value"] == synthesized.stack.model_package_group
    assert synthesized.stack.model_package_group.startswith("mnist-ll-mnistlinearlearnerpipeline-")


def test_the_group_carries_the_stack_tag_its_versions_use(synthesized: Synth) -> None:
    """CreateModelPackage with a group takes no Tags: a version uses its group's."""
    synthesized.template.has_resource_properties(
        "AWS::SageMaker::ModelPackageGroup",
        {
            "ModelPackageGroupName": synthesized.stack.model_package_group,
            "Tags": Match.array_with(
                [{"Key": "mnist-ll:stack", "Value": synthesized.stack.stack_name}]
            ),
        },
    )


def test_register_model_creates_versions_of_its_group_without_request_tags(
    synthesized: Synth,
) -> None:
    role = synthesized.stack.functions["RegisterModel"].role
    sts = role_statements(synthesized, role)
    group, versions = (
        synthesized.stack.resolve(arn) for arn in synthesized.stack.model_package_arns()
    )
    creates = [st for st in sts if "sagemaker:CreateModelPackage" in _actions(st)]
    assert creates == [
        {
            "Action": "sagemaker:CreateModelPackage",
            "Effect": "Allow",
            "Resource": [group, versions],
        }
    ]
    # No Tags in the request: nothing to tag, so no AddTags grant either.
    assert "sagemaker:AddTags" not in actions_of(sts)


def _actions(st: dict[str, Any]) -> list[str]:
    action = st["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_state_change_rule_sends_decisions_to_the_approval_function(synthesized: Synth) -> None:
    rules = [
        r["Properties"]
        for r in synthesized.resources("AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.sagemaker"]
    ]
    assert len(rules) == 1
    rule = rules[0]
    assert rule["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {
            "ModelPackageGroupName": [synthesized.stack.model_package_group],
            "ModelApprovalStatus": ["Approved", "Rejected"],
        },
    }
    target = rule["Targets"][0]["Arn"]["Fn::GetAtt"][0]
    function = synthesized.json["Resources"][target]["Properties"]
    assert function["Handler"] == "lambdas.approval_decided.handler"


def test_model_source_routes_by_model_package_arn(synthesized: Synth) -> None:
    source = synthesized.asl["States"]["ModelSource"]
    assert choose(source, {"run": {"model_package_arn": ARN}}) == "LoadModelPackage"
    assert choose(source, {"run": {"model_package_arn": None}}) == "SourceKind"
    assert choose(source, {"run": {}}) == "SourceKind"
    use = synthesized.asl["States"]["UseModelPackage"]
    assert use["Parameters"] == {
        "run.$": "$.run",
        "data.$": "$.package.data",
        "tuning.$": "$.package.tuning",
        "registry.$": "$.package.registry",
    }


def test_approval_mode_waits_only_for_a_pending_version(synthesized: Synth) -> None:
    mode = synthesized.asl["States"]["ApprovalMode"]
    assert choose(mode, {"registry": {"approval_status": "Approved"}}) == "StartDeployment"
    pending = {"registry": {"approval_status": "PendingManualApproval"}}
    assert choose(mode, pending) == "WaitForApproval"


def test_wait_for_approval_is_a_bounded_task_token_callback(synthesized: Synth) -> None:
    wait = synthesized.asl["States"]["WaitForApproval"]
    assert wait["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    payload = wait["Parameters"]["Payload"]
    assert payload["task_token.$"] == "$$.Task.Token"
    assert payload["registry.$"] == "$.registry"
    assert wait["TimeoutSeconds"] == 120 * 60
    assert wait["ResultPath"] == "$.registry"
    assert wait["Next"] == "StartDeployment"
    first, *rest = wait["Catch"]
    assert first == {
        "ErrorEquals": ["States.Timeout"],
        "ResultPath": "$.approval_error",
        "Next": "NoApprovalInTime",
    }
    assert rest[-1]["ErrorEquals"] == ["States.ALL"]
    assert "ModelPackageRejectedError" in rest[0]["ErrorEquals"]


def _alarm(s: Synth, metric: str) -> dict[str, Any]:
    found = [
        a["Properties"]
        for a in s.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == metric
    ]
    assert len(found) == 1, metric
    return found[0]


@pytest.mark.parametrize(
    ("metric", "suffix", "statistic", "threshold"),
    [
        ("Invocation5XXErrors", "invocation-5xx", "Sum", 0),
        ("ModelLatency", "model-latency", "Average", 1_000_000),
    ],
)
def test_rollback_alarms_watch_the_stack_endpoint(
    synthesized: Synth, metric: str, suffix: str, statistic: str, threshold: int
) -> None:
    endpoint = synthesized.stack.endpoint_name  # each stack its own default endpoint
    alarm = _alarm(synthesized, metric)
    assert alarm["AlarmName"] == f"{endpoint}-{suffix}"
    assert alarm["Namespace"] == "AWS/SageMaker"
    assert alarm["Statistic"] == statistic
    assert alarm["Threshold"] == threshold
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
        "EndpointName": endpoint,
        "VariantName": "AllTraffic",
    }


def test_sagemaker_may_read_the_rollback_alarms(synthesized: Synth) -> None:
    statements = role_statements(synthesized, synthesized.stack.sagemaker_role)
    described = [s for s in statements if s["Action"] == "cloudwatch:DescribeAlarms"]
    assert len(described) == 1
    assert len(described[0]["Resource"]) == 2


def test_evaluate_may_publish_only_the_dashboard_namespace(synthesized: Synth) -> None:
    statements = role_statements(synthesized, synthesized.stack.functions["Evaluate"].role)
    put = [s for s in statements if s["Action"] == "cloudwatch:PutMetricData"]
    assert put == [
        {
            "Action": "cloudwatch:PutMetricData",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "MnistLinearLearner"}},
            "Effect": "Allow",
            "Resource": "*",
        }
    ]


def test_dashboard_shows_executions_run_quality_and_the_endpoint(synthesized: Synth) -> None:
    dashboards = synthesized.resources("AWS::CloudWatch::Dashboard")
    assert len(dashboards) == 1
    body = json.dumps(next(iter(dashboards.values()))["Properties"]["DashboardBody"])
    for needle in (
        "ExecutionsStarted",
        "ExecutionsSucceeded",
        "ExecutionsFailed",
        "MnistLinearLearner",
        "TuningObjective",
        "Invocations",
        "ModelLatency",
        "Invocation5XXErrors",
    ):
        assert needle in body, needle


def test_no_retraining_schedule_by_default(synthesized: Synth) -> None:
    assert synthesized.resources("AWS::Scheduler::Schedule") == {}


def test_schedule_starts_executions_with_the_configured_input() -> None:
    s = make_synth(
        {"schedule": {"expression": "rate(7 days)", "input": {"target_digit": 3, "max_jobs": 4}}}
    )
    schedules = s.resources("AWS::Scheduler::Schedule")
    assert len(schedules) == 1
    props = next(iter(schedules.values()))["Properties"]
    assert props["ScheduleExpression"] == "rate(7 days)"
    assert props["State"] == "ENABLED"
    assert json.loads(props["Target"]["Input"]) == {"max_jobs": 4, "target_digit": 3}
    machine = s.stack.get_logical_id(s.stack.pipeline.state_machine.node.default_child)
    assert props["Target"]["Arn"] == {"Ref": machine}
    assert s.stack.retraining is not None
    statements = role_statements(s, s.stack.retraining.role)
    assert actions_of(statements) == {"states:StartExecution"}
    s.template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": Match.object_like(
                {
                    "Statement": [
                        Match.object_like({"Principal": {"Service": "scheduler.amazonaws.com"}})
                    ]
                }
            )
        },
    )


@pytest.mark.parametrize(
    ("schedule", "key"),
    [
        ({"expression": "every monday"}, "schedule.expression"),
        ({"expression": "rate(1 day)", "input": {"target_digit": 12}}, "schedule.input"),
        ({"expression": "rate(1 day)", "when": "now"}, "schedule"),
        # Scheduler's rules: CloudFormation would fail the deploy on these.
        ({"expression": "cron(0 3 * * 1)"}, "schedule.expression: .*6 fields"),
        ({"expression": "cron(0 3 * * MON *)"}, "schedule.expression: .*'\\?'"),
        ({"expression": "rate(0 days)"}, "schedule.expression: .*positive"),
        ({"expression": "rate(7 days) "}, "schedule.expression"),
        ({"expression": "rate(7 days)", "timezone": "Europe/Berln"}, "schedule.timezone"),
    ],
)
def test_bad_schedule_fails_the_synth(schedule: dict[str, Any], key: str) -> None:
    from pipeline_core.config import DEFAULTS
    from stacks.schedule import parse_schedule

    with pytest.raises(InvalidConfigError, match=f"^{key}"):
        parse_schedule(schedule, DEFAULTS)


def test_cdk_json_sets_auto_approval_and_a_ten_percent_canary() -> None:
    from stacks.settings import StackSettings
    from tests.stack.helpers import cdk_json_context

    settings = StackSettings.from_context(cdk_json_context())
    assert settings.pipeline.approval == "auto"
    assert settings.pipeline.rollout["traffic"] == "CANARY"
    assert settings.pipeline.rollout["step_percent"] == 10
    assert settings.pipeline.rollout["wait_seconds"] == 300
    assert settings.schedule is None


def test_the_schedule_name_fits_scheduler_for_any_stack_name() -> None:
    from pipeline_core.names import SCHEDULE_NAME_MAX, retraining_schedule_name

    assert retraining_schedule_name("Pipeline") == "Pipeline-retraining"
    long_a, long_b = "Mnist" + "a" * 100 + "-x", "Mnist" + "a" * 100 + "-y"
    assert len(retraining_schedule_name(long_a)) == SCHEDULE_NAME_MAX
    assert retraining_schedule_name(long_a) != retraining_schedule_name(long_b)
    assert retraining_schedule_name(long_a).endswith("-retraining")
