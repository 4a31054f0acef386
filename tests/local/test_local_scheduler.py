"""The local EventBridge Scheduler (local/account/scheduler.py) fires what
moto only stores, on a test clock: one-time, rate and cron schedules, to SQS,
Lambda and Step Functions targets, with retries and a dead-letter queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.account.lambda_dispatch import LambdaDispatcher, LambdaFunction
from local.account.scheduler import LocalScheduler, TestClock

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/scheduler"
FLAKY_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:Flaky"
CALLS: list[dict[str, Any]] = []


def flaky_handler(event: dict[str, Any], _context: object) -> dict[str, Any]:
    """A Lambda target that always fails (Lambda then retries it itself)."""
    CALLS.append(event)
    raise RuntimeError("target broke")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


@pytest.fixture
def clock() -> TestClock:
    # A whole minute, so ``at(...)`` times line up with it.
    return TestClock(datetime.now(UTC).replace(second=0, microsecond=0))


def _queue(name: str) -> tuple[str, str]:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def _messages(url: str) -> list[dict[str, Any]]:
    got = boto3.client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    messages: list[dict[str, Any]] = got.get("Messages", [])
    return messages


def _names() -> set[str]:
    return {s["Name"] for s in boto3.client("scheduler").list_schedules()["Schedules"]}


def _at(moment: datetime) -> str:
    return f"at({moment.strftime('%Y-%m-%dT%H:%M:%S')})"


def _local(moment: datetime, tz: str) -> str:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M:%S")


def test_a_one_time_schedule_delivers_to_sqs_at_its_time_then_is_deleted(
    aws: None, clock: TestClock
) -> None:
    url, arn = _queue("one-time")
    tz = "America/New_York"
    fires = clock.now() + timedelta(hours=24)
    boto3.client("scheduler").create_schedule(
        Name="ttl-like",
        ScheduleExpression=f"at({_local(fires, tz)})",
        ScheduleExpressionTimezone=tz,
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": arn, "RoleArn": ROLE, "Input": json.dumps({"endpoint_name": "e"})},
        ActionAfterCompletion="DELETE",
    )
    scheduler = LocalScheduler(clock=clock)
    clock.advance(hours=23, minutes=59)
    assert scheduler.tick() == [] and _messages(url) == []
    clock.advance(minutes=1)
    (attempt,) = scheduler.tick()
    assert attempt.outcome == "delivered" and attempt.scheduled == fires
    (message,) = _messages(url)
    assert json.loads(message["Body"]) == {"endpoint_name": "e"}
    assert "ttl-like" not in _names()
    clock.advance(hours=48)
    assert scheduler.tick() == []


def test_a_rate_schedule_in_a_non_utc_zone_fires_at_its_instants_until_its_end(
    aws: None, clock: TestClock
) -> None:
    url, arn = _queue("rate")
    start = clock.now() + timedelta(minutes=10)
    boto3.client("scheduler").create_schedule(
        Name="hourly",
        ScheduleExpression="rate(1 hour)",
        ScheduleExpressionTimezone="Asia/Kolkata",  # UTC+05:30: a rate ignores it
        StartDate=start,
        EndDate=start + timedelta(hours=2, minutes=30),
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": arn, "RoleArn": ROLE, "Input": "{}"},
    )
    scheduler = LocalScheduler(clock=clock)
    fired: list[datetime] = []
    for _ in range(6 * 4):  # six hours, a quarter at a time
        clock.advance(minutes=15)
        fired += [a.scheduled for a in scheduler.tick()]
    assert fired == [start, start + timedelta(hours=1), start + timedelta(hours=2)]
    assert len(_messages(url)) == 3
    assert "hourly" in _names()  # no ActionAfterCompletion: it stays


def test_a_disabled_schedule_does_not_fire_and_a_flexible_one_fires_within_its_window(
    aws: None, clock: TestClock
) -> None:
    _url, arn = _queue("flex")
    client = boto3.client("scheduler")
    at = _at(clock.now() + timedelta(hours=1))
    common: dict[str, Any] = {"ScheduleExpression": at, "Target": {"Arn": arn, "RoleArn": ROLE}}
    client.create_schedule(
        Name="off", State="DISABLED", FlexibleTimeWindow={"Mode": "OFF"}, **common
    )
    client.create_schedule(
        Name="flex", FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}, **common
    )
    scheduler = LocalScheduler(clock=clock)
    due = clock.now() + timedelta(hours=1)
    fired = []
    for _ in range(80):  # past the hour and the whole window
        clock.advance(minutes=1)
        fired += [(a.schedule, clock.now()) for a in scheduler.tick()]
    (only,) = fired
    assert only[0] == "default/flex"
    assert due <= only[1] <= due + timedelta(minutes=15)


def test_a_schedule_starts_a_state_machine_execution_with_its_input(
    aws: None, clock: TestClock
) -> None:
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="retrain",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn=ROLE,
    )["stateMachineArn"]
    boto3.client("scheduler").create_schedule(
        Name="weekly",
        ScheduleExpression="cron(0 3 ? * MON *)",
        ScheduleExpressionTimezone="Europe/Berlin",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": machine, "RoleArn": ROLE, "Input": json.dumps({"max_jobs": 2})},
    )
    scheduler = LocalScheduler(clock=clock)
    clock.advance(days=8)
    (attempt,) = scheduler.tick()  # one Monday 03:00 in Berlin within the week
    assert attempt.outcome == "delivered"
    local = attempt.scheduled.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    assert (local.weekday(), local.hour, local.minute) == (0, 3, 0)
    (execution,) = sfn.list_executions(stateMachineArn=machine)["executions"]
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {"max_jobs": 2}


def test_a_failing_lambda_target_is_retried_as_lambda_retries_an_async_invocation(
    aws: None, clock: TestClock
) -> None:
    CALLS.clear()
    dispatcher = LambdaDispatcher({FLAKY_ARN: LambdaFunction("Flaky", f"{__name__}.flaky_handler")})
    boto3.client("scheduler").create_schedule(
        Name="flaky",
        ScheduleExpression=_at(clock.now() + timedelta(minutes=1)),
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": FLAKY_ARN, "RoleArn": ROLE, "Input": '{"n": 1}'},
        ActionAfterCompletion="DELETE",
    )
    scheduler = LocalScheduler(clock=clock, dispatcher=dispatcher)
    counts = []
    for minutes in (1, 1, 1, 1, 10):
        clock.advance(minutes=minutes)
        scheduler.tick()
        scheduler.wait_idle(10)
        counts.append(len(CALLS))
    # At its minute, then one and two minutes later (Lambda's own retries), then no more.
    assert counts == [1, 2, 2, 3, 3]
    assert CALLS == [{"n": 1}] * 3
    assert "flaky" not in _names()


def test_an_undeliverable_target_follows_the_retry_policy_then_the_dead_letter_queue(
    aws: None, clock: TestClock
) -> None:
    dlq_url, dlq_arn = _queue("dlq")
    missing = f"arn:aws:sqs:{REGION}:{ACCOUNT}:no-such-queue"
    boto3.client("scheduler").create_schedule(
        Name="undeliverable",
        ScheduleExpression=_at(clock.now() + timedelta(minutes=1)),
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": missing,
            "RoleArn": ROLE,
            "Input": '{"x": 1}',
            "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600},
            "DeadLetterConfig": {"Arn": dlq_arn},
        },
    )
    scheduler = LocalScheduler(clock=clock)
    for _ in range(10):
        clock.advance(seconds=30)
        scheduler.tick()
    tries = [a for a in scheduler.attempts if a.schedule == "default/undeliverable"]
    assert [a.attempt for a in tries] == [0, 1, 2]
    assert tries[-1].outcome == "dead-lettered"
    (message,) = _messages(dlq_url)
    assert json.loads(message["Body"]) == {"x": 1}
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
    assert attributes["RETRY_ATTEMPTS"] == "2" and attributes["TARGET_ARN"] == missing
