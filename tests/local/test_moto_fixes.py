"""Where moto 5.2.5 answers differently from AWS, the local account's fixes
(local/account/moto_fixes) make it answer as AWS does: StopExecution,
GetExecutionHistory's reverseOrder and paging, StartSyncExecution and
FilterLogEvents' logStreamNamePrefix. One moto server, no SageMaker."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from local.account.services import (
    ACCOUNT,
    REGION,
    MotoServer,
    credentials_environment,
    endpoint_environment,
    patched_environ,
)

ROOT = Path(__file__).resolve().parents[2]
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sfn"
WAITS = {
    "StartAt": "Wait",
    "States": {
        "Wait": {"Type": "Wait", "Seconds": 30, "Next": "Done"},
        "Done": {"Type": "Pass", "End": True},
    },
}
PASSES = {
    "StartAt": "P1",
    "States": {
        "P1": {"Type": "Pass", "Next": "P2"},
        "P2": {"Type": "Pass", "Next": "P3"},
        "P3": {"Type": "Pass", "Next": "P4"},
        "P4": {"Type": "Pass", "Result": {"ok": True}, "End": True},
    },
}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = MotoServer()
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _client(url: str, service: str, **kwargs: Any) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        **kwargs,
    )


@pytest.fixture(scope="module")
def sfn(moto_url: str) -> Any:
    return _client(moto_url, "stepfunctions")


def _machine(sfn: Any, name: str, definition: dict[str, Any], kind: str = "STANDARD") -> str:
    arn: str = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=ROLE, type=kind
    )["stateMachineArn"]
    return arn


def _until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _history(sfn: Any, arn: str, **kwargs: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = sfn.get_execution_history(
            executionArn=arn, **kwargs, **({"nextToken": token} if token else {})
        )
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def test_stop_execution_aborts_at_once_with_error_cause_and_stop_date(sfn: Any) -> None:
    machine = _machine(sfn, "stop-waits", WAITS)
    arn = sfn.start_execution(stateMachineArn=machine, name="e1")["executionArn"]
    # wait until it is in its Wait state, so the interpreter really runs
    _until(lambda: any(e["type"] == "WaitStateEntered" for e in _history(sfn, arn)))
    answer = sfn.stop_execution(executionArn=arn, error="Operator", cause="stopped by hand")
    assert "stopDate" in answer
    described = sfn.describe_execution(executionArn=arn)
    assert described["status"] == "ABORTED"  # when the call returns, not later
    assert (described["error"], described["cause"]) == ("Operator", "stopped by hand")
    assert described["stopDate"] == answer["stopDate"]
    events = _until(lambda: (h := _history(sfn, arn)) and h[-1]["type"] == "ExecutionAborted" and h)
    assert events[-1]["type"] == "ExecutionAborted"
    assert events[-1]["executionAbortedEventDetails"] == {
        "error": "Operator",
        "cause": "stopped by hand",
    }
    assert not any(e["type"] == "PassStateEntered" for e in events)  # stopped at the next state
    # A state still in flight that fails after the stop cannot turn ABORTED into FAILED.
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    backend = stepfunctions_parser_backends[ACCOUNT][REGION]
    execution = backend.describe_execution(arn)
    execution.exec_worker.env.set_error(ExecutionFailedEventDetails(error="Late", cause="late"))
    execution.exec_worker._execution_communication.terminated()
    described = sfn.describe_execution(executionArn=arn)
    assert (described["status"], described["error"]) == ("ABORTED", "Operator")


def test_stop_execution_before_the_worker_has_started_is_no_server_error(
    sfn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    gate = threading.Event()
    start = ExecutionWorker.start

    def held_start(self: ExecutionWorker) -> None:
        # As when StopExecution lands within a moment of StartExecution: the
        # worker thread has not built its environment yet (env is None).
        threading.Thread(target=lambda: (gate.wait(10), start(self)), daemon=True).start()

    monkeypatch.setattr(ExecutionWorker, "start", held_start)
    machine = _machine(sfn, "stop-early", PASSES)
    arn = sfn.start_execution(stateMachineArn=machine, name="early")["executionArn"]
    answer = sfn.stop_execution(executionArn=arn)  # moto 5.2.5: HTTP 500 (AttributeError)
    assert "stopDate" in answer
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    gate.set()
    events = _until(lambda: (h := _history(sfn, arn)) and h[-1]["type"] == "ExecutionAborted" and h)
    assert [e["type"] for e in events] == ["ExecutionStarted", "ExecutionAborted"]
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"


def test_execution_history_honours_reverse_order_and_pages(sfn: Any) -> None:
    machine = _machine(sfn, "history-passes", PASSES)
    arn = sfn.start_execution(stateMachineArn=machine, name="h1")["executionArn"]
    _until(lambda: sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED")
    forward = sfn.get_execution_history(executionArn=arn)["events"]
    assert forward[0]["type"] == "ExecutionStarted" and len(forward) >= 10
    backward = sfn.get_execution_history(executionArn=arn, reverseOrder=True)["events"]
    assert [e["id"] for e in backward] == [e["id"] for e in reversed(forward)]
    first = sfn.get_execution_history(executionArn=arn, maxResults=3, reverseOrder=True)
    assert first["events"][0]["type"] == "ExecutionSucceeded"
    assert len(first["events"]) == 3 and "nextToken" in first
    paged = _history(sfn, arn, maxResults=3, reverseOrder=True)
    assert [e["id"] for e in paged] == [e["id"] for e in backward]


def test_newest_first_pages_do_not_shift_while_the_history_grows() -> None:
    from local.account.moto_fixes.stepfunctions import _page

    events = [{"id": i, "type": "PassStateEntered"} for i in range(1, 51)]
    first = _page(events, {"reverseOrder": True, "maxResults": 20})
    assert [e["id"] for e in first["events"]] == list(range(50, 30, -1))
    events += [{"id": i, "type": "PassStateExited"} for i in range(51, 56)]  # still running
    second = _page(
        events, {"reverseOrder": True, "maxResults": 20, "nextToken": first["nextToken"]}
    )
    assert [e["id"] for e in second["events"]] == list(range(30, 10, -1))
    forward = _page(events, {"maxResults": 30})
    rest = _page(events, {"maxResults": 30, "nextToken": forward["nextToken"]})
    assert [e["id"] for e in forward["events"] + rest["events"]] == list(range(1, 56))
    assert "nextToken" not in rest


def test_start_sync_execution_refuses_standard_and_runs_express(moto_url: str) -> None:
    # As botocore builds it, the sync- host prefix names no host on a local
    # endpoint (sync-127.0.0.1); the local account's environment turns the
    # prefix off (AWS_DISABLE_HOST_PREFIX_INJECTION), as docs/LOCAL_AWS.md says.
    env = {**credentials_environment(), **endpoint_environment(moto_url, "http://127.0.0.1:1")}
    with patched_environ(env):
        sfn = boto3.client("stepfunctions")
        standard = _machine(sfn, "sync-standard", PASSES)
        with pytest.raises(ClientError) as info:
            sfn.start_sync_execution(stateMachineArn=standard, input="{}")
        assert info.value.response["Error"]["Code"] == "StateMachineTypeNotSupported"
        express = _machine(sfn, "sync-express", PASSES, kind="EXPRESS")
        answer = sfn.start_sync_execution(stateMachineArn=express, input='{"x": 1}')
    assert answer["status"] == "SUCCEEDED"
    assert json.loads(answer["output"]) == {"ok": True}
    assert ":express:sync-express:" in answer["executionArn"]
    # the same call with botocore's default host prefix cannot reach the account
    prefixed = _client(moto_url, "stepfunctions", config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(EndpointConnectionError, match=r"sync-127\.0\.0\.1"):
        prefixed.start_sync_execution(stateMachineArn=express)
    fixed = _client(moto_url, "stepfunctions", config=Config(inject_host_prefix=False))
    assert fixed.start_sync_execution(stateMachineArn=express)["status"] == "SUCCEEDED"


def test_filter_log_events_honours_the_stream_prefix(moto_url: str) -> None:
    logs = _client(moto_url, "logs")
    # A group of its own: moto's state is per process, and other tests in this
    # worker may have made SageMaker's groups already.
    group = f"/test/filter-prefix/{uuid.uuid4().hex}"
    logs.create_log_group(logGroupName=group)
    now = int(time.time() * 1000)
    for stream in ("job-a/algo-1", "job-a/algo-2", "job-b/algo-1"):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": now, "message": f"line of {stream}"}],
        )
    events = logs.filter_log_events(logGroupName=group, logStreamNamePrefix="job-a/")["events"]
    assert sorted(e["logStreamName"] for e in events) == ["job-a/algo-1", "job-a/algo-2"]
    none = logs.filter_log_events(logGroupName=group, logStreamNamePrefix="job-z/")["events"]
    assert none == []
    with pytest.raises(ClientError) as info:
        logs.filter_log_events(
            logGroupName=group, logStreamNamePrefix="job-a/", logStreamNames=["job-b/algo-1"]
        )
    assert info.value.response["Error"]["Code"] == "InvalidParameterException"
    everything = logs.filter_log_events(logGroupName=group)["events"]
    assert len(everything) == 3


def test_an_execution_started_without_a_name_gets_a_uuid(moto_url: str) -> None:
    sfn = _client(moto_url, "stepfunctions")
    arn = sfn.create_state_machine(
        name=f"unnamed-{uuid.uuid4().hex[:8]}",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/r",
    )["stateMachineArn"]
    name = sfn.start_execution(stateMachineArn=arn)["executionArn"].rsplit(":", 1)[-1]
    assert str(uuid.UUID(name)) == name


def test_the_asl_interpreter_imports_no_batch_or_ec2_backend_until_a_batch_call() -> None:
    """moto.batch's __init__ (Batch, EC2 and ECS models: seconds of CPU) runs
    only when something of it is read, not when the interpreter imports it."""
    script = (
        "import sys\n"
        "from local.account.moto_fixes import install\n"
        "install()\n"
        "from moto.stepfunctions.parser.backend import execution\n"
        "assert 'moto.batch.utils' in sys.modules, 'the interpreter imports it'\n"
        "assert 'moto.ec2' not in sys.modules and 'moto.batch.models' not in sys.modules\n"
        "import moto.batch\n"
        "assert moto.batch.batch_backends['123456789012']['us-east-1'] is not None\n"
        "assert 'moto.ec2' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_sessions_share_one_loader_once_installed() -> None:
    """In a process of its own: the suite's conftest shares loaders already."""
    script = (
        "import botocore.session as s\n"
        "from local.account.moto_fixes import loaders\n"
        "loader = lambda: s.Session().get_component('data_loader')\n"
        "assert loader() is not loader(), 'botocore: one loader per session'\n"
        "loaders.install()\n"
        "first = loader()\n"
        "assert first is loader() and first.load_service_model('sagemaker', 'service-2')\n"
        "assert s.Session(profile=None).get_service_model('sagemaker').operation_names\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_definition_is_parsed_once_and_each_execution_gets_new_components() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import (
        AmazonStateLanguageParser,
        ASLParserException,
    )

    from local.account.moto_fixes import install

    install()
    definition = json.dumps(PASSES)
    first, tree = AmazonStateLanguageParser.parse(definition)
    second, same_tree = AmazonStateLanguageParser.parse(definition)
    assert same_tree is tree and second is not first
    assert type(second) is type(first)
    # components of its own, all the way down, and the same ones
    assert second.states is not first.states
    assert second.states.states is not first.states.states
    assert list(second.states.states) == list(first.states.states) == ["P1", "P2", "P3", "P4"]
    with pytest.raises(ASLParserException):
        AmazonStateLanguageParser.parse('{"StartAt": "P1", "States": {')
    with pytest.raises(ASLParserException):  # a refused definition stays refused
        AmazonStateLanguageParser.parse('{"StartAt": "P1", "States": {')


