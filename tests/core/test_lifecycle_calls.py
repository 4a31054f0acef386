"""Every AWS call the lifecycle code makes, checked by botocore's Stubber
against the real service models: Batch Transform, Scheduler, the endpoint
TTL deletion, the end-of-execution release, and the destroy teardown."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY
from pipeline_testlib import (
    IMAGE,
    REGION,
    ROLE,
    SALT,
    STACK_TAG,
    endpoint_description,
    make_run,
    sagemaker_client,
    stubbed,
    tuning_result,
    when,
)

from pipeline_core.awserrors import named_error
from pipeline_core.cleanup import delete_endpoint_resources
from pipeline_core.costs import cost_block, cost_line, endpoint_block, price_table
from pipeline_core.errors import (
    EndpointBusyError,
    EvaluationError,
    InstanceTypeUnavailableError,
    NameCollisionError,
    PollLimitExceededError,
)
from pipeline_core.names import STACK_TAG_KEY
from pipeline_core.recordio import encode_dense
from pipeline_core.release import (
    EndedExecution,
    ReleaseContext,
    ended_message,
    ensure_endpoint_ttl,
    notified_by_execution,
    register_release_step,
    release_run,
)
from pipeline_core.teardown import (
    TeardownIncompleteError,
    delete_ttl_schedules,
    stop_executions,
    stop_transform_jobs,
    teardown_poll,
)
from pipeline_core.transform import (
    build_transform_request,
    describe_transform,
    evaluate_transform_output,
    start_transform,
    transform_job_name,
)
from pipeline_core.ttl import (
    TtlTarget,
    expire_endpoint,
    rearm_schedule_name,
    schedule_endpoint_ttl,
    schedule_name,
)

DATA = {
    "test_uri": "s3://b/runs/exec-1/data/test/",
    "files": {"test": "s3://b/runs/exec-1/data/test/test.rec"},
}
SM_ARN = "arn:aws:sagemaker:us-east-1:123456789012"
TTL_ARN = "arn:aws:lambda:us-east-1:123456789012:function:EndpointTtl"
SCHEDULER_ROLE = "arn:aws:iam::123456789012:role/scheduler"
TOPIC = "arn:aws:sns:us-east-1:123456789012:topic"
STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:Pipeline"
OURS = [{"Key": STACK_TAG_KEY, "Value": STACK_TAG}]


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def client_error(code: str, message: str = "boom", op: str = "Op") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, op)


# -- Batch Transform (endpoint mode none) ----------------------------------------------


def test_start_transform_creates_model_and_job_that_the_service_model_accepts() -> None:
    run = make_run("exec-1", {"endpoint": {"mode": "none"}})
    request = build_transform_request(run, DATA)
    assert request["TransformInput"]["SplitType"] == "RecordIO"
    assert request["TransformOutput"]["Accept"] == "application/jsonlines"
    assert request["TransformResources"] == {"InstanceType": "ml.m4.xlarge", "InstanceCount": 1}
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_response("create_model", {"ModelArn": f"{SM_ARN}:model/m"})
        stub.add_response(
            "create_transform_job",
            {"TransformJobArn": f"{SM_ARN}:transform-job/t"},
            expected_params=request,
        )
        out = start_transform(
            run, make_config(), tuning_result(), DATA, sm, image_uri=IMAGE, role_arn=ROLE
        )
    assert out["mode"] == "none" and out["endpoint_name"] is None
    assert out["transform_job_name"] == transform_job_name(run)
    assert out["output_uri"] == f"s3://{run.bucket}/{run.prefix}transform/test.rec.out"


def make_config() -> Any:
    from pipeline_core.config import DEFAULTS

    return DEFAULTS


def _model_and_job_exist(stub: Any, run: Any, tags: list[dict[str, str]]) -> None:
    model = f"{SM_ARN}:model/{run.names.model}"
    job = transform_job_name(run)
    stub.add_client_error(
        "create_model", "ValidationException", f'Cannot create already existing model "{model}".'
    )
    stub.add_response(
        "describe_model",
        {"ModelName": run.names.model, "ModelArn": model, "CreationTime": when(0)},
        expected_params={"ModelName": run.names.model},
    )
    stub.add_response("list_tags", {"Tags": tags}, expected_params={"ResourceArn": model})
    if tags != run.tag_list():
        return
    stub.add_client_error("create_transform_job", "ResourceInUse", "already exists")
    stub.add_response(
        "describe_transform_job",
        {
            **_transform_description("InProgress", ended=False),
            "TransformJobName": job,
            "TransformJobArn": f"{SM_ARN}:transform-job/{job}",
        },
        expected_params={"TransformJobName": job},
    )
    stub.add_response(
        "list_tags",
        {"Tags": tags},
        expected_params={"ResourceArn": f"{SM_ARN}:transform-job/{job}"},
    )


def test_a_retried_start_transform_adopts_both_when_they_are_this_runs() -> None:
    run = make_run("exec-1", {"endpoint": {"mode": "none"}})
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        _model_and_job_exist(stub, run, run.tag_list())
        start_transform(
            run, make_config(), tuning_result(), DATA, sm, image_uri=IMAGE, role_arn=ROLE
        )


def test_start_transform_never_adopts_a_model_of_another_stack() -> None:
    run = make_run("exec-1", {"endpoint": {"mode": "none"}})
    sm = sagemaker_client()
    with stubbed(sm) as stub:  # and no CreateTransformJob after it
        _model_and_job_exist(stub, run, [{"Key": STACK_TAG_KEY, "Value": "Beta"}])
        with pytest.raises(NameCollisionError, match=f"model {run.names.model}"):
            start_transform(
                run, make_config(), tuning_result(), DATA, sm, image_uri=IMAGE, role_arn=ROLE
            )


def test_unoffered_instance_type_is_a_named_error_naming_the_keys() -> None:
    e = client_error(
        "ValidationException", "The instance type ml.c4.xlarge is not supported in eu-north-1"
    )
    named = named_error(e, "CreateHyperParameterTuningJob")
    assert isinstance(named, InstanceTypeUnavailableError)
    assert "training_instance_type" in str(named)
    endpoint = named_error(e, "CreateEndpointConfig")
    assert "endpoint.instance_type" in str(endpoint)
    other = client_error("ValidationException", "Could not find model")
    assert named_error(other, "CreateEndpointConfig") is other


def _transform_description(status: str, *, ended: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "TransformJobName": "t",
        "TransformJobArn": f"{SM_ARN}:transform-job/t",
        "TransformJobStatus": status,
        "ModelName": "m",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/k"}}
        },
        "TransformResources": {"InstanceType": "ml.m4.xlarge", "InstanceCount": 1},
        "CreationTime": when(0),
        "TransformStartTime": when(10),
    }
    if ended:
        out["TransformEndTime"] = when(70)
    return out


@pytest.mark.parametrize(
    ("raw", "status", "seconds"),
    [
        ("InProgress", "InProgress", 0.0),
        ("Stopping", "InProgress", 0.0),
        ("Completed", "Completed", 60.0),
        ("Failed", "Failed", 60.0),
    ],
)
def test_describe_transform_normalises_status_and_measures_seconds(
    raw: str, status: str, seconds: float
) -> None:
    run = make_run("exec-1", {"endpoint": {"mode": "none"}})
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_response(
            "describe_transform_job",
            _transform_description(raw, ended=seconds > 0),
            expected_params={"TransformJobName": "t"},
        )
        out = describe_transform(run, {"transform_job_name": "t"}, {"polls": 2}, sm)
    assert (out["status"], out["polls"], out["seconds"]) == (status, 3, seconds)


def test_describe_transform_has_a_poll_bound() -> None:
    run = make_run("exec-1", {"endpoint": {"mode": "none"}})
    sm = sagemaker_client()
    with stubbed(sm) as stub, pytest.raises(PollLimitExceededError):
        stub.add_response(
            "describe_transform_job", _transform_description("InProgress", ended=False)
        )
        describe_transform(run, {"transform_job_name": "t"}, {"polls": run.max_polls}, sm)


def test_transform_output_evaluates_like_the_endpoint() -> None:
    features = np.zeros((4, 3), dtype=np.float32)
    labels = np.array([1, 0, 1, 0], dtype=np.float32)
    test = encode_dense(features, labels)
    lines = [
        {"score": s, "predicted_label": p} for s, p in ((0.9, 1), (0.2, 0), (0.4, 0), (0.7, 1))
    ]
    output = "\n".join(json.dumps(x) for x in lines).encode() + b"\n"
    report = evaluate_transform_output(test, output, feature_dim=3)
    assert report["confusion_matrix"] == {"tp": 1, "fp": 1, "tn": 1, "fn": 1}
    assert report["single_prediction"] == {"score": 0.9, "predicted_label": 1, "actual_label": 1}
    with pytest.raises(EvaluationError, match="3 predictions for 4"):
        evaluate_transform_output(test, b"\n".join(output.splitlines()[:3]), feature_dim=3)


# -- the TTL schedule -------------------------------------------------------------------


NOW = datetime(2026, 11, 30, 13, 0, 5, tzinfo=UTC)


def _schedule(**kw: Any) -> dict[str, Any]:
    return schedule_endpoint_ttl(
        endpoint_name="mnist-ll-endpoint", scheduler=kw.pop("scheduler"), target_arn=TTL_ARN,
        role_arn=SCHEDULER_ROLE, stack_tag=STACK_TAG, now=NOW, **kw,
    )  # fmt: skip


def test_ttl_creates_a_one_time_schedule_that_deletes_itself() -> None:
    scheduler = client("scheduler")
    name = schedule_name("mnist-ll-endpoint")
    with stubbed(scheduler) as stub:
        stub.add_response(
            "create_schedule",
            {"ScheduleArn": f"arn:aws:scheduler:us-east-1:123456789012:schedule/default/{name}"},
        )
        out = _schedule(scheduler=scheduler, ttl_hours=2)
    assert out == {"schedule_name": name, "deletes_at": "2026-11-30T15:00:05Z", "action": "created"}


def test_ttl_request_shape() -> None:
    from pipeline_core.ttl import build_schedule_request

    request = build_schedule_request(
        endpoint_name="mnist-ll-endpoint", deletes_at=NOW, target_arn=TTL_ARN,
        role_arn=SCHEDULER_ROLE, stack_tag=STACK_TAG,
    )  # fmt: skip
    assert request["ScheduleExpression"] == "at(2026-11-30T13:00:05)"
    assert request["ActionAfterCompletion"] == "DELETE"
    assert request["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert json.loads(request["Target"]["Input"])["endpoint_name"] == "mnist-ll-endpoint"
    scheduler = client("scheduler")
    with stubbed(scheduler) as stub:
        stub.add_response(
            "create_schedule",
            {"ScheduleArn": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/x"},
            expected_params=request,
        )
        scheduler.create_schedule(**request)


def test_a_later_run_moves_the_existing_schedule() -> None:
    scheduler = client("scheduler")
    with stubbed(scheduler) as stub:
        stub.add_client_error("create_schedule", "ConflictException", "exists", 409)
        stub.add_response(
            "update_schedule",
            {"ScheduleArn": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/x"},
        )
        out = _schedule(scheduler=scheduler, ttl_hours=5)
    assert out["action"] == "moved" and out["deletes_at"] == "2026-11-30T18:00:05Z"


@pytest.mark.parametrize(
    ("error", "action"), [(None, "removed"), ("ResourceNotFoundException", "none")]
)
def test_ttl_zero_keeps_the_endpoint_and_removes_any_schedule(
    error: str | None, action: str
) -> None:
    scheduler = client("scheduler")
    with stubbed(scheduler) as stub:
        params = {"Name": schedule_name("mnist-ll-endpoint"), "GroupName": "default"}
        if error:
            stub.add_client_error("delete_schedule", error, "no", 404, expected_params=params)
        else:
            stub.add_response("delete_schedule", {}, expected_params=params)
        out = _schedule(scheduler=scheduler, ttl_hours=0)
    assert out == {"schedule_name": None, "deletes_at": None, "action": action}


def test_schedule_names_are_stable_distinct_and_short() -> None:
    long_a, long_b = "mnist-ll-" + "a" * 54, "mnist-ll-" + "a" * 53 + "b"
    assert schedule_name(long_a) != schedule_name(long_b)
    assert len(schedule_name(long_a)) <= 64
    assert schedule_name("mnist-ll-endpoint") == schedule_name("mnist-ll-endpoint")
    assert schedule_name("mnist-ll-endpoint").startswith("mnist-ll-")


# -- the TTL deletion ------------------------------------------------------------------------


def test_ttl_deletion_removes_endpoint_its_config_and_model() -> None:
    sm = sagemaker_client()
    ep = endpoint_description("mnist-ll-endpoint", "InService", "mnist-ll-x-config")
    with stubbed(sm) as stub:
        stub.add_response(
            "describe_endpoint", ep, expected_params={"EndpointName": "mnist-ll-endpoint"}
        )
        stub.add_response(
            "list_tags", {"Tags": OURS}, expected_params={"ResourceArn": ep["EndpointArn"]}
        )
        stub.add_response(
            "describe_endpoint_config",
            {
                "EndpointConfigName": "mnist-ll-x-config",
                "EndpointConfigArn": f"{SM_ARN}:endpoint-config/mnist-ll-x-config",
                "ProductionVariants": [
                    {"VariantName": "AllTraffic", "ModelName": "mnist-ll-x-model"}
                ],
                "CreationTime": when(0),
            },
            expected_params={"EndpointConfigName": "mnist-ll-x-config"},
        )
        stub.add_response(
            "delete_endpoint", {}, expected_params={"EndpointName": "mnist-ll-endpoint"}
        )
        stub.add_response(
            "delete_endpoint_config",
            {},
            expected_params={"EndpointConfigName": "mnist-ll-x-config"},
        )
        stub.add_response("delete_model", {}, expected_params={"ModelName": "mnist-ll-x-model"})
        out = delete_endpoint_resources(sm, endpoint_name="mnist-ll-endpoint", stack_tag=STACK_TAG)
    assert [d["kind"] for d in out["deleted"]] == ["endpoint", "endpoint_config", "model"]


def test_ttl_deletion_leaves_foreign_endpoints_and_retries_busy_ones() -> None:
    sm = sagemaker_client()
    ep = endpoint_description("mnist-ll-endpoint", "InService", "c")
    with stubbed(sm) as stub:
        stub.add_response("describe_endpoint", ep)
        stub.add_response("list_tags", {"Tags": [{"Key": STACK_TAG_KEY, "Value": "Other"}]})
        out = delete_endpoint_resources(sm, endpoint_name="mnist-ll-endpoint", stack_tag=STACK_TAG)
    assert out["deleted"] == [] and "left alone" in out["skipped"]
    busy = endpoint_description("mnist-ll-endpoint", "Updating", "c")
    with stubbed(sm) as stub, pytest.raises(EndpointBusyError):
        stub.add_response("describe_endpoint", busy)
        stub.add_response("list_tags", {"Tags": OURS})
        delete_endpoint_resources(sm, endpoint_name="mnist-ll-endpoint", stack_tag=STACK_TAG)
    with stubbed(sm) as stub:
        stub.add_client_error(
            "describe_endpoint", "ValidationException", 'Could not find endpoint "x".'
        )
        gone = delete_endpoint_resources(sm, endpoint_name="mnist-ll-endpoint", stack_tag=STACK_TAG)
    assert "already deleted" in gone["skipped"]


# -- a TTL that fires on a busy endpoint re-arms itself ----------------------------------------

TARGET = TtlTarget(function_arn=TTL_ARN, role_arn=SCHEDULER_ROLE, stack_tag=STACK_TAG)
FIRST = {
    "endpoint_name": "mnist-ll-endpoint",
    "schedule_name": schedule_name("mnist-ll-endpoint"),
    "deletes_at": "2026-11-30T13:00:00Z",
}


def _expire(sm: Any, scheduler: Any, event: dict[str, Any], limit: int = 3) -> dict[str, Any]:
    return expire_endpoint(
        sm, scheduler, event, target=TARGET, rearm_minutes=15, rearm_limit=limit, now=NOW
    )


def _rearmed(rearms: int, config: str = "old-config") -> dict[str, Any]:
    name = rearm_schedule_name("mnist-ll-endpoint", FIRST["deletes_at"], rearms)
    return {**FIRST, "rearms": rearms, "endpoint_config": config, "schedule_name": name}


@pytest.mark.parametrize("status", ["Creating", "Updating", "SystemUpdating", "RollingBack"])
def test_a_ttl_that_finds_the_endpoint_busy_schedules_itself_again(status: str) -> None:
    sm, scheduler = sagemaker_client(), client("scheduler")
    busy = endpoint_description("mnist-ll-endpoint", status, "old-config")
    name = rearm_schedule_name("mnist-ll-endpoint", FIRST["deletes_at"], 1)
    with stubbed(sm) as s, stubbed(scheduler) as sch:
        s.add_response("describe_endpoint", busy)
        s.add_response("list_tags", {"Tags": OURS})
        s.add_response("describe_endpoint", busy)
        sch.add_response(
            "create_schedule",
            {"ScheduleArn": f"arn:aws:scheduler:us-east-1:123456789012:schedule/default/{name}"},
            expected_params={
                "Name": name,
                "GroupName": "default",
                "ScheduleExpression": "at(2026-11-30T13:15:05)",
                "ScheduleExpressionTimezone": "UTC",
                "FlexibleTimeWindow": {"Mode": "OFF"},
                "ActionAfterCompletion": "DELETE",
                "State": "ENABLED",
                "Description": ANY,
                "Target": {
                    "Arn": TTL_ARN,
                    "RoleArn": SCHEDULER_ROLE,
                    "Input": json.dumps(
                        {
                            **FIRST,
                            "schedule_name": name,
                            "rearms": 1,
                            "endpoint_config": "old-config",
                        }
                    ),
                    "RetryPolicy": ANY,
                },
            },
        )
        out = _expire(sm, scheduler, FIRST)
    assert out["action"] == "rearmed" and out["rearms"] == 1
    assert out["fires_at"] == "2026-11-30T13:15:05Z" and out["deleted"] == []
    # Never the name of the schedule that just fired (it may still exist).
    assert name != FIRST["schedule_name"] and len(name) <= 64 and name.startswith("mnist-ll-")


def test_a_retried_rearm_finds_its_schedule_and_names_stay_short() -> None:
    sm, scheduler = sagemaker_client(), client("scheduler")
    busy = endpoint_description("mnist-ll-endpoint", "Updating", "old-config")
    with stubbed(sm) as s, stubbed(scheduler) as sch:
        s.add_response("describe_endpoint", busy)
        s.add_response("describe_endpoint", busy)
        s.add_response("list_tags", {"Tags": OURS})
        sch.add_client_error("get_schedule", "ResourceNotFoundException", "no", 404)
        sch.add_client_error("create_schedule", "ConflictException", "exists", 409)
        out = _expire(sm, scheduler, _rearmed(1))
    assert out["action"] == "rearmed" and out["rearms"] == 2
    long_name = "mnist-ll-" + "a" * 54
    assert len(rearm_schedule_name(long_name, "2026-11-30T13:00:00Z", 99)) <= 64
    assert rearm_schedule_name(long_name, "2026-11-30T13:00:00Z", 1) != rearm_schedule_name(
        long_name, "2026-11-30T13:00:00Z", 2
    )


def test_a_ttl_still_busy_after_its_last_rearm_gives_up_without_raising() -> None:
    sm, scheduler = sagemaker_client(), client("scheduler")
    busy = endpoint_description("mnist-ll-endpoint", "SystemUpdating", "old-config")
    with stubbed(sm) as s, stubbed(scheduler) as sch:
        s.add_response("describe_endpoint", busy)
        sch.add_client_error("get_schedule", "ResourceNotFoundException", "no", 404)
        s.add_response("describe_endpoint", busy)
        s.add_response("list_tags", {"Tags": OURS})
        out = _expire(sm, scheduler, _rearmed(3), limit=3)
    assert out["action"] == "gave_up" and "SystemUpdating" in out["skipped"]


def test_a_rearmed_ttl_yields_to_a_later_deployment() -> None:
    sm, scheduler = sagemaker_client(), client("scheduler")
    moved = endpoint_description("mnist-ll-endpoint", "InService", "new-config")
    with stubbed(sm) as s:
        s.add_response("describe_endpoint", moved)
        out = _expire(sm, scheduler, _rearmed(1))
    assert out["action"] == "superseded" and "new-config" in out["skipped"]
    same = endpoint_description("mnist-ll-endpoint", "InService", "old-config")
    newer = {"endpoint_name": "mnist-ll-endpoint", "deletes_at": "2026-12-01T13:00:00Z"}
    with stubbed(sm) as s, stubbed(scheduler) as sch:
        s.add_response("describe_endpoint", same)
        sch.add_response(
            "get_schedule",
            {"Name": FIRST["schedule_name"],
             "Target": {"Arn": TTL_ARN, "RoleArn": SCHEDULER_ROLE, "Input": json.dumps(newer)}},
            expected_params={"Name": FIRST["schedule_name"], "GroupName": "default"},
        )  # fmt: skip
        out = _expire(sm, scheduler, _rearmed(1))
    assert out["action"] == "superseded" and "2026-12-01T13:00:00Z" in out["skipped"]


def test_a_rearmed_ttl_deletes_once_the_endpoint_is_deletable() -> None:
    sm, scheduler = sagemaker_client(), client("scheduler")
    ep = endpoint_description("mnist-ll-endpoint", "InService", "old-config")
    with stubbed(sm) as s, stubbed(scheduler) as sch:
        s.add_response("describe_endpoint", ep)
        sch.add_client_error("get_schedule", "ResourceNotFoundException", "no", 404)
        s.add_response("describe_endpoint", ep)
        s.add_response("list_tags", {"Tags": OURS})
        s.add_client_error("describe_endpoint_config", "ValidationException", "Could not find x")
        s.add_response("delete_endpoint", {}, expected_params={"EndpointName": "mnist-ll-endpoint"})
        s.add_client_error("delete_endpoint_config", "ValidationException", "Could not find x")
        out = _expire(sm, scheduler, _rearmed(2))
    assert out["action"] == "deleted"
    assert [d["kind"] for d in out["deleted"]] == ["endpoint"]


# -- the end of an execution -----------------------------------------------------------------


def _ended(status: str = "ABORTED") -> EndedExecution:
    return EndedExecution.from_event(
        {
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "detail": {
                "executionArn": f"{STATE_MACHINE.replace('stateMachine', 'execution')}:exec-1",
                "stateMachineArn": STATE_MACHINE,
                "name": "exec-1",
                "status": status,
                "error": None,
                "cause": None,
            },
        }
    )


def _tuning_description(name: str, status: str) -> dict[str, Any]:
    from pipeline_testlib import tuning_description

    return tuning_description(name, status)


def test_release_stops_the_running_tuning_job_and_skips_a_transform_never_started() -> None:
    run = make_run("exec-1")
    tuning = run.names.tuning_job
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_response(
            "describe_hyper_parameter_tuning_job",
            _tuning_description(tuning, "InProgress"),
            expected_params={"HyperParameterTuningJobName": tuning},
        )
        stub.add_response(
            "stop_hyper_parameter_tuning_job",
            {},
            expected_params={"HyperParameterTuningJobName": tuning},
        )
        stub.add_client_error(
            "describe_transform_job",
            "ValidationException",
            "Could not find requested job",
            expected_params={"TransformJobName": f"{tuning}-transform"},
        )
        released = release_run(
            _ended(),
            ReleaseContext(
                clients={"sagemaker": sm}, name_prefix="mnist-ll", stack_tag=STACK_TAG, salt=SALT
            ),
        )
    assert released["tuning_job"] == {"name": tuning, "stopped": True}
    assert released["endpoint_leases"]["released"] == []  # no lease table given
    assert released["transform_job"]["stopped"] is False
    message = ended_message(_ended(), released)
    assert message["status"] == "ABORTED" and "was stopped" in message["summary"]


def test_release_steps_are_an_extension_point_and_one_failure_skips_none() -> None:
    from pipeline_core import release

    calls: list[str] = []

    def broken(_e: EndedExecution, _c: ReleaseContext) -> dict[str, Any]:
        raise RuntimeError("lease table unreachable")

    def lease(e: EndedExecution, _c: ReleaseContext) -> dict[str, Any]:
        calls.append(e.execution_name)
        return {"released": True}

    saved = list(release.RELEASE_STEPS)
    try:
        register_release_step("broken", broken)
        register_release_step("lease", lease)
        out = release_run(
            _ended("TIMED_OUT"),
            ReleaseContext(clients={}, name_prefix="mnist-ll", stack_tag=STACK_TAG),
            steps=[s for s in release.RELEASE_STEPS if s[0] in ("broken", "lease")],
        )
    finally:
        release.RELEASE_STEPS[:] = saved
    assert out["broken"] == {"error": "RuntimeError: lease table unreachable"}
    assert out["lease"] == {"released": True} and calls == ["exec-1"]


# -- a run that deployed but never scheduled its TTL ------------------------------------------

ENDPOINT_NAME = "mnist-ll-endpoint"


def _failed(name: str = "exec-2", status: str = "FAILED") -> EndedExecution:
    return EndedExecution.from_event(
        {
            "detail": {
                "executionArn": f"{STATE_MACHINE.replace('stateMachine', 'execution')}:{name}",
                "stateMachineArn": STATE_MACHINE,
                "name": name,
                "status": status,
                "input": json.dumps({"endpoint": {"ttl_hours": 3}}),
                "error": "ThrottlingError",
                "cause": "ScheduleEndpointTtl: CreateSchedule still throttled",
            }
        }
    )


def _ttl_ctx(sm: Any, scheduler: Any, name: str = "exec-2", **run: Any) -> ReleaseContext:
    return ReleaseContext(
        clients={"sagemaker": sm, "scheduler": scheduler},
        name_prefix="mnist-ll",
        stack_tag=STACK_TAG,
        salt=SALT,
        run=make_run(name, {"endpoint": {"ttl_hours": 3, **run}}),
        ttl=TARGET,
        ttl_soon_minutes=15,
    )


def _ttl_schedule_params(deletes_at: str, at: str) -> dict[str, Any]:
    name = schedule_name(ENDPOINT_NAME)
    return {
        "Name": name, "GroupName": "default", "ScheduleExpression": f"at({at})",
        "ScheduleExpressionTimezone": "UTC", "FlexibleTimeWindow": {"Mode": "OFF"},
        "ActionAfterCompletion": "DELETE", "State": "ENABLED", "Description": ANY,
        "Target": {
            "Arn": TTL_ARN, "RoleArn": SCHEDULER_ROLE, "RetryPolicy": ANY,
            "Input": json.dumps({"endpoint_name": ENDPOINT_NAME, "schedule_name": name,
                                 "deletes_at": deletes_at}),
        },
    }  # fmt: skip


def _tags(execution: str) -> dict[str, Any]:
    return {"Tags": [*OURS, {"Key": "mnist-ll:execution", "Value": execution}]}


def test_a_run_that_updated_an_endpoint_but_never_scheduled_its_ttl_gets_one() -> None:
    sm, scheduler = sagemaker_client(), client("scheduler")
    config = make_run("exec-2").names.endpoint_config
    # An earlier run created the endpoint; this one is moving it to its config.
    ep = endpoint_description(ENDPOINT_NAME, "Updating", "earlier-config")
    ep["PendingDeploymentSummary"] = {"EndpointConfigName": config}
    with stubbed(sm) as s, stubbed(scheduler) as sch:
        s.add_response("describe_endpoint", ep, expected_params={"EndpointName": ENDPOINT_NAME})
        s.add_response(
            "list_tags", _tags("exec-1"), expected_params={"ResourceArn": ep["EndpointArn"]}
        )
        sch.add_response(
            "create_schedule",
            {"ScheduleArn": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/x"},
            expected_params=_ttl_schedule_params("2026-11-30T16:00:05Z", "2026-11-30T16:00:05"),
        )
        out = ensure_endpoint_ttl(_failed(), _ttl_ctx(sm, scheduler), now=NOW)
    # ttl_hours from now, as ScheduleEndpointTtl would have: never sooner than asked.
    assert out["scheduled"] is True and out["created_by_run"] is False


def test_an_endpoint_the_failed_run_created_is_deleted_soon() -> None:
    sm, scheduler = sagemaker_client(), client("scheduler")
    config = make_run("exec-2").names.endpoint_config
    ep = endpoint_description(ENDPOINT_NAME, "Creating", config)
    with stubbed(sm) as s, stubbed(scheduler) as sch:
        s.add_response("describe_endpoint", ep)
        s.add_response("list_tags", _tags("exec-2"))
        sch.add_response(
            "create_schedule",
            {"ScheduleArn": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/x"},
            expected_params=_ttl_schedule_params("2026-11-30T13:15:05Z", "2026-11-30T13:15:05"),
        )
        out = ensure_endpoint_ttl(_failed(), _ttl_ctx(sm, scheduler), now=NOW)
    assert out["scheduled"] is True and out["created_by_run"] is True


def test_an_existing_ttl_schedule_is_kept() -> None:
    sm, scheduler = sagemaker_client(), client("scheduler")
    ep = endpoint_description(ENDPOINT_NAME, "InService", make_run("exec-2").names.endpoint_config)
    with stubbed(sm) as s, stubbed(scheduler) as sch:
        s.add_response("describe_endpoint", ep)
        s.add_response("list_tags", _tags("exec-1"))
        sch.add_client_error("create_schedule", "ConflictException", "exists", 409)
        out = ensure_endpoint_ttl(_failed(), _ttl_ctx(sm, scheduler), now=NOW)
    assert out == {"scheduled": False, "endpoint": ENDPOINT_NAME, "reason": "a TTL schedule exists"}


@pytest.mark.parametrize(
    ("config", "tags", "reason"),
    [
        # An earlier run's config still serves (this run never deployed, or rolled back).
        ("earlier-config", _tags("exec-1"), "did not deploy"),
        (None, {"Tags": [{"Key": STACK_TAG_KEY, "Value": "Other"}]}, "not this stack's"),
    ],
)
def test_an_endpoint_serving_an_earlier_run_or_another_stack_is_left_alone(
    config: str | None, tags: dict[str, Any], reason: str
) -> None:
    sm, scheduler = sagemaker_client(), client("scheduler")
    ep = endpoint_description(
        ENDPOINT_NAME, "InService", config or make_run("exec-2").names.endpoint_config
    )
    with stubbed(sm) as s, stubbed(scheduler):  # no schedule
        s.add_response("describe_endpoint", ep)
        if config is None:
            s.add_response("list_tags", tags)
        out = ensure_endpoint_ttl(_failed(), _ttl_ctx(sm, scheduler), now=NOW)
    assert out["scheduled"] is False and reason in out["reason"]


@pytest.mark.parametrize(
    ("status", "run"), [("ABORTED", {}), ("FAILED", {"ttl_hours": 0}), ("FAILED", {"mode": "none"})]
)
def test_no_ttl_is_made_up_after_a_stop_or_for_a_kept_endpoint(
    status: str, run: dict[str, Any]
) -> None:
    sm, scheduler = sagemaker_client(), client("scheduler")
    ctx = _ttl_ctx(sm, scheduler, **run) if "mode" not in run else ReleaseContext(
        clients={"sagemaker": sm, "scheduler": scheduler}, name_prefix="mnist-ll",
        stack_tag=STACK_TAG, salt=SALT, run=make_run("exec-2", {"endpoint": {"mode": "none"}}),
        ttl=TARGET,
    )  # fmt: skip
    with stubbed(sm), stubbed(scheduler):  # no calls
        out = ensure_endpoint_ttl(_failed(status=status), ctx, now=NOW)
    assert out["scheduled"] is False


@pytest.mark.parametrize(
    ("status", "error", "notified"),
    [
        ("FAILED", "TuningJobFailedError", True),
        ("FAILED", "States.TaskFailed", True),  # caught by States.ALL → PipelineFailed
        ("FAILED", "States.Runtime", False),  # no Catch takes it
        ("FAILED", "States.DataLimitExceeded", False),
        ("FAILED", None, False),
        ("TIMED_OUT", "States.Timeout", False),
        ("ABORTED", None, False),
    ],
)
def test_the_execution_notified_only_failures_that_reached_a_named_fail_state(
    status: str, error: str | None, notified: bool
) -> None:
    ended = EndedExecution(
        execution_arn="arn", execution_name="e", state_machine_arn="sm", status=status, error=error
    )
    assert notified_by_execution(ended) is notified


def test_not_an_execution_event_is_refused() -> None:
    with pytest.raises(ValueError, match="status change"):
        EndedExecution.from_event({"detail": {}})


# -- destroy ---------------------------------------------------------------------------------


def test_destroy_stops_running_executions() -> None:
    sfn = client("stepfunctions")
    arn = f"{STATE_MACHINE.replace('stateMachine', 'execution')}:e1"
    with stubbed(sfn) as stub:
        stub.add_response(
            "list_executions",
            {
                "executions": [
                    {
                        "executionArn": arn,
                        "stateMachineArn": STATE_MACHINE,
                        "name": "e1",
                        "status": "RUNNING",
                        "startDate": when(0),
                    }
                ]
            },
            expected_params={"stateMachineArn": STATE_MACHINE, "statusFilter": "RUNNING"},
        )
        stub.add_response(
            "stop_execution",
            {"stopDate": when(1)},
            expected_params={
                "executionArn": arn,
                "error": "StackDeleted",
                "cause": "the stack is being deleted",
            },
        )
        assert stop_executions(sfn, STATE_MACHINE, print) == [arn]


def test_destroy_stops_our_transform_jobs_only() -> None:
    sm = sagemaker_client()
    jobs = [
        {
            "TransformJobName": f"mnist-ll-{x}-transform",
            "TransformJobArn": f"{SM_ARN}:transform-job/mnist-ll-{x}-transform",
            "CreationTime": when(0),
            "TransformJobStatus": "InProgress",
        }
        for x in ("a", "b")
    ]
    with stubbed(sm) as stub:
        stub.add_response(
            "list_transform_jobs",
            {"TransformJobSummaries": jobs},
            expected_params={"NameContains": "mnist-ll", "StatusEquals": "InProgress"},
        )
        stub.add_response("list_tags", {"Tags": OURS})
        stub.add_response(
            "stop_transform_job", {}, expected_params={"TransformJobName": "mnist-ll-a-transform"}
        )
        stub.add_response("list_tags", {"Tags": [{"Key": STACK_TAG_KEY, "Value": "Other"}]})
        stopped = stop_transform_jobs(sm, stack_tag=STACK_TAG, name_prefix="mnist-ll", log=print)
    assert stopped == ["mnist-ll-a-transform"]


def test_destroy_deletes_only_the_schedules_that_target_our_function() -> None:
    scheduler = client("scheduler")

    def item(name: str, target: str) -> dict[str, Any]:
        return {"Name": name, "GroupName": "default", "State": "ENABLED",
                "Arn": f"arn:aws:scheduler:us-east-1:123456789012:schedule/default/{name}",
                "Target": {"Arn": target}}  # fmt: skip

    with stubbed(scheduler) as stub:
        stub.add_response(
            "list_schedules",
            {
                "Schedules": [
                    item("mnist-ll-a-ttl", TTL_ARN),
                    item("mnist-ll-b-ttl", TTL_ARN + "Other"),
                ]
            },
            expected_params={"GroupName": "default", "NamePrefix": "mnist-ll-"},
        )
        stub.add_response(
            "delete_schedule",
            {},
            expected_params={"Name": "mnist-ll-a-ttl", "GroupName": "default"},
        )
        deleted = delete_ttl_schedules(
            scheduler, name_prefix="mnist-ll", target_arn=TTL_ARN, log=print
        )
    assert deleted == ["mnist-ll-a-ttl"]


class FakeSageMaker:
    """Endpoints whose status moves on each ListEndpoints (teardown polls)."""

    def __init__(self, statuses: dict[str, list[str]]) -> None:
        self.statuses = statuses
        self.deleted: list[str] = []
        self.calls = 0

    def get_paginator(self, op: str) -> Any:
        fake = self

        class Pages:
            def paginate(self, **_kw: Any) -> list[dict[str, Any]]:
                if op == "list_endpoints":
                    fake.calls += 1
                    return [{"Endpoints": [
                        {"EndpointName": n, "EndpointArn": f"{SM_ARN}:endpoint/{n}",
                         "EndpointStatus": s[0]}
                        for n, s in fake.statuses.items()
                    ]}]  # fmt: skip
                return [{}]

        return Pages()

    def list_tags(self, ResourceArn: str) -> dict[str, Any]:
        return {"Tags": OURS}

    def delete_endpoint(self, EndpointName: str) -> None:
        status = self.statuses[EndpointName]
        if status[0] in ("Creating", "Updating"):
            raise client_error("ValidationException", "Cannot delete in-progress endpoint")
        self.deleted.append(EndpointName)
        del self.statuses[EndpointName]

    def tick(self) -> None:
        for status in self.statuses.values():
            if len(status) > 1:
                status.pop(0)


def test_an_endpoint_creating_for_a_while_is_deleted_once_it_can_be() -> None:
    sm = FakeSageMaker({"mnist-ll-endpoint": ["Creating", "Creating", "InService"]})
    rounds = []
    for now in (0.0, 30.0, 60.0, 90.0):
        out = teardown_poll(
            sm, stack_tag=STACK_TAG, name_prefix="mnist-ll", now=now, deadline=3000.0
        )
        rounds.append(out["complete"])
        if out["complete"]:
            break
        sm.tick()
    # Creating, Creating, then deleted (it is Deleting until the next round finds it gone).
    assert rounds == [False, False, False, True]
    assert sm.deleted == ["mnist-ll-endpoint"]


def test_an_endpoint_that_never_becomes_deletable_is_named_by_arn_at_the_deadline() -> None:
    sm = FakeSageMaker({"mnist-ll-endpoint": ["Creating"]})
    out = teardown_poll(sm, stack_tag=STACK_TAG, name_prefix="mnist-ll", now=10.0, deadline=3000.0)
    assert out["complete"] is False
    logged: list[str] = []
    with pytest.raises(TeardownIncompleteError) as info:
        teardown_poll(sm, stack_tag=STACK_TAG, name_prefix="mnist-ll", now=3000.0, deadline=3000.0,
                      log=logged.append)  # fmt: skip
    arn = f"{SM_ARN}:endpoint/mnist-ll-endpoint"
    assert arn in str(info.value) and "Creating" in str(info.value)
    assert any(arn in line for line in logged)
    assert sm.deleted == []


def _endpoint_summary(name: str, status: str = "InService") -> dict[str, Any]:
    return {
        "EndpointName": name,
        "EndpointArn": f"{SM_ARN}:endpoint/{name}",
        "CreationTime": when(0),
        "LastModifiedTime": when(0),
        "EndpointStatus": status,
    }


def _stub_nothing_else_listed(stub: Any) -> None:
    """Configs, models and tuning jobs: none of ours left."""
    stub.add_response("list_endpoint_configs", {"EndpointConfigs": []})
    stub.add_response("list_models", {"Models": []})
    stub.add_response("list_hyper_parameter_tuning_jobs", {"HyperParameterTuningJobSummaries": []})


def test_an_endpoint_we_may_not_delete_is_reported_at_once_not_waited_for_until_the_deadline() -> (
    None
):
    """AccessDenied does not go away: waiting 50 minutes for it would end in
    DELETE_FAILED after the Provider's 55. The delete finishes, naming the ARN."""
    sm = sagemaker_client()
    endpoint = _endpoint_summary("mnist-ll-endpoint")
    logged: list[str] = []
    with stubbed(sm) as stub:
        stub.add_response(
            "list_endpoints",
            {"Endpoints": [endpoint]},
            expected_params={"NameContains": "mnist-ll"},
        )
        stub.add_response("list_tags", {"Tags": OURS})
        stub.add_client_error(
            "delete_endpoint", service_error_code="AccessDeniedException", http_status_code=400
        )
        # Configs and models still go (nothing waits for them); its endpoint pass
        # meets the same refusal.
        stub.add_response("list_endpoints", {"Endpoints": [endpoint]})
        stub.add_response("list_tags", {"Tags": OURS})
        stub.add_client_error(
            "delete_endpoint", service_error_code="AccessDeniedException", http_status_code=400
        )
        _stub_nothing_else_listed(stub)
        out = teardown_poll(
            sm, stack_tag=STACK_TAG, name_prefix="mnist-ll", now=10.0, deadline=3000.0,
            log=logged.append,
        )  # fmt: skip
    assert out["complete"] is True
    assert [left["arn"] for left in out["left"]] == [endpoint["EndpointArn"]]
    assert "AccessDeniedException" in out["left"][0]["status"]
    assert any(endpoint["EndpointArn"] in line and "left behind" in line for line in logged)


