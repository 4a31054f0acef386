"""lambdas._handler.task: the settings, the failure log and the raised error
every state's handler shares."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from test_handlers import ENV, FakeContext

from lambdas import _handler
from lambdas._env import Settings
from pipeline_core.errors import InvalidConfigError, PipelineError, ThrottlingError

#: The name each handler's failure is logged under (``"<name> failed"``).
FAILURE_NAMES = {
    "approval_decided": "ApprovalDecided",
    "await_approval": "WaitForApproval",
    "convert": "ConvertDataset",
    "convert_shard": "ConvertShard",
    "deploy": "Deploy",
    "describe_endpoint": "DescribeEndpoint",
    "describe_transform": "DescribeTransform",
    "describe_tuning": "DescribeTuning",
    "endpoint_ttl": "EndpointTtl",
    "evaluate": "Evaluate",
    "execution_ended": "ExecutionEnded",
    "finalize_dataset": "FinalizeDataset",
    "load_model_package": "LoadModelPackage",
    "register_model": "RegisterModel",
    "schedule_ttl": "ScheduleEndpointTtl",
    "start_transform": "StartTransform",
    "start_tuning": "StartTuning",
    "validate_input": "ValidateInput",
}


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    # Every optional setting, so no handler stops at Settings.require.
    for key in ("TOPIC_ARN", "TTL_FUNCTION_ARN", "SCHEDULER_ROLE_ARN"):
        monkeypatch.setenv(key, f"arn:aws:test:{key.lower()}")


@pytest.fixture
def failures(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the handlers log with logger.exception."""
    logged: list[str] = []
    monkeypatch.setattr(_handler.logger, "exception", lambda msg, *_a, **_k: logged.append(msg))
    return logged


def test_the_work_runs_with_the_settings_of_this_invocation(
    monkeypatch: pytest.MonkeyPatch, failures: list[str]
) -> None:
    @_handler.task("Probe")
    def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
        return {"event": event, "bucket": s.bucket, "context": context}

    context = FakeContext()
    out = handler({"a": 1}, context)
    assert out == {"event": {"a": 1}, "bucket": ENV["DATA_BUCKET"], "context": context}
    monkeypatch.setenv("DATA_BUCKET", "another-bucket")
    assert handler({}, context)["bucket"] == "another-bucket"
    assert failures == []


def test_a_failure_is_logged_under_the_state_name_and_raised_unchanged(
    failures: list[str],
) -> None:
    boom = ThrottlingError("slow down")

    @_handler.task("Probe")
    def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
        raise boom

    with pytest.raises(ThrottlingError) as raised:
        handler({}, FakeContext())
    assert raised.value is boom  # Step Functions matches Retry/Catch on its class name
    assert failures == ["Probe failed"]


def test_settings_that_cannot_load_raise_without_the_failure_log(
    monkeypatch: pytest.MonkeyPatch, failures: list[str]
) -> None:
    monkeypatch.setenv("PIPELINE_CONFIG", "{not json")

    @_handler.task("Probe")
    def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
        raise AssertionError("the work runs only with settings")

    with pytest.raises(InvalidConfigError, match="not JSON"):
        handler({}, FakeContext())
    assert failures == []


@pytest.mark.parametrize("name", sorted(FAILURE_NAMES))
def test_every_handler_logs_its_failure_under_its_state_name(
    monkeypatch: pytest.MonkeyPatch, failures: list[str], name: str
) -> None:
    module = importlib.import_module(f"lambdas.{name}")

    def no_clients(_s: Settings) -> Any:
        raise ThrottlingError("no clients here")

    monkeypatch.setattr(module, "_clients", no_clients)
    # An empty event fails on its first field (ExecutionEnded: not an execution
    # event), or on the clients (ValidateInput, the approval handlers).
    with pytest.raises((PipelineError, ValueError)):
        module.handler({}, FakeContext())
    assert failures == [f"{FAILURE_NAMES[name]} failed"]
