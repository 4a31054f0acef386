"""The local SageMaker's own EventBridge events (local/emulator/aws_events.py):
"SageMaker Endpoint State Change" on create, load and delete, in AWS's shape."""

from __future__ import annotations

import io
import queue
import tarfile
import threading
from typing import Any

from local.emulator.aws_events import ENDPOINT, TRAINING_JOB, state_change_event
from local.emulator.service import LocalSageMaker
from tests.local.test_sagemaker_shapes import BUCKET, IMAGE, ROLE, checked, sm

__all__ = ["sm"]


def _next(events: queue.Queue[dict[str, Any]]) -> dict[str, Any]:
    return events.get(timeout=10)


def test_an_endpoint_sends_creating_in_service_and_deleting_events(
    sm: LocalSageMaker,
) -> None:
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    sm.on_aws_event = events.put
    loaded = threading.Event()  # the model loads only once the test has seen Creating
    load = sm.backend.load_endpoint_model

    def held_load(name: str, artifact: Any, max_body_bytes: int | None = None) -> None:
        loaded.wait(10)
        load(name, artifact, max_body_bytes)

    sm.backend.load_endpoint_model = held_load  # type: ignore[method-assign]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz"):
        pass
    sm.s3.put_object(Bucket=BUCKET, Key="m/model.tar.gz", Body=buf.getvalue())
    model = {"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/m/model.tar.gz"}
    checked(sm, "CreateModel", ModelName="ev-m", ExecutionRoleArn=ROLE, PrimaryContainer=model)
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "ev-m",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m4.xlarge",
    }
    checked(sm, "CreateEndpointConfig", EndpointConfigName="ev-cfg", ProductionVariants=[variant])
    arn = checked(
        sm,
        "CreateEndpoint",
        EndpointName="ev-ep",
        EndpointConfigName="ev-cfg",
        Tags=[{"Key": "stack", "Value": "test"}],
    )["EndpointArn"]
    seen = [_next(events)]
    loaded.set()
    seen.append(_next(events))
    sm.wait_idle(10)
    checked(sm, "DeleteEndpoint", EndpointName="ev-ep")
    seen.append(_next(events))
    assert [e["detail"]["EndpointStatus"] for e in seen] == ["Creating", "InService", "Deleting"]
    for event in seen:
        assert event["source"] == "aws.sagemaker" and event["detail-type"] == ENDPOINT
        assert event["resources"] == [arn] and event["account"] == sm.account
        detail = event["detail"]
        assert detail["EndpointName"] == "ev-ep" and detail["EndpointConfigName"] == "ev-cfg"
        assert detail["Tags"] == {"stack": "test"}
        assert isinstance(detail["CreationTime"], int) and detail["CreationTime"] > 10**12


def test_state_change_event_keeps_the_describe_answer_with_times_in_milliseconds() -> None:
    described = {
        "TrainingJobName": "j",
        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/j",
        "TrainingJobStatus": "Completed",
        "CreationTime": 1700000000.5,
        "SecondaryStatusTransitions": [{"Status": "Completed", "StartTime": 1700000001.25}],
        "HyperParameters": {"epochs": "1"},
    }
    event = state_change_event(
        TRAINING_JOB, described, tags=None, region="us-east-1", account="123456789012"
    )
    assert event["resources"] == [described["TrainingJobArn"]]
    detail = event["detail"]
    assert detail["CreationTime"] == 1700000000500
    assert detail["SecondaryStatusTransitions"][0]["StartTime"] == 1700000001250
    assert detail["HyperParameters"] == {"epochs": "1"} and detail["Tags"] == {}
