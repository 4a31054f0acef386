"""Proof of the deployment guardrails on the local account: an update to a
model whose container answers 500 fails its canary's invocations, the stack's
Invocation5XXErrors alarm turns ALARM from that data alone (nobody calls
SetAlarmState), and the endpoint rolls back to the config that served."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
import numpy as np
import pytest
from aws_cdk.assertions import Template
from botocore.exceptions import ClientError

from local.account.backend import LinearLearnerBackend
from local.account.local_account import LocalAccount, ResourceContext, _create_alarm
from pipeline_core.deploy import VARIANT_NAME
from pipeline_core.rollout import ROLLOUT_DEFAULTS, alarm_names, deployment_config
from stacks import asl
from stacks.registry import EndpointAlarms
from tests.stack.helpers import bare_app
from training.model import LinearModel

ENDPOINT = "guarded-ep"
DIM = 4


def _artifact(path: Path) -> Path:
    model = LinearModel(
        weights=np.ones(DIM, dtype=np.float32),
        bias=0.0,
        mean=np.zeros(DIM, dtype=np.float32),
        std=np.ones(DIM, dtype=np.float32),
        threshold=0.5,
    )
    return model.save(path)


def _stack_alarms() -> dict[str, Any]:
    """The stack's rollback alarms of ENDPOINT, as the template has them."""
    stack = cdk.Stack(bare_app(), "Alarms")
    EndpointAlarms(stack, "EndpointAlarms", endpoint_name=ENDPOINT, rollout=ROLLOUT_DEFAULTS)
    return Template.from_stack(stack).to_json()


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAccount]:
    work = tmp_path_factory.mktemp("guardrails")
    with LocalAccount(
        work_dir=work,
        backend=LinearLearnerBackend(work_dir=work / "backend"),
        alarm_interval_seconds=0.2,
    ) as running:
        yield running


def _deploy(sm: Any, name: str, artifact_uri: str) -> str:
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/SageMakerExecutionRole",
        PrimaryContainer={"Image": "local/linear-learner", "ModelDataUrl": artifact_uri},
    )
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": VARIANT_NAME,
                "ModelName": name,
                "InitialInstanceCount": 2,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    return name


def _wait(sm: Any, status: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described: dict[str, Any] = sm.describe_endpoint(EndpointName=ENDPOINT)
        if described["EndpointStatus"] == status:
            return described
        time.sleep(0.05)
    raise AssertionError(f"{ENDPOINT} never became {status}")


def test_a_failing_canary_trips_the_stack_alarm_and_the_update_rolls_back(
    account: LocalAccount, tmp_path: Path
) -> None:
    assert account.sagemaker is not None and account.alarms is not None
    template = _stack_alarms()
    resolver = asl.Resolver(template, account.region, account.account)
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            _create_alarm(
                ResourceContext(
                    logical_id, resource["Type"], resolver.resolve(resource["Properties"]), resolver
                )
            )
    errors_alarm, _latency_alarm = alarm_names(ENDPOINT)
    s3, sm = boto3.client("s3"), boto3.client("sagemaker")
    runtime, cloudwatch = boto3.client("sagemaker-runtime"), boto3.client("cloudwatch")
    s3.create_bucket(Bucket="guardrails")
    s3.upload_file(str(_artifact(tmp_path / "model.tar.gz")), "guardrails", "model.tar.gz")
    uri = "s3://guardrails/model.tar.gz"
    old = _deploy(sm, "guarded-old", uri)
    new = _deploy(sm, "guarded-new", uri)
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=old)
    _wait(sm, "InService")
    # The new model loads, but its container answers every invocation with a 500.
    account.sagemaker.inject_fault(f"container_error:{new}")
    account.sagemaker.bake_seconds = 4.0
    config = deployment_config({"wait_seconds": 60}, alarm_names(ENDPOINT), instance_count=2)
    assert config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    started = datetime.now(UTC)
    sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName=new, DeploymentConfig=config)
    answers = {"ok": 0, "model_error": 0}

    def traffic() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status = sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"]
            if status not in ("Updating", "Creating"):
                return
            try:
                runtime.invoke_endpoint(
                    EndpointName=ENDPOINT, ContentType="text/csv", Body=b"1,0,0,1"
                )
                answers["ok"] += 1
            except ClientError as e:
                assert e.response["Error"]["Code"] == "ModelError"
                assert e.response["OriginalStatusCode"] == 500
                answers["model_error"] += 1
            time.sleep(0.02)

    sender = threading.Thread(target=traffic)
    sender.start()
    sender.join(30)
    described = _wait(sm, "InService")
    account.sagemaker.clear_faults()
    # The canary took its share: half the requests failed on the new fleet.
    assert answers["model_error"] > 0 and answers["ok"] > 0
    # Rolled back to the config that served, as SageMaker reports it.
    assert described["EndpointConfigName"] == old
    assert errors_alarm in described["FailureReason"]
    assert "rolled back" in described["FailureReason"]
    assert described["LastDeploymentConfig"] == config
    # The alarm turned ALARM from the invocation data alone.
    assert [c for c in account.alarms.changes if c[0] == errors_alarm and c[2] == "ALARM"]
    alarm = cloudwatch.describe_alarms(AlarmNames=[errors_alarm])["MetricAlarms"][0]
    assert alarm["StateReason"].startswith("Threshold Crossed: 1 datapoint [")
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Dimensions=[
            {"Name": "EndpointName", "Value": ENDPOINT},
            {"Name": "VariantName", "Value": VARIANT_NAME},
        ],
        StartTime=started - timedelta(minutes=1),
        EndTime=datetime.now(UTC) + timedelta(minutes=1),
        Period=60,
        Statistics=["Sum", "SampleCount"],
    )["Datapoints"]
    assert sum(p["Sum"] for p in points) >= 1
    assert all(p["Timestamp"].second == 0 for p in points)
    # The model errors are in the endpoint's log group, stream AllTraffic/<instance>.
    account.sagemaker.runtime.flush()
    logs = boto3.client("logs")
    group = f"/aws/sagemaker/Endpoints/{ENDPOINT}"
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert streams and all(s["logStreamName"].startswith("AllTraffic/i-") for s in streams)
    events = [
        e["message"]
        for s in streams
        for e in logs.get_log_events(logGroupName=group, logStreamName=s["logStreamName"])["events"]
    ]
    assert any("answered 500" in m and new in m for m in events)
