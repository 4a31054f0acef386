"""The lifecycle handlers: thin, settings from the environment, clients injected."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import ANY
from pipeline_testlib import (
    BUCKET,
    ENDPOINT,
    IMAGE,
    LOCK_TABLE,
    REGION,
    ROLE,
    SALT,
    STACK_TAG,
    endpoint_description,
    make_run,
    sagemaker_client,
    stubbed,
    tuning_description,
)

from lambdas import cleanup, cleanup_complete, endpoint_ttl, execution_ended, schedule_ttl
from pipeline_core.config import DEFAULTS
from pipeline_core.errors import InvalidConfigError
from pipeline_core.names import STACK_TAG_KEY
from pipeline_core.teardown import TeardownIncompleteError
from pipeline_core.ttl import schedule_name
from tests.lambdas.test_handlers import FakeContext

TOPIC = "arn:aws:sns:us-east-1:123456789012:PipelineTopic"
TTL_ARN = "arn:aws:lambda:us-east-1:123456789012:function:EndpointTtl"
STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:Pipeline"
ENV = {
    "PIPELINE_CONFIG": DEFAULTS.to_json(),
    "DATA_BUCKET": BUCKET,
    "SAGEMAKER_ROLE_ARN": ROLE,
    "LINEAR_LEARNER_IMAGE": IMAGE,
    "DEFAULT_ENDPOINT_NAME": ENDPOINT,
    "STACK_TAG": STACK_TAG,
    "AWS_REGION": REGION,
    "TOPIC_ARN": TOPIC,
    "TTL_FUNCTION_ARN": TTL_ARN,
    "SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/scheduler",
    "STATE_MACHINE_ARN": STATE_MACHINE,
    "DEPLOYMENT_SALT": SALT,
    "LOCK_TABLE": LOCK_TABLE,
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    return ENV


def _scheduler() -> Any:
    return boto3.client("scheduler", region_name=REGION)


def status_change(status: str, name: str = "exec-1") -> dict[str, Any]:
    """The event EventBridge delivers (built by hand: moto emits none)."""
    return {
        "version": "0",
        "id": "6f0d1b7e-0000-0000-0000-000000000000",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-11-30T13:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:states:us-east-1:123456789012:execution:Pipeline:{name}"],
        "detail": {
            "executionArn": f"arn:aws:states:us-east-1:123456789012:execution:Pipeline:{name}",
            "stateMachineArn": STATE_MACHINE,
            "name": name,
            "status": status,
            "startDate": 1_796_000_000_000,
            "stopDate": 1_796_000_600_000,
            "input": "{}",
            "output": None,
            "error": "States.Timeout" if status == "TIMED_OUT" else None,
            "cause": None,
        },
    }


@pytest.mark.parametrize("status", ["TIMED_OUT", "ABORTED", "FAILED"])
def test_execution_ended_stops_the_tuning_job_and_publishes_how_it_ended(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, status: str
) -> None:
    run = make_run("exec-1")
    sm, sns = sagemaker_client(), boto3.client("sns", region_name=REGION)
    ddb = boto3.client("dynamodb", region_name=REGION)
    monkeypatch.setattr(execution_ended, "_clients", lambda _s: (sm, sns, ddb, _scheduler()))
    tuning = run.names.tuning_job
    with stubbed(sm) as s, stubbed(sns) as n, stubbed(ddb) as d:
        s.add_response(
            "describe_hyper_parameter_tuning_job", tuning_description(tuning, "InProgress")
        )
        s.add_response(
            "stop_hyper_parameter_tuning_job",
            {},
            expected_params={"HyperParameterTuningJobName": tuning},
        )
        s.add_response(
            "describe_transform_job",
            {
                "TransformJobName": f"{tuning}-transform",
                "TransformJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{tuning}-transform",  # noqa: E501
                "TransformJobStatus": "Completed",
                "ModelName": "m",
                "TransformInput": {
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/k"}}
                },
                "TransformResources": {"InstanceType": "ml.m4.xlarge", "InstanceCount": 1},
                "CreationTime": "2026-11-30T13:00:00Z",
            },
        )
        # The endpoint lease the run still held is given back.
        d.add_response(
            "scan",
            {"Items": [{"pk": {"S": f"endpoint#{ENDPOINT}"}}]},
            expected_params={
                "TableName": LOCK_TABLE,
                "FilterExpression": "#h = :holder",
                "ExpressionAttributeNames": {"#h": "holder"},
                "ExpressionAttributeValues": {":holder": {"S": "exec-1"}},
                "ProjectionExpression": "pk",
            },
        )
        d.add_response(
            "delete_item",
            {},
            expected_params={
                "TableName": LOCK_TABLE,
                "Key": {"pk": {"S": f"endpoint#{ENDPOINT}"}},
                "ConditionExpression": "holder = :holder",
                "ExpressionAttributeValues": {":holder": {"S": "exec-1"}},
            },
        )
        if status != "ABORTED":  # the run's endpoint: none, so no TTL to make up for
            s.add_client_error(
                "describe_endpoint", "ValidationException", f'Could not find endpoint "{ENDPOINT}".'
            )
        n.add_response("publish", {"MessageId": "m-1"})
        out = execution_ended.handler(status_change(status), FakeContext())
    assert out["status"] == status
    assert out["released"]["endpoint_leases"] == {"released": [ENDPOINT]}
    assert out["released"]["tuning_job"]["stopped"] is True
    assert out["released"]["transform_job"] == {
        "name": f"{tuning}-transform",
        "stopped": False,
        "reason": "already Completed",
    }


def test_execution_ended_ignores_a_success(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(execution_ended, "_clients", lambda _s: pytest.fail("no calls"))
    assert execution_ended.handler(status_change("SUCCEEDED"), FakeContext())["released"] == {}


def test_schedule_ttl_needs_its_target(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TTL_FUNCTION_ARN")
    with pytest.raises(InvalidConfigError, match="TTL_FUNCTION_ARN"):
        schedule_ttl.handler(
            {"run": make_run().to_dict(), "deploy": {"endpoint_name": ENDPOINT}}, FakeContext()
        )


def test_schedule_ttl_handler_creates_the_schedule(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler = boto3.client("scheduler", region_name=REGION)
    monkeypatch.setattr(schedule_ttl, "_clients", lambda _s: scheduler)
    run = make_run("exec-1", {"endpoint": {"ttl_hours": 2}})
    with stubbed(scheduler) as stub:
        stub.add_response(
            "create_schedule",
            {
                "ScheduleArn": f"arn:aws:scheduler:us-east-1:123456789012:schedule/default/{schedule_name(ENDPOINT)}"  # noqa: E501
            },
        )
        out = schedule_ttl.handler(
            {"run": run.to_dict(), "deploy": {"endpoint_name": ENDPOINT}}, FakeContext()
        )
    assert out["action"] == "created" and out["deletes_at"].endswith("Z")


def test_endpoint_ttl_handler_deletes_and_notifies(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sm, sns = sagemaker_client(), boto3.client("sns", region_name=REGION)
    scheduler = boto3.client("scheduler", region_name=REGION)
    monkeypatch.setattr(endpoint_ttl, "_clients", lambda _s: (sm, sns, scheduler))
    with stubbed(sm) as s, stubbed(sns) as n:
        s.add_client_error(
            "describe_endpoint", "ValidationException", 'Could not find endpoint "x".'
        )
        n.add_response("publish", {"MessageId": "m-1"})
        out = endpoint_ttl.handler(
            {"endpoint_name": ENDPOINT, "schedule_name": "s", "deletes_at": "2026-11-30T15:00:00Z"},
            FakeContext(),
        )
    assert out["deleted"] == [] and "already deleted" in out["skipped"]


def test_endpoint_ttl_on_a_busy_endpoint_rearms_itself_instead_of_raising(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sm, sns = sagemaker_client(), boto3.client("sns", region_name=REGION)
    scheduler = boto3.client("scheduler", region_name=REGION)
    monkeypatch.setattr(endpoint_ttl, "_clients", lambda _s: (sm, sns, scheduler))
    busy = endpoint_description(ENDPOINT, "Updating", "old-config")
    context = FakeContext()
    with stubbed(sm) as s, stubbed(sns), stubbed(scheduler) as sch:  # nothing published
        s.add_response("describe_endpoint", busy)
        s.add_response("list_tags", {"Tags": [{"Key": STACK_TAG_KEY, "Value": STACK_TAG}]})
        s.add_response("describe_endpoint", busy)
        sch.add_response(
            "create_schedule",
            {"ScheduleArn": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/x"},
            expected_params={
                **{k: ANY for k in ("Name", "GroupName", "ScheduleExpression", "Description")},
                **{k: ANY for k in ("ScheduleExpressionTimezone", "FlexibleTimeWindow", "State")},
                "ActionAfterCompletion": "DELETE",
                "Target": {
                    # Its own ARN (from the context) and the scheduler role (from the env).
                    "Arn": context.invoked_function_arn,
                    "RoleArn": ENV["SCHEDULER_ROLE_ARN"],
                    "Input": ANY,
                    "RetryPolicy": ANY,
                },
            },
        )
        out = endpoint_ttl.handler(
            {"endpoint_name": ENDPOINT, "schedule_name": "s", "deletes_at": "2026-11-30T15:00:00Z"},
            context,
        )
    assert out["action"] == "rearmed" and out["rearms"] == 1


def test_endpoint_ttl_that_gives_up_says_so(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_CONFIG", DEFAULTS.to_json().replace(
        '"ttl_rearm_limit":16', '"ttl_rearm_limit":0'))  # fmt: skip
    sm, sns = sagemaker_client(), boto3.client("sns", region_name=REGION)
    scheduler = boto3.client("scheduler", region_name=REGION)
    monkeypatch.setattr(endpoint_ttl, "_clients", lambda _s: (sm, sns, scheduler))
    busy = endpoint_description(ENDPOINT, "Creating", "c")
    with stubbed(sm) as s, stubbed(sns) as n, stubbed(scheduler):
        s.add_response("describe_endpoint", busy)
        s.add_response("list_tags", {"Tags": [{"Key": STACK_TAG_KEY, "Value": STACK_TAG}]})
        n.add_response("publish", {"MessageId": "m-1"})
        out = endpoint_ttl.handler(
            {"endpoint_name": ENDPOINT, "schedule_name": "s", "deletes_at": "2026-11-30T15:00:00Z"},
            FakeContext(),
        )
    assert out["action"] == "gave_up"


def test_cleanup_on_delete_hands_a_deadline_to_is_complete(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Empty:
        def get_paginator(self, _op: str) -> Any:
            class P:
                def paginate(self, **_k: Any) -> list[dict[str, Any]]:
                    return [{}]

            return P()

    monkeypatch.setattr(cleanup, "_clients", lambda _s: Empty())
    monkeypatch.setattr(cleanup, "_lifecycle_clients", lambda _s: (Empty(), Empty()))
    out = cleanup.handler({"RequestType": "Delete", "PhysicalResourceId": "p"}, FakeContext())
    assert int(out["Data"]["Deadline"]) > 0


def test_cleanup_complete_waits_then_names_what_is_left(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sm = sagemaker_client()
    monkeypatch.setattr(cleanup_complete, "_clients", lambda _s: sm)
    creating = endpoint_description(ENDPOINT, "Creating", "c")
    listing = {
        "Endpoints": [
            {
                k: creating[k]
                for k in (
                    "EndpointName",
                    "EndpointArn",
                    "CreationTime",
                    "LastModifiedTime",
                    "EndpointStatus",
                )
            }
        ]
    }
    tags = {"Tags": [{"Key": STACK_TAG_KEY, "Value": STACK_TAG}]}
    event = {"RequestType": "Delete", "PhysicalResourceId": "p", "Data": {"Deadline": "1000"}}
    monkeypatch.setattr(cleanup_complete, "_now", lambda: 500.0)
    with stubbed(sm) as stub:
        stub.add_response("list_endpoints", listing, expected_params={"NameContains": "mnist-ll"})
        stub.add_response("list_tags", tags)
        assert cleanup_complete.handler(event, FakeContext()) == {"IsComplete": False}
    monkeypatch.setattr(cleanup_complete, "_now", lambda: 1000.0)
    with stubbed(sm) as stub, pytest.raises(TeardownIncompleteError, match=creating["EndpointArn"]):
        stub.add_response("list_endpoints", listing)
        stub.add_response("list_tags", tags)
        cleanup_complete.handler(event, FakeContext())
    assert cleanup_complete.handler({"RequestType": "Create"}, FakeContext()) == {
        "IsComplete": True
    }


def test_cleanup_complete_never_turns_a_bug_into_a_55_minute_wait(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Provider retries every error of isComplete until its total timeout
    (55 min), then the stack is DELETE_FAILED: an error that will not go away
    finishes the delete at once and is logged instead."""

    class Broken:
        def get_paginator(self, _op: str) -> Any:
            raise TypeError("a bug")

    monkeypatch.setattr(cleanup_complete, "_clients", lambda _s: Broken())
    monkeypatch.setattr(cleanup_complete, "_now", lambda: 500.0)
    event = {"RequestType": "Delete", "PhysicalResourceId": "p", "Data": {"Deadline": "1000"}}
    out = cleanup_complete.handler(event, FakeContext())
    assert out["IsComplete"] is True
    assert "TypeError" in out["Data"]["Unfinished"]