def test_a_listing_we_may_not_make_finishes_the_delete_reporting_it() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        for _ in range(2):  # its own listing, then cleanup_stack_resources's
            stub.add_client_error(
                "list_endpoints", service_error_code="AccessDeniedException", http_status_code=400
            )
        _stub_nothing_else_listed(stub)
        out = teardown_poll(sm, stack_tag=STACK_TAG, name_prefix="mnist-ll", now=10.0,
                            deadline=3000.0)  # fmt: skip
    assert out["complete"] is True
    assert "AccessDeniedException" in out["left"][0]["status"]


def test_throttling_is_waited_out_until_the_deadline() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_client_error(
            "list_endpoints", service_error_code="ThrottlingException", http_status_code=400
        )
        out = teardown_poll(sm, stack_tag=STACK_TAG, name_prefix="mnist-ll", now=10.0,
                            deadline=3000.0)  # fmt: skip
    assert out["complete"] is False


def test_a_config_we_may_not_delete_is_reported_at_once() -> None:
    sm = sagemaker_client()
    config = {
        "EndpointConfigName": "mnist-ll-x-config",
        "EndpointConfigArn": f"{SM_ARN}:endpoint-config/mnist-ll-x-config",
        "CreationTime": when(0),
    }
    with stubbed(sm) as stub:
        stub.add_response("list_endpoints", {"Endpoints": []})
        stub.add_response("list_endpoints", {"Endpoints": []})  # cleanup_stack_resources lists too
        stub.add_response("list_endpoint_configs", {"EndpointConfigs": [config]})
        stub.add_response("list_tags", {"Tags": OURS})
        stub.add_client_error(
            "delete_endpoint_config", service_error_code="AccessDeniedException",
            http_status_code=400,
        )  # fmt: skip
        stub.add_response("list_models", {"Models": []})
        stub.add_response(
            "list_hyper_parameter_tuning_jobs", {"HyperParameterTuningJobSummaries": []}
        )
        out = teardown_poll(sm, stack_tag=STACK_TAG, name_prefix="mnist-ll", now=10.0,
                            deadline=3000.0)  # fmt: skip
    assert out["complete"] is True
    assert out["left"][0]["name"] == "mnist-ll-x-config"