def test_the_interpreter_reuses_one_client_per_region_and_service() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    from local.account.moto_fixes import install

    install()
    make = lambda_eval_utils.boto_client_for
    first = make(region="us-east-1", service="lambda", state_credentials=None)
    assert make(region="us-east-1", service="lambda", state_credentials=None) is first
    assert make(region="eu-west-1", service="lambda") is not first
    assert make(region="us-east-1", service="sns").meta.service_model.service_name == "sns"


def test_the_server_finds_each_hosts_backend_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backend of a host is moto's own answer, looked up once per host
    (moto lists its package folder and tries every URL pattern per request)."""
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.server import create_backend_app

    from local.account.moto_fixes import install

    install()
    app = DomainDispatcherApplication(create_backend_app)
    hosts = {
        "states.us-east-1.amazonaws.com": "stepfunctions",
        "s3.eu-west-1.amazonaws.com": "s3",
        "api.sagemaker.us-east-1.amazonaws.com": "sagemaker",
        "lambda.us-east-1.amazonaws.com": "awslambda",
        "moto_api": "moto_api",
    }
    assert {host: app.get_backend_for_host(host) for host in hosts} == hosts
    assert app.get_backend_for_host(None) is None
    listed: list[int] = []
    listing = backends.list_of_moto_modules
    monkeypatch.setattr(backends, "list_of_moto_modules", lambda: listed.append(1) or listing())
    assert {host: app.get_backend_for_host(host) for host in hosts} == hosts
    assert listed == []
    assert app.get_backend_for_host("sqs.us-east-1.amazonaws.com") == "sqs"
    assert listed == [1]


FAILS = {
    "StartAt": "Try",
    "States": {
        "Try": {
            "Type": "Parallel",
            "Branches": [{"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E"}}}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Wait"}],
            "Next": "Wait",
        },
        "Wait": {"Type": "Wait", "Seconds": 0, "Next": "Out"},
        "Out": {"Type": "Fail", "Error": "Gate", "Cause": "a readable cause"},
    },
}


def test_a_history_page_is_the_json_moto_serializes_for_it(sfn: Any) -> None:
    """The page GetExecutionHistory answers is written by json.dumps, not by
    moto's serializer: both bodies are the same JSON for real histories."""
    from moto.core.serialize import XFormedAttributePicker, get_serializer_class
    from moto.core.utils import get_service_model
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    from local.account.moto_fixes.stepfunctions import history_page_json

    operation = get_service_model("stepfunctions").operation_model("GetExecutionHistory")
    serializer = get_serializer_class("stepfunctions", "json")(
        operation_model=operation, pretty_print=False, value_picker=XFormedAttributePicker()
    )
    backend = stepfunctions_parser_backends[ACCOUNT][REGION]
    for name, definition, ending in (
        ("json-passes", PASSES, "SUCCEEDED"),
        ("json-fails", FAILS, "FAILED"),
    ):
        arn = sfn.start_execution(
            stateMachineArn=_machine(sfn, name, definition), input='{"x": [1, null, "é"]}'
        )["executionArn"]
        _until(lambda a=arn, e=ending: sfn.describe_execution(executionArn=a)["status"] == e)
        events = list(
            backend.describe_execution(arn).exec_worker.env.event_manager._history_event_list
        )
        assert len(events) >= 6
        page = {"events": events, "nextToken": "token"}
        expected = json.loads(serializer.serialize(page)["body"])
        assert json.loads(history_page_json(page)) == expected
        assert sfn.get_execution_history(executionArn=arn)["events"][-1]["type"].startswith(
            "Execution"
        )