def test_handlers_get_only_json_able_results(env: dict[str, str]) -> None:
    json.dumps(status_change("ABORTED"))


def _release_nothing(s: Any, d: Any, tuning: str) -> None:
    """The run holds nothing: no tuning or transform job, no lease."""
    s.add_client_error(
        "describe_hyper_parameter_tuning_job", "ResourceNotFound", "no job", 404,
        expected_params={"HyperParameterTuningJobName": tuning},
    )  # fmt: skip
    s.add_client_error(
        "describe_transform_job", "ValidationException", "Could not find requested job"
    )
    d.add_response("scan", {"Items": []})


def test_a_failure_the_execution_notified_itself_is_not_published_again(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A named Fail state: NotifyFailure already published error and cause.
    event = status_change("FAILED")
    event["detail"]["error"] = "TuningJobFailedError"
    event["detail"]["cause"] = json.dumps({"errorMessage": "the job failed"})
    sm, sns = sagemaker_client(), boto3.client("sns", region_name=REGION)
    ddb = boto3.client("dynamodb", region_name=REGION)
    monkeypatch.setattr(execution_ended, "_clients", lambda _s: (sm, sns, ddb, _scheduler()))
    with stubbed(sm) as s, stubbed(sns), stubbed(ddb) as d:  # no publish expected
        _release_nothing(s, d, make_run("exec-1").names.tuning_job)
        s.add_client_error(
            "describe_endpoint", "ValidationException", f'Could not find endpoint "{ENDPOINT}".'
        )
        out = execution_ended.handler(event, FakeContext())
    assert out["published"] is False
    assert out["released"]["tuning_job"]["stopped"] is False


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("FAILED", "States.Runtime"),  # no Catch takes it: NotifyFailure never ran
        ("FAILED", None),
        ("TIMED_OUT", "States.Timeout"),
        ("ABORTED", None),
    ],
)
def test_what_the_execution_could_not_say_itself_is_published_once(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, status: str, error: str | None
) -> None:
    event = status_change(status)
    event["detail"]["error"] = error
    sm, sns = sagemaker_client(), boto3.client("sns", region_name=REGION)
    ddb = boto3.client("dynamodb", region_name=REGION)
    monkeypatch.setattr(execution_ended, "_clients", lambda _s: (sm, sns, ddb, _scheduler()))
    with stubbed(sm) as s, stubbed(sns) as n, stubbed(ddb) as d:
        _release_nothing(s, d, make_run("exec-1").names.tuning_job)
        if status != "ABORTED":
            s.add_client_error(
                "describe_endpoint", "ValidationException", f'Could not find endpoint "{ENDPOINT}".'
            )
        n.add_response("publish", {"MessageId": "m-1"})
        out = execution_ended.handler(event, FakeContext())
    assert out["published"] is True and out["status"] == status


