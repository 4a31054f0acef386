"""Run the synthesized pipeline end to end on this machine.

1. Synthesize the CDK app (bundling skipped) and take the state machine's
   ASL and every Lambda's handler and environment from the template.
2. Start moto (S3, SNS, Step Functions executing the ASL) and the local
   SageMaker service, all on 127.0.0.1.
3. Create the bucket and topic the template would create, then the state
   machine from the synthesized definition, and start an execution.
4. Follow the execution history live, then collect the report.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from local.account import STATE_MACHINE_NAME, LocalAccount
from local.lambda_dispatch import LambdaDispatcher
from local.sagemaker_service import LocalSageMaker
from local.synth import SynthesizedPipeline, synthesize

Printer = Callable[[str], None]

__all__ = ["STATE_MACHINE_NAME", "LocalPipeline", "RunResult", "reset_dir"]


@dataclass
class RunResult:
    status: str
    execution_name: str
    execution_arn: str
    output: dict[str, Any] | None
    error: str | None
    cause: str | None
    failed_state: str | None
    timings: dict[str, float]
    events: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


class LocalPipeline:
    """Owns the embedded services for one or more executions."""

    def __init__(
        self,
        *,
        work_dir: Path,
        backend: Any,
        synthesized: SynthesizedPipeline | None = None,
        poll_seconds: int = 1,
        printer: Printer = print,
        lambda_log_level: str = "WARNING",
        config_overrides: dict[str, Any] | None = None,
    ) -> None:
        self.lambda_log_level = lambda_log_level
        self.config_overrides = config_overrides or {}
        self.work_dir = work_dir
        self.print = printer
        self.synth = synthesized or synthesize()
        self.poll_seconds = poll_seconds
        self.backend = backend
        self.account: LocalAccount | None = None
        self.sagemaker: LocalSageMaker | None = None
        self.dispatcher: LambdaDispatcher | None = None
        self.state_machine_arn = ""
        self.topic_arn = ""
        self.bucket = ""

    # -- lifecycle ----------------------------------------------------------------

    def __enter__(self) -> LocalPipeline:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.account = LocalAccount(
            work_dir=self.work_dir,
            backend=self.backend,
            on_sagemaker_event=self._on_sagemaker_event,
            log_level=self.lambda_log_level,
        )
        self.account.start()
        self.sagemaker = self.account.sagemaker
        deployment = self.account.deploy_pipeline(
            self.synth,
            function_overrides={"ALLOW_LOCAL_SOURCES": "true"},
            config_overrides={"poll_seconds": self.poll_seconds, **self.config_overrides},
        )
        self.dispatcher = deployment.dispatcher
        self.state_machine_arn = deployment.state_machine_arn
        self.bucket = deployment.bucket
        self.topic_arn = deployment.topic_arn

    def stop(self) -> None:
        if self.account is not None:
            self.account.stop()
            self.account = None

    @property
    def sagemaker_url(self) -> str:
        assert self.account is not None
        return self.account.sagemaker_url

    # -- progress -------------------------------------------------------------------

    def _on_sagemaker_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "training_job_done":
            hp = data.get("tuned_hyperparameters") or {}
            params = ", ".join(f"{k}={_short(v)}" for k, v in sorted(hp.items()))
            status = data.get("status", "?")
            metric = data.get("objective")
            value = "" if metric is None else f" -> {data.get('metric_name')}={metric:.4f}"
            reason = f" ({data.get('failure_reason')})" if data.get("failure_reason") else ""
            self.print(f"      job {data.get('name')}: {status} [{params}]{value}{reason}")

    # -- executions -----------------------------------------------------------------

    def execute(
        self, execution_input: dict[str, Any], name: str, timeout: float = 1800.0
    ) -> RunResult:
        sfn = boto3.client("stepfunctions")
        arn = sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=name,
            input=json.dumps(execution_input),
        )["executionArn"]
        started = time.monotonic()
        seen = 0
        entered: dict[str, float] = {}
        timings: dict[str, float] = {}
        events: list[dict[str, Any]] = []
        while True:
            desc = sfn.describe_execution(executionArn=arn)
            events = _history(sfn, arn)
            for event in events[seen:]:
                kind = event["type"]
                ts = event["timestamp"].timestamp()
                if kind.endswith("StateEntered"):
                    state = event["stateEnteredEventDetails"]["name"]
                    entered[state] = ts
                    self.print(f"  > {state}  (+{time.monotonic() - started:.1f}s)")
                elif kind.endswith("StateExited"):
                    state = event["stateExitedEventDetails"]["name"]
                    spent = ts - entered.get(state, ts)
                    timings[state] = timings.get(state, 0.0) + spent
            seen = len(events)
            if desc["status"] != "RUNNING":
                break
            if time.monotonic() - started > timeout:
                sfn.stop_execution(
                    executionArn=arn, error="LocalTimeout", cause="local run timed out"
                )
                raise TimeoutError(f"execution {name} did not finish in {timeout:.0f}s")
            time.sleep(0.1)
        output = json.loads(desc["output"]) if desc.get("output") else None
        failed_state = None
        if desc["status"] != "SUCCEEDED":
            failed_state = _first_failed_task(events)
        return RunResult(
            status=desc["status"],
            execution_name=name,
            execution_arn=arn,
            output=output,
            error=desc.get("error"),
            cause=desc.get("cause"),
            failed_state=failed_state,
            timings=timings,
            events=events,
            seconds=time.monotonic() - started,
        )

    def download_bucket(self, dest: Path, prefix: str = "") -> int:
        """Copy every object the pipeline wrote (under ``prefix``) to ``dest``."""
        s3 = boto3.client("s3")
        count = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                target = dest / obj["Key"]
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(self.bucket, obj["Key"], str(target))
                count += 1
        return count


def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        token = page.get("nextToken")
        if not token:
            return events
        kwargs["nextToken"] = token


def _first_failed_task(events: list[dict[str, Any]]) -> str | None:
    """The state whose failure ended the execution: the last task that failed
    and was not then retried to success, else the Fail state reached."""
    current: str | None = None
    candidate: str | None = None
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            current = event["stateEnteredEventDetails"]["name"]
            if kind == "FailStateEntered":
                return candidate or current
        elif kind in (
            "TaskFailed",
            "LambdaFunctionFailed",
            "TaskTimedOut",
            "LambdaFunctionTimedOut",
        ):
            candidate = current
        elif kind in ("TaskSucceeded", "LambdaFunctionSucceeded") and candidate == current:
            candidate = None  # a Retry made it succeed after all
    return candidate or current


def _short(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number.is_integer():
        return str(int(number))
    return f"{number:.3g}"


def reset_dir(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
