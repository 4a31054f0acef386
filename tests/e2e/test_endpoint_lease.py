"""One deploy at a time per endpoint: two executions deploy to one endpoint at
once in the embedded services, through the synthesized state machine, the real
handlers and the lease table the template declares."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.account.runner import LOCAL_LEASE_INTERVAL_SECONDS, LocalPipeline, RunResult
from local.account.synth import SynthesizedPipeline

FAST = {"max_jobs": 2, "max_parallel_jobs": 2}
BUSY = "EndpointBusyError"
#: What each module fixture's runner printed.
PRINTED: list[str] = []


def _synthesized(busy: str) -> SynthesizedPipeline:
    from aws_cdk.assertions import Template

    from tests.stack.helpers import synth

    pipeline = {"endpoint_busy": busy, "endpoint_busy_interval_seconds": 1}
    _app, stack, _assembly = synth({"pipeline": pipeline}, nag=False)
    return SynthesizedPipeline(dict(Template.from_stack(stack).to_json()))


@pytest.fixture(scope="module", params=["wait", "fail"])
def leased(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalPipeline]:
    from local.account.backend import LinearLearnerBackend

    work = tmp_path_factory.mktemp(f"lease-{request.param}")
    with LocalPipeline(
        work_dir=work,
        backend=LinearLearnerBackend(work_dir=work / "backend"),
        synthesized=_synthesized(request.param),
        poll_seconds=1,
        printer=PRINTED.append,
    ) as running:
        yield running


def _failures(result: RunResult) -> list[tuple[str, str]]:
    """(error, cause) of every failed task attempt in the history."""
    found = []
    for event in result.events:
        for key, details in event.items():
            if key.endswith("EventDetails") and isinstance(details, dict) and "error" in details:
                if event["type"].endswith("Failed"):
                    found.append((str(details["error"]), str(details.get("cause", ""))))
    return found


def _errors(result: RunResult) -> list[str]:
    return [error for error, _cause in _failures(result)]


def _when(result: RunResult, kind: str, state: str) -> list[float]:
    key = "stateEnteredEventDetails" if kind == "Entered" else "stateExitedEventDetails"
    return [
        e["timestamp"].timestamp()
        for e in result.events
        if e["type"].endswith(f"State{kind}") and e[key]["name"] == state
    ]


def _run_two_at_once(pipeline: LocalPipeline, source: Path, prefix: str) -> list[RunResult]:
    """Start two executions on the same (default) endpoint together. The first
    to evaluate is held in Evaluate, lease in hand, until the other one's Deploy
    has been refused as busy, so the two deploys really overlap."""
    assert pipeline.dispatcher is not None
    dispatcher = pipeline.dispatcher
    held: list[str] = []

    def hold_first_evaluate(event: dict[str, Any]) -> None:
        if held:
            return
        held.append(event["run"]["execution_name"])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(i.error == BUSY for i in list(dispatcher.invocations)):
                return
            time.sleep(0.05)

    dispatcher.fault_hooks["lambdas.evaluate.handler"] = hold_first_evaluate
    results: dict[str, RunResult] = {}
    names = [f"{prefix}-a", f"{prefix}-b"]

    def run(name: str) -> None:
        results[name] = pipeline.execute({"source": str(source), **FAST}, name, timeout=300)

    threads = [threading.Thread(target=run, args=(n,)) for n in names]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(320)
    finally:
        dispatcher.fault_hooks.clear()
    assert held, "no execution reached Evaluate"
    first = held[0]
    second = next(n for n in names if n != first)
    return [results[first], results[second]]


def _lease_items(pipeline: LocalPipeline) -> list[dict[str, Any]]:
    ddb = boto3.client("dynamodb")
    (table,) = ddb.list_tables()["TableNames"]
    items: list[dict[str, Any]] = ddb.scan(TableName=table)["Items"]
    return items


def test_two_executions_on_one_endpoint_deploy_one_at_a_time(
    leased: LocalPipeline, small_dataset: Path
) -> None:
    config = leased.synth.lambda_functions(region="us-east-1", account="123456789012")
    mode = next(iter(config.values())).environment["PIPELINE_CONFIG"]
    busy_mode = "fail" if '"endpoint_busy":"fail"' in mode else "wait"
    first, second = _run_two_at_once(leased, small_dataset, f"lease-{busy_mode}")

    assert first.status == "SUCCEEDED", (first.error, first.cause)
    assert BUSY not in _errors(first)
    # The second was refused by the lease the first held (not by SageMaker's
    # own "endpoint is Creating/Updating" state, which also raises the error).
    refusals = [cause for error, cause in _failures(second) if error == BUSY]
    assert refusals
    assert all(f"being deployed by execution {first.execution_name}" in c for c in refusals)
    if busy_mode == "fail":
        # Fail fast: no retry, the run ends in EndpointBusy naming the holder.
        assert second.status == "FAILED"
        assert second.error == BUSY
        assert f"being deployed by execution {first.execution_name}" in (second.cause or "")
        assert _when(second, "Entered", "EndpointBusy")
        assert "Evaluate" not in {s for s in second.timings}
    else:
        # Wait: Deploy retried until the first released the lease after Evaluate.
        assert second.status == "SUCCEEDED", (second.error, second.cause)
        first_done = max(_when(first, "Exited", "Evaluate"))
        second_deployed = max(_when(second, "Exited", "Deploy"))
        assert second_deployed > first_done
        served = boto3.client("sagemaker").describe_endpoint(
            EndpointName=(second.output or {})["endpoint_name"]
        )
        assert served["EndpointConfigName"] == (second.output or {})["endpoint_config_name"]
        assert f"waiting for the endpoint lease held by {first.execution_name}" in "\n".join(
            PRINTED
        )
    assert (first.output or {})["endpoint_name"].startswith("mnist-ll-mnistlinearlearnerpipeline-")
    assert _lease_items(leased) == []  # every lease was given back


def test_the_local_account_retries_a_held_lease_at_its_own_short_interval(
    leased: LocalPipeline,
) -> None:
    definition = json.loads(
        boto3.client("stepfunctions").describe_state_machine(
            stateMachineArn=leased.state_machine_arn
        )["definition"]
    )
    retries = [
        r
        for state in definition["States"].values()
        for r in state.get("Retry", [])
        if BUSY in r["ErrorEquals"]
    ]
    config = leased.synth.lambda_functions(region="us-east-1", account="123456789012")
    if '"endpoint_busy":"fail"' in next(iter(config.values())).environment["PIPELINE_CONFIG"]:
        assert retries == []  # fail fast: no retry to shorten
    else:
        assert [r["IntervalSeconds"] for r in retries] == [LOCAL_LEASE_INTERVAL_SECONDS]
