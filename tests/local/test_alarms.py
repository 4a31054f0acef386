"""CloudWatch in the local account: datapoints aligned to the period (the moto
fix), alarms evaluated from metric data alone, with CloudWatch's wording and
SNS actions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.account.alarms import AlarmEvaluator, evaluate_alarm
from local.account.moto_fixes import cloudwatch as cloudwatch_fix

T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    cloudwatch_fix.install()
    with mock_aws():
        yield {
            name: boto3.client(name, region_name="us-east-1")
            for name in ("cloudwatch", "sns", "sqs")
        }


def _put(cw: Any, seconds: float, value: float, name: str = "Invocation5XXErrors") -> None:
    cw.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": "EndpointName", "Value": "ep"}],
                "Timestamp": T0 + timedelta(seconds=seconds),
                "Value": value,
            }
        ],
    )


def test_get_metric_statistics_datapoints_start_at_period_boundaries(aws: dict[str, Any]) -> None:
    cw = aws["cloudwatch"]
    for seconds, value in ((10, 1.0), (50, 2.0), (80, 4.0)):
        _put(cw, seconds, value)
    points = cw.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Dimensions=[{"Name": "EndpointName", "Value": "ep"}],
        StartTime=T0 - timedelta(minutes=5),
        EndTime=T0 + timedelta(minutes=5),
        Period=60,
        Statistics=["Sum", "SampleCount"],
    )["Datapoints"]
    got = sorted((p["Timestamp"], p["Sum"], p["SampleCount"]) for p in points)
    # moto 5.2.5 alone: 12:00:10 (3.0, 2) and 12:01:10 (4.0, 1).
    assert got == [(T0, 3.0, 2.0), (T0 + timedelta(minutes=1), 4.0, 1.0)]


def test_get_metric_data_periods_start_at_period_boundaries(aws: dict[str, Any]) -> None:
    cw = aws["cloudwatch"]
    for seconds, value in ((10, 1.0), (50, 2.0), (80, 4.0)):
        _put(cw, seconds, value)
    result = cw.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "e",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SageMaker",
                        "MetricName": "Invocation5XXErrors",
                        "Dimensions": [{"Name": "EndpointName", "Value": "ep"}],
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=T0 - timedelta(seconds=30),
        EndTime=T0 + timedelta(minutes=5),
    )["MetricDataResults"][0]
    # moto 5.2.5 alone: windows from 11:59:30, so 1.0 and 6.0 (newest first by default).
    assert sorted(zip(result["Timestamps"], result["Values"], strict=True)) == [
        (T0, 3.0),
        (T0 + timedelta(minutes=1), 4.0),
    ]


def _alarm(**overrides: Any) -> dict[str, Any]:
    alarm = {
        "AlarmName": "a",
        "Period": 60,
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 0.0,
        "Statistic": "Sum",
        "TreatMissingData": "notBreaching",
    }
    alarm.update(overrides)
    return alarm


NOW = T0 + timedelta(minutes=3, seconds=20)  # in the period starting 12:03


@pytest.mark.parametrize(
    ("treat", "expected"),
    [
        ("notBreaching", "OK"),
        ("breaching", "ALARM"),
        ("missing", "INSUFFICIENT_DATA"),
        ("ignore", None),
    ],
)
def test_missing_data_is_treated_as_the_alarm_says(treat: str, expected: str | None) -> None:
    verdict = evaluate_alarm(_alarm(TreatMissingData=treat), {}, NOW)
    assert (verdict[0] if verdict else None) == expected


def test_m_out_of_n_datapoints_fire_the_alarm_with_cloudwatchs_reason() -> None:
    alarm = _alarm(EvaluationPeriods=3, DatapointsToAlarm=2)
    minute = [T0 + timedelta(minutes=i) for i in range(4)]
    one = evaluate_alarm(alarm, {minute[3]: 5.0}, NOW)
    assert one is not None and one[0] == "OK"
    two = evaluate_alarm(alarm, {minute[3]: 5.0, minute[1]: 2.0}, NOW)
    assert two is not None and two[0] == "ALARM"
    assert two[1] == (
        "Threshold Crossed: 2 out of the last 3 datapoints [5.0 (05/01/26 12:03:00), "
        "2.0 (05/01/26 12:01:00)] were greater than the threshold (0.0) "
        "(minimum 2 datapoints for OK -> ALARM transition)."
    )
    # Outside the last three periods: not evaluated.
    old = evaluate_alarm(alarm, {minute[3]: 5.0, minute[0]: 2.0}, NOW)
    assert old is not None and old[0] == "OK"


def test_an_alarm_turns_alarm_from_data_and_notifies_its_topic(aws: dict[str, Any]) -> None:
    cw, sns, sqs = aws["cloudwatch"], aws["sns"], aws["sqs"]
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    queue = sqs.create_queue(QueueName="alarms")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
    cw.put_metric_alarm(
        AlarmName="ep-invocation-5xx",
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Dimensions=[{"Name": "EndpointName", "Value": "ep"}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0.0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        AlarmActions=[topic],
    )
    assert cw.describe_alarms()["MetricAlarms"][0]["StateValue"] == "INSUFFICIENT_DATA"
    clock = [NOW.timestamp()]
    evaluator = AlarmEvaluator(
        cloudwatch=cw,
        sns=sns,
        region="us-east-1",
        account="123456789012",
        interval=0.0,
        clock=lambda: clock[0],
    )
    assert evaluator.evaluate() == [("ep-invocation-5xx", "INSUFFICIENT_DATA", "OK")]
    _put(cw, 3 * 60 + 5, 1.0)
    _put(cw, 3 * 60 + 15, 1.0)
    assert evaluator.evaluate() == [("ep-invocation-5xx", "OK", "ALARM")]
    alarm = cw.describe_alarms()["MetricAlarms"][0]
    assert alarm["StateValue"] == "ALARM"
    assert alarm["StateReason"] == (
        "Threshold Crossed: 1 datapoint [2.0 (05/01/26 12:03:00)] was greater than "
        "the threshold (0.0)."
    )
    assert json.loads(alarm["StateReasonData"])["recentDatapoints"] == [2.0]
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    note = json.loads(json.loads(messages[0]["Body"])["Message"])
    assert note["NewStateValue"] == "ALARM" and note["OldStateValue"] == "OK"
    assert note["AlarmName"] == "ep-invocation-5xx"
    # A minute later without errors the alarm is OK again (notBreaching).
    clock[0] += 60
    assert evaluator.evaluate() == [("ep-invocation-5xx", "ALARM", "OK")]