# -- cost ------------------------------------------------------------------------------------


def test_cost_block_prices_training_endpoint_hours_and_names_its_table() -> None:
    cost = cost_block(
        mode="realtime", training_instance_type="ml.c4.xlarge", training_instance_count=1,
        billing={"billable_seconds": 3600, "training_seconds": 3600, "training_jobs": 6},
        spot=False, transform_instance_type="ml.m4.xlarge", transform_seconds=0.0,
        endpoint_instance_type="ml.m4.xlarge", endpoint_instance_count=1, ttl_hours=24,
    )  # fmt: skip
    table = price_table()
    hourly = table["hosting_per_hour"]["ml.m4.xlarge"]
    assert cost["endpoint_usd_per_hour"] == hourly
    assert cost["usd_estimate"] == pytest.approx(
        table["training_per_hour"]["ml.c4.xlarge"] + 24 * hourly
    )
    assert cost["prices"]["source"].startswith("https://aws.amazon.com/sagemaker/pricing/")
    assert cost["prices"]["date"] == table["date"]


@pytest.mark.parametrize(
    ("mode", "ttl_hours", "instance", "says"),
    [
        ("realtime", 24, "ml.m4.xlarge", "endpoint 24 h up to its TTL)"),
        ("realtime", 0, "ml.m4.xlarge", "endpoint not included: it bills until deleted)"),
        ("none", 24, "ml.m4.xlarge", "transform job 0.0 s); no endpoint: Batch Transform"),
        ("realtime", 24, "ml.x9.huge", "endpoint unpriced: its instance type is not in the"),
    ],
)
def test_the_cost_line_says_which_endpoint_hours_the_estimate_holds(
    mode: str, ttl_hours: int, instance: str, says: str
) -> None:
    cost = cost_block(
        mode=mode, training_instance_type="ml.c4.xlarge", training_instance_count=1,
        billing={"billable_seconds": 60}, spot=False, transform_instance_type="ml.m4.xlarge",
        transform_seconds=0.0, endpoint_instance_type=instance, endpoint_instance_count=1,
        ttl_hours=ttl_hours,
    )  # fmt: skip
    line = cost_line(cost, endpoint_block(mode, "mnist-ll-e", {"deletes_at": None}))
    label = "cost (cloud estimate, not charged locally)"
    assert says in line and line.startswith(f"{label}: ~${cost['usd_estimate']:.4f} (training 60 ")
    assert ("endpoint none" not in line) and ("deleted at -" not in line)


def test_cost_block_for_mode_none_and_spot() -> None:
    cost = cost_block(
        mode="none", training_instance_type="ml.m5.large", training_instance_count=1,
        billing={"billable_seconds": 30, "training_seconds": 100, "training_jobs": 2,
                 "spot_savings_percent": 70.0},
        spot=True, transform_instance_type="ml.m4.xlarge", transform_seconds=360.0,
        endpoint_instance_type="ml.m4.xlarge", endpoint_instance_count=1, ttl_hours=0,
    )  # fmt: skip
    assert cost["endpoint_usd_per_hour"] == 0.0 and cost["spot_savings_percent"] == 70.0
    assert cost["transform_seconds"] == 360.0
    assert endpoint_block("none", "mnist-ll-endpoint", {"deletes_at": "x"}) == {
        "mode": "none",
        "name": None,
        "deletes_at": None,
    }