def test_a_run_that_failed_to_schedule_its_ttl_after_deploy_gets_one_from_execution_ended(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # ScheduleEndpointTtl failed (throttled) after Deploy created the endpoint:
    # NotifyFailure told the topic, the run's endpoint has no TTL yet.
    event = status_change("FAILED")
    event["detail"]["error"] = "ThrottlingError"
    event["detail"]["cause"] = json.dumps({"errorMessage": "CreateSchedule: still throttled"})
    sm, sns = sagemaker_client(), boto3.client("sns", region_name=REGION)
    ddb, scheduler = boto3.client("dynamodb", region_name=REGION), _scheduler()
    monkeypatch.setattr(execution_ended, "_clients", lambda _s: (sm, sns, ddb, scheduler))
    run = make_run("exec-1")
    ep = endpoint_description(ENDPOINT, "Creating", run.names.endpoint_config)
    with stubbed(sm) as s, stubbed(sns), stubbed(ddb) as d, stubbed(scheduler) as sch:
        _release_nothing(s, d, run.names.tuning_job)
        s.add_response("describe_endpoint", ep, expected_params={"EndpointName": ENDPOINT})
        s.add_response(
            "list_tags",
            {"Tags": [{"Key": k, "Value": v} for k, v in run.tags]},
            expected_params={"ResourceArn": ep["EndpointArn"]},
        )
        sch.add_response(
            "create_schedule",
            {"ScheduleArn": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/x"},
            expected_params={
                **{k: ANY for k in ("GroupName", "ScheduleExpression", "Description", "State")},
                **{k: ANY for k in ("ScheduleExpressionTimezone", "FlexibleTimeWindow")},
                "Name": schedule_name(ENDPOINT),
                "ActionAfterCompletion": "DELETE",
                "Target": {
                    "Arn": TTL_ARN,
                    "RoleArn": ENV["SCHEDULER_ROLE_ARN"],
                    "Input": ANY,
                    "RetryPolicy": ANY,
                },
            },
        )
        out = execution_ended.handler(event, FakeContext())
    assert out["published"] is False
    assert out["released"]["endpoint_ttl"]["scheduled"] is True
    assert out["released"]["endpoint_ttl"]["created_by_run"] is True


def test_endpoint_ttl_targets_its_own_unqualified_arn() -> None:
    class Qualified(FakeContext):
        invoked_function_arn = f"{FakeContext.invoked_function_arn}:$LATEST"

    assert endpoint_ttl.own_arn(Qualified()) == FakeContext.invoked_function_arn
    assert endpoint_ttl.own_arn(FakeContext()) == FakeContext.invoked_function_arn
    assert endpoint_ttl.own_arn(object()) == ""
