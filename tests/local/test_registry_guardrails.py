"""Local stand-ins of #14: event-pattern matching of the template's rules,
the traffic steps and alarm rollback of a blue/green update, and the local
model registry's idempotency and state-change events."""

from __future__ import annotations

from typing import Any

import pytest

from local.account.event_rules import matches
from local.emulator.guardrails import shift_traffic, traffic_steps
from local.emulator.registry import ModelRegistry, RegistryError

PATTERN = {
    "source": ["aws.sagemaker"],
    "detail-type": ["SageMaker Model Package State Change"],
    "detail": {"ModelPackageGroupName": ["g"], "ModelApprovalStatus": ["Approved", "Rejected"]},
}


def _event(group: str, status: str) -> dict[str, Any]:
    return {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Model Package State Change",
        "detail": {"ModelPackageGroupName": group, "ModelApprovalStatus": status},
    }


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (_event("g", "Approved"), True),
        (_event("g", "Rejected"), True),
        (_event("g", "PendingManualApproval"), False),
        (_event("other", "Approved"), False),
        ({"source": "aws.sagemaker"}, False),
    ],
)
def test_rule_patterns_match_like_eventbridge(event: dict[str, Any], expected: bool) -> None:
    assert matches(PATTERN, event) is expected


def deployment_config(rollout: dict[str, Any], alarms: tuple[str, ...]) -> dict[str, Any]:
    """A DeploymentConfig with sizes in CAPACITY_PERCENT, the form these steps read."""
    traffic = rollout["traffic"]
    routing: dict[str, Any] = {"Type": traffic, "WaitIntervalInSeconds": 0}
    size = {"Type": "CAPACITY_PERCENT", "Value": rollout.get("step_percent", 10)}
    if traffic != "ALL_AT_ONCE":
        routing["CanarySize" if traffic == "CANARY" else "LinearStepSize"] = size
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "MaximumExecutionTimeoutInSeconds": 600,
        }
    }
    if alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms]}
    return config


def test_traffic_steps_follow_the_deployment_config() -> None:
    assert traffic_steps(deployment_config({"traffic": "CANARY"}, ())) == [10, 100]
    linear = deployment_config({"traffic": "LINEAR", "step_percent": 30}, ())
    assert traffic_steps(linear) == [30, 60, 90, 100]
    assert traffic_steps(deployment_config({"traffic": "ALL_AT_ONCE"}, ())) == [100]
    assert traffic_steps(None) == [100]


def test_instance_count_sizes_are_shares_of_the_new_fleet() -> None:
    def routing(kind: str, key: str, value: int) -> dict[str, Any]:
        size = {"Type": "INSTANCE_COUNT", "Value": value}
        return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": kind, key: size}}}

    assert traffic_steps(routing("CANARY", "CanarySize", 1), instances=4) == [25, 100]
    assert traffic_steps(routing("LINEAR", "LinearStepSize", 1), instances=4) == [25, 50, 75, 100]
    assert traffic_steps(routing("CANARY", "CanarySize", 1), instances=2) == [50, 100]


def test_an_alarm_in_alarm_stops_the_shift_at_the_canary() -> None:
    config = deployment_config({"traffic": "CANARY"}, ("a-5xx", "a-latency"))
    steps: list[int] = []
    fired = shift_traffic(
        config,
        alarms_in_alarm=lambda names: [n for n in names if n == "a-latency"],
        bake_seconds=0,
        sleep=lambda _s: None,
        on_step=steps.append,
    )
    assert fired == "a-latency" and steps == [10]
    quiet = shift_traffic(
        config, alarms_in_alarm=lambda _n: [], bake_seconds=0, sleep=lambda _s: None
    )
    assert quiet is None


def _registry() -> tuple[ModelRegistry, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    registry = ModelRegistry(region="us-east-1", account="123456789012", put_tags=lambda *_: None)
    registry.on_state_change = events.append
    registry.dispatch("CreateModelPackageGroup", {"ModelPackageGroupName": "g"})
    return registry, events


def test_client_token_makes_a_retried_registration_the_same_version() -> None:
    registry, _ = _registry()
    request = {
        "ModelPackageGroupName": "g",
        "ModelApprovalStatus": "Approved",
        "InferenceSpecification": {"Containers": [{"Image": "i", "ModelDataUrl": "s3://b/m"}]},
        "ClientToken": "tok-1",
    }
    first = registry.dispatch("CreateModelPackage", request)["ModelPackageArn"]
    again = registry.dispatch("CreateModelPackage", request)["ModelPackageArn"]
    other = registry.dispatch("CreateModelPackage", {**request, "ClientToken": "tok-2"})
    assert first == again and first.endswith("/g/1")
    assert other["ModelPackageArn"].endswith("/g/2")


def test_a_status_change_emits_the_state_change_event_once() -> None:
    registry, events = _registry()
    arn = registry.dispatch(
        "CreateModelPackage",
        {"ModelPackageGroupName": "g", "ModelApprovalStatus": "PendingManualApproval"},
    )["ModelPackageArn"]
    registry.dispatch(
        "UpdateModelPackage", {"ModelPackageArn": arn, "ModelApprovalStatus": "Approved"}
    )
    registry.dispatch(
        "UpdateModelPackage", {"ModelPackageArn": arn, "ModelApprovalStatus": "Approved"}
    )
    statuses = [e["detail"]["ModelApprovalStatus"] for e in events]
    assert statuses == ["PendingManualApproval", "Approved"]
    assert events[-1]["detail-type"] == "SageMaker Model Package State Change"
    assert events[-1]["resources"] == [arn]
    with pytest.raises(RegistryError):
        registry.dispatch("DeleteModelPackageGroup", {"ModelPackageGroupName": "g"})


def test_the_local_run_summary_names_the_registered_version() -> None:
    from local.cli.report import summary_lines

    lines = summary_lines(
        {
            "confusion_matrix": {"tp": 1, "fp": 0, "tn": 1, "fn": 0},
            "metrics": {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0},
            "model_package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1",
            "approval_status": "Approved",
        }
    )
    assert lines[-1] == (
        "model version arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1 (Approved)"
    )


def test_list_model_package_groups_and_versions_page_filter_and_sort() -> None:
    registry, _ = _registry()
    for name in ("mnist-b", "mnist-a", "other"):
        registry.dispatch("CreateModelPackageGroup", {"ModelPackageGroupName": name})
    for _ in range(3):
        registry.dispatch(
            "CreateModelPackage", {"ModelPackageGroupName": "g", "ModelApprovalStatus": "Approved"}
        )
    seen: list[str] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"NameContains": "MNIST", "SortBy": "Name", "MaxResults": 1}
        if token:
            params["NextToken"] = token
        result = registry.dispatch("ListModelPackageGroups", params)
        seen += [g["ModelPackageGroupName"] for g in result["ModelPackageGroupSummaryList"]]
        token = result.get("NextToken")
        if not token:
            break
    assert seen == ["mnist-a", "mnist-b"]  # NameContains in any case, by name, one a page
    first = registry.dispatch("ListModelPackages", {"ModelPackageGroupName": "g", "MaxResults": 2})
    assert [p["ModelPackageVersion"] for p in first["ModelPackageSummaryList"]] == [1, 2]
    rest = registry.dispatch(
        "ListModelPackages",
        {"ModelPackageGroupName": "g", "MaxResults": 2, "NextToken": first["NextToken"]},
    )
    assert [p["ModelPackageVersion"] for p in rest["ModelPackageSummaryList"]] == [3]
    assert "NextToken" not in rest