@pytest.mark.parametrize(
    ("expression", "timezone", "says"),
    [
        ("cron(0 3 * * 1)", "UTC", "cron takes 6 fields"),
        ("cron(0 3 * * MON *)", "UTC", "one of day-of-month and day-of-week must be '?'"),
        ("rate(0 days)", "UTC", "the rate must be positive"),
        ("rate(7 days)", "Europe/Berln", "Invalid ScheduleExpressionTimezone Europe/Berln"),
    ],
)
def test_scheduler_refuses_a_schedule_aws_refuses(
    moto_url: str, expression: str, timezone: str, says: str
) -> None:
    scheduler = _client(moto_url, "scheduler")
    name = f"bad-{uuid.uuid4().hex[:12]}"
    target = {"Arn": "arn:aws:lambda:us-east-1:123456789012:function:f", "RoleArn": ROLE}

    def schedule(expression: str, timezone: str) -> dict[str, Any]:
        return {
            "Name": name,
            "ScheduleExpression": expression,
            "ScheduleExpressionTimezone": timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": target,
        }

    with pytest.raises(ClientError) as info:
        scheduler.create_schedule(**schedule(expression, timezone))
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert says in info.value.response["Error"]["Message"]
    scheduler.create_schedule(**schedule("cron(0 3 ? * MON *)", "Europe/Berlin"))
    try:
        with pytest.raises(ClientError) as info:
            scheduler.update_schedule(**schedule(expression, timezone))
        assert info.value.response["Error"]["Code"] == "ValidationException"
        assert scheduler.get_schedule(Name=name)["ScheduleExpression"] == "cron(0 3 ? * MON *)"
    finally:
        # moto's state is per process: a local account started later in this
        # worker (the e2e tests) would list the schedule as its own.
        scheduler.delete_schedule(Name=name)


def test_the_scheduler_check_names_the_name_rule() -> None:
    from local.account.moto_fixes.scheduler import problem

    assert problem("ok-name_1.2", "rate(1 day)", "UTC") is None
    assert "length between 1 and 64" in (problem("x" * 65, "rate(1 day)", None) or "")
    assert "regular expression" in (problem("has space", "rate(1 day)", None) or "")
