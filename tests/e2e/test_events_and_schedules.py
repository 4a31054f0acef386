"""The local account is a living one: a Stop from outside reaches the
end-of-execution rule as AWS's status change event and stops the run's jobs;
SageMaker's own state-change events are emitted; the TTL schedule a run
creates and the retraining schedule of the template fire on the account's
Scheduler (on a test clock here)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local.account.runner import LocalPipeline
from local.account.scheduler import TestClock
from local.account.synth import SynthesizedPipeline

SCHEDULE = {
    "expression": "cron(0 3 ? * MON *)",
    "timezone": "Europe/Berlin",
    "enabled": False,  # enabled by its own test, so the clock's jumps start nothing before
    "input": {"max_jobs": 1, "max_parallel_jobs": 1, "endpoint": {"mode": "none"}},
}
FAST = {"max_jobs": 1, "max_parallel_jobs": 1, "min_objective": 0}


def _synthesized() -> SynthesizedPipeline:
    """The pipeline's template (the cached synth every e2e module shares) plus
    the retraining schedule of ``stacks/schedule.py``, synthesized alone in a
    bare stack (a whole second synth costs ~10 s of CPU) and aimed at the
    local state machine."""
    import aws_cdk as cdk
    from aws_cdk import aws_stepfunctions as sfn
    from aws_cdk.assertions import Template

    from local.account.local_account import STATE_MACHINE_NAME
    from local.account.services import ACCOUNT, REGION
    from local.account.synth import synthesize
    from pipeline_core.config import PipelineConfig
    from stacks.schedule import RetrainingScheduleConstruct, parse_schedule
    from tests.stack.helpers import bare_app

    pipeline = synthesize()
    stack = cdk.Stack(bare_app(), "Retraining", env=cdk.Environment(account=ACCOUNT, region=REGION))
    schedule = parse_schedule(SCHEDULE, PipelineConfig())
    assert schedule is not None
    RetrainingScheduleConstruct(
        stack,
        "Retraining",
        schedule=schedule,
        state_machine=sfn.StateMachine.from_state_machine_name(stack, "Sm", STATE_MACHINE_NAME),
        name="mnist-ll-retraining",
    )
    extra = Template.from_stack(stack).to_json()["Resources"]
    template = pipeline.template
    return SynthesizedPipeline({**template, "Resources": {**template["Resources"], **extra}})


@pytest.fixture(scope="module")
def living(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    from local.account.backend import LinearLearnerBackend

    work = tmp_path_factory.mktemp("living")
    with LocalPipeline(
        work_dir=work,
        backend=LinearLearnerBackend(work_dir=work / "backend"),
        synthesized=_synthesized(),
        poll_seconds=1,
        printer=lambda _line: None,
        clock=TestClock(),
    ) as running:
        yield running


def _clock(pipeline: LocalPipeline) -> TestClock:
    assert pipeline.account is not None
    clock = pipeline.account.scheduler.clock
    assert isinstance(clock, TestClock)
    return clock


def _tuning_job(execution: str) -> dict[str, Any] | None:
    sm = boto3.client("sagemaker")
    for job in sm.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]:
        if execution in job["HyperParameterTuningJobName"]:
            return sm.describe_hyper_parameter_tuning_job(
                HyperParameterTuningJobName=job["HyperParameterTuningJobName"]
            )
    return None


def _training_statuses(tuning_name: str) -> list[str]:
    summaries = boto3.client("sagemaker").list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=tuning_name
    )["TrainingJobSummaries"]
    return [s["TrainingJobStatus"] for s in summaries]


def test_stop_execution_from_outside_stops_the_tuning_job_and_its_training_jobs(
    living: LocalPipeline, small_dataset: Path
) -> None:
    assert living.account is not None and living.sagemaker is not None
    sagemaker_events: list[dict[str, Any]] = []
    put = living.sagemaker.on_aws_event

    def record(event: dict[str, Any]) -> None:
        sagemaker_events.append(event)
        put(event)

    living.sagemaker.on_aws_event = record
    sfn = boto3.client("stepfunctions")
    name = "living-stop"
    payload = {
        "source": str(small_dataset),
        "max_jobs": 20,
        "max_parallel_jobs": 1,
        "endpoint": {"mode": "none"},
    }
    arn = sfn.start_execution(
        stateMachineArn=living.state_machine_arn, name=name, input=json.dumps(payload)
    )["executionArn"]
    deadline = time.monotonic() + 90
    job = _tuning_job(name)
    while time.monotonic() < deadline and not (
        job
        and job["HyperParameterTuningJobStatus"] == "InProgress"
        and _training_statuses(job["HyperParameterTuningJobName"])
    ):
        time.sleep(0.1)
        job = _tuning_job(name)
    assert job is not None and job["HyperParameterTuningJobStatus"] == "InProgress"
    tuning_name = job["HyperParameterTuningJobName"]

    stopped_at = time.monotonic()
    sfn.stop_execution(executionArn=arn, error="Operator", cause="stopped from the CLI")
    while time.monotonic() - stopped_at < 90:
        job = _tuning_job(name)
        assert job is not None
        if job["HyperParameterTuningJobStatus"] == "Stopped":
            break
        time.sleep(0.1)
    took = time.monotonic() - stopped_at
    assert job["HyperParameterTuningJobStatus"] == "Stopped", took
    assert took < 15, took
    assert set(_training_statuses(tuning_name)) <= {"Stopped", "Completed"}
    assert len(_training_statuses(tuning_name)) < 20  # it did not run to the end

    # The rule's delivery did it: the ABORTED event, to ExecutionEnded, once.
    ending = living.account.executions.wait_ending(arn, 30)
    assert ending.event["source"] == "aws.states"
    assert ending.event["detail-type"] == "Step Functions Execution Status Change"
    detail = ending.event["detail"]
    assert (detail["status"], detail["executionArn"], detail["name"]) == ("ABORTED", arn, name)
    assert detail["stateMachineArn"] == living.state_machine_arn
    assert json.loads(detail["input"]) == payload and detail["stopDate"] >= detail["startDate"]
    answer = living.execution_ended(arn)
    assert answer is not None and answer["released"]["tuning_job"]["stopped"] is True
    to_end = [d for d in ending.deliveries if d.target == living.end_handler_arn()]
    assert len(to_end) == 1

    # SageMaker's own events, in AWS's shapes (sent in order by one worker).
    def tuning_events() -> list[dict[str, Any]]:
        return [
            e["detail"]
            for e in list(sagemaker_events)
            if e["detail-type"] == "SageMaker HyperParameter Tuning Job State Change"
            and e["detail"]["HyperParameterTuningJobName"] == tuning_name
        ]

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        d["HyperParameterTuningJobStatus"] == "Stopped" for d in tuning_events()
    ):
        time.sleep(0.05)
    tuning = [
        e["detail"]
        for e in sagemaker_events
        if e["detail-type"] == "SageMaker HyperParameter Tuning Job State Change"
        and e["detail"]["HyperParameterTuningJobName"] == tuning_name
    ]
    statuses = [d["HyperParameterTuningJobStatus"] for d in tuning]
    assert statuses[0] == "InProgress" and statuses[-1] == "Stopped", statuses
    assert isinstance(tuning[0]["CreationTime"], int) and isinstance(tuning[0]["Tags"], dict)
    training = [
        e for e in sagemaker_events if e["detail-type"] == "SageMaker Training Job State Change"
    ]
    assert training and all(e["source"] == "aws.sagemaker" for e in training)
    assert {e["detail"]["TrainingJobStatus"] for e in training} <= {"Completed", "Stopped"}
    assert all(e["resources"] == [e["detail"]["TrainingJobArn"]] for e in training)


def test_the_ttl_schedule_of_a_realtime_run_deletes_the_endpoint_when_the_clock_passes_it(
    living: LocalPipeline, small_dataset: Path
) -> None:
    assert living.account is not None and living.sagemaker is not None
    endpoint = "mnist-ll-living-ttl"
    result = living.execute(
        {"source": str(small_dataset), "endpoint_name": endpoint, **FAST}, "living-ttl", 300
    )
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    sm = boto3.client("sagemaker")
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
    (schedule,) = [
        s for s in living.schedules() if (s["target_input"] or {}).get("endpoint_name") == endpoint
    ]
    scheduler = living.account.scheduler
    clock = _clock(living)
    clock.advance(hours=23)
    scheduler.tick()
    assert endpoint in {e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]}
    clock.advance(hours=1, minutes=5)  # past the default 24 h TTL
    fired = [a for a in scheduler.tick() if a.schedule == f"default/{schedule['name']}"]
    assert [a.outcome for a in fired] == ["delivered"]
    scheduler.wait_idle(30)
    assert fired[0].response["action"] == "deleted", fired[0].response
    living.sagemaker.wait_idle(5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and endpoint in {
        e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]
    }:
        time.sleep(0.1)
    assert endpoint not in {e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]}
    assert schedule["name"] not in {s["name"] for s in living.schedules()}


def test_the_retraining_schedule_starts_an_execution_when_due_and_not_while_disabled(
    living: LocalPipeline,
) -> None:
    assert living.account is not None
    client = boto3.client("scheduler")
    (mine,) = [s for s in living.schedules() if s["target_arn"] == living.state_machine_arn]
    got = client.get_schedule(Name=mine["name"])
    assert got["State"] == "DISABLED"
    assert got["ScheduleExpressionTimezone"] == "Europe/Berlin"
    sfn = boto3.client("stepfunctions")

    def executions() -> set[str]:
        listed = sfn.list_executions(stateMachineArn=living.state_machine_arn)["executions"]
        return {e["executionArn"] for e in listed}

    before = executions()
    scheduler, clock = living.account.scheduler, _clock(living)
    clock.advance(days=8)
    assert scheduler.tick() == [] and executions() == before  # disabled: nothing
    update = {
        k: got[k]
        for k in ("Name", "GroupName", "ScheduleExpression", "ScheduleExpressionTimezone",
                  "FlexibleTimeWindow", "Target")
    }  # fmt: skip
    client.update_schedule(**update, State="ENABLED")
    try:
        assert scheduler.tick() == []  # seen enabled now (a real clock ticks every second)
        clock.advance(days=7, minutes=1)
        fired = scheduler.tick()
        assert [a.schedule for a in fired] == [f"default/{mine['name']}"]
        local = fired[0].scheduled.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
        assert (local.weekday(), local.hour, local.minute) == (0, 3, 0)
        (started,) = executions() - before
        described = sfn.describe_execution(executionArn=started)
        assert json.loads(described["input"]) == SCHEDULE["input"]
        with contextlib.suppress(ClientError):  # it may have failed already (no data)
            sfn.stop_execution(executionArn=started, error="Test", cause="only its start mattered")
        living.account.executions.wait_ending(started, 60)
    finally:
        client.delete_schedule(Name=mine["name"])
    clock.advance(timedelta(days=7).total_seconds())
    assert scheduler.tick() == []
