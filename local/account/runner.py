"""Run the synthesized pipeline end to end on this machine.

1. Synthesize the CDK app (bundling skipped) and take the state machine's
   ASL and every Lambda's handler and environment from the template.
2. Start moto (S3, SNS, Step Functions executing the ASL) and the local
   SageMaker service, all on 127.0.0.1.
3. Create the bucket, topic and tables the template would create, then the state
   machine from the synthesized definition, and start an execution.
4. Follow the execution history live, then collect the report.
5. If the execution did not succeed (a Fail state, ``--timeout``, Ctrl-C),
   wait for the account's "Execution Status Change" event to reach the
   template's end-of-execution rule (local/account/execution_events.py) and
   report what its ExecutionEnded Lambda answered: the run's jobs are
   stopped as in the cloud.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import boto3

from local.account.lambda_dispatch import LambdaDispatcher
from local.account.local_account import STATE_MACHINE_NAME, LocalAccount
from local.account.scheduler import Attempt, Clock
from local.account.synth import SynthesizedPipeline, synthesize
from local.emulator.channels import WHOLE_OBJECT
from local.emulator.service import LocalSageMaker
from pipeline_core.s3io import local_path

Printer = Callable[[str], None]

__all__ = ["STATE_MACHINE_NAME", "LocalPipeline", "RunResult", "reset_dir"]
#: An SQS queue subscribed to the topic, so the run can show what was notified.
NOTIFICATIONS_QUEUE = "mnist-ll-local-notifications"
END_HANDLER = "lambdas.execution_ended.handler"
#: Deploy's retry interval on a held endpoint lease in the local account: the
#: cloud waits endpoint_busy_interval_seconds (120) between tries, a local
#: deployment takes seconds.
LOCAL_LEASE_INTERVAL_SECONDS = 2
#: The history's last event of an ended execution.
_END_EVENTS = frozenset(
    ("ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut")
)
#: Seconds between history polls; the history shows when the execution ends,
#: and DescribeExecution is asked then, and every ``_DESCRIBE_EVERY`` polls.
_POLL_SECONDS = 0.2
_DESCRIBE_EVERY = 10


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
    #: What the ExecutionEnded handler answered (None: the execution succeeded).
    ended: dict[str, Any] | None = None


class Progress(Protocol):
    """What a run reports as it goes (``local.cli.progress.PhaseProgress``)."""

    def state(self, name: str, elapsed: float) -> None: ...

    def job(self, data: dict[str, Any]) -> None: ...

    def note(self, line: str) -> None: ...

    def finish(self, status: str) -> None: ...


class StateTrace:
    """The per-state trace (``--verbose``, and what tests read): every state
    as it is entered and every training job as it ends, one line each."""

    def __init__(self, printer: Printer) -> None:
        self.print = printer

    def state(self, name: str, elapsed: float) -> None:
        self.print(f"  > {name}  (+{elapsed:.1f}s)")

    def job(self, data: dict[str, Any]) -> None:
        hp = data.get("tuned_hyperparameters") or {}
        params = ", ".join(f"{k}={_short(v)}" for k, v in sorted(hp.items()))
        status = data.get("status", "?")
        metric = data.get("objective")
        value = "" if metric is None else f" -> {data.get('metric_name')}={metric:.4f}"
        reason = f" ({data.get('failure_reason')})" if data.get("failure_reason") else ""
        self.print(f"      job {data.get('name')}: {status} [{params}]{value}{reason}")

    def note(self, line: str) -> None:
        self.print(line)

    def finish(self, status: str) -> None:
        pass


class LocalPipeline:
    """Owns the embedded services for one or more executions."""

    def __init__(
        self,
        *,
        work_dir: Path,
        backend: Any,
        synthesized: SynthesizedPipeline | Future[SynthesizedPipeline] | None = None,
        poll_seconds: int = 1,
        printer: Printer = print,
        lambda_log_level: str = "WARNING",
        config_overrides: dict[str, Any] | None = None,
        clock: Clock | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.clock = clock
        #: Reports states and jobs: as phases (local/cli/progress.py), or by
        #: default as the per-state trace.
        self.progress: Progress = progress or StateTrace(printer)
        self.lambda_log_level = lambda_log_level
        self.config_overrides = config_overrides or {}
        self.work_dir = work_dir
        self.print = printer
        # A Future: the synth runs while the account starts (see start()).
        self._pending_synth = synthesized if isinstance(synthesized, Future) else None
        if self._pending_synth is None:
            self.synth = (
                synthesized if isinstance(synthesized, SynthesizedPipeline) else synthesize()
            )
        self.poll_seconds = poll_seconds
        self.backend = backend
        self.account: LocalAccount | None = None
        self.sagemaker: LocalSageMaker | None = None
        self.dispatcher: LambdaDispatcher | None = None
        self.state_machine_arn = ""
        self.topic_arn = ""
        self.bucket = ""
        self.queue_url = ""

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
            clock=self.clock,
        )
        self.account.start()
        self.sagemaker = self.account.sagemaker
        if self._pending_synth is not None:
            self.synth = self._pending_synth.result()
        deployment = self.account.deploy_pipeline(
            self.synth,
            function_overrides={"ALLOW_LOCAL_SOURCES": "true"},
            config_overrides={
                "poll_seconds": self.poll_seconds,
                "endpoint_busy_interval_seconds": LOCAL_LEASE_INTERVAL_SECONDS,
                **self.config_overrides,
            },
        )
        self.dispatcher = deployment.dispatcher
        self.state_machine_arn = deployment.state_machine_arn
        self.bucket = deployment.bucket
        self.topic_arn = deployment.topic_arn
        self._subscribe_queue()

    def stop(self) -> None:
        if self.account is not None:
            self.account.stop()
            self.account = None

    def _subscribe_queue(self) -> None:
        if not self.topic_arn:
            return
        sqs = boto3.client("sqs")
        # One queue per run: moto keeps state per process, and a queue shared
        # with an earlier run in it would still hold that run's messages.
        name = f"{NOTIFICATIONS_QUEUE}-{uuid.uuid4().hex[:8]}"
        self.queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        # moto's state is process-wide: an earlier run in this process may have
        # subscribed the queue already (a second subscription doubles messages).
        self.notifications()  # drop what an earlier run left
        sns = boto3.client("sns")
        subscribed = {
            sub["Endpoint"]
            for page in sns.get_paginator("list_subscriptions_by_topic").paginate(
                TopicArn=self.topic_arn
            )
            for sub in page.get("Subscriptions", [])
        }
        if queue_arn not in subscribed:
            sns.subscribe(
                TopicArn=self.topic_arn,
                Protocol="sqs",
                Endpoint=queue_arn,
                Attributes={"RawMessageDelivery": "true"},
            )

    def notifications(self) -> list[dict[str, Any]]:
        """SNS messages published since the last call (JSON-decoded when JSON)."""
        if not self.queue_url:
            return []
        sqs = boto3.client("sqs")
        out: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = got.get("Messages", [])
            if not messages:
                return out
            for m in messages:
                try:
                    out.append(json.loads(m["Body"]))
                except json.JSONDecodeError:
                    out.append({"text": m["Body"]})
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def schedules(self) -> list[dict[str, Any]]:
        """The EventBridge Scheduler schedules the account holds."""
        scheduler = boto3.client("scheduler")
        out: list[dict[str, Any]] = []
        for page in scheduler.get_paginator("list_schedules").paginate():
            for item in page.get("Schedules", []):
                got = scheduler.get_schedule(
                    Name=item["Name"], GroupName=item.get("GroupName", "default")
                )
                target = got.get("Target") or {}
                out.append(
                    {
                        "name": got["Name"],
                        "group": got.get("GroupName", "default"),
                        "expression": got.get("ScheduleExpression"),
                        "action_after_completion": got.get("ActionAfterCompletion"),
                        "target_arn": target.get("Arn"),
                        "target_input": json.loads(target.get("Input") or "null"),
                    }
                )
        return out

    def fire_schedule(self, name: str, group: str = "default") -> dict[str, Any]:
        """Fire the schedule now, as the local Scheduler does when it is due
        (local/account/scheduler.py), and answer what its Lambda target answered."""
        assert self.account is not None
        attempt: Attempt = self.account.scheduler.fire_now(name, group)
        if attempt.outcome != "delivered":
            raise RuntimeError(f"schedule {name}: target failed: {attempt.error}")
        result: dict[str, Any] = attempt.response
        return result

    def end_handler_arn(self) -> str:
        assert self.dispatcher is not None
        for arn, fn in self.dispatcher.functions.items():
            if fn.handler == END_HANDLER:
                return arn
        raise RuntimeError("the template has no ExecutionEnded function")

    def execution_ended(self, arn: str, timeout: float = 120.0) -> dict[str, Any] | None:
        """What the ExecutionEnded Lambda answered to this execution's
        "Execution Status Change" event, once the account's rule delivered it
        (None: no rule matched, as for a success)."""
        assert self.account is not None
        ending = self.account.executions.wait_ending(arn, timeout)
        end_arn = self.end_handler_arn()
        for delivery in ending.deliveries:
            if delivery.target != end_arn:
                continue
            if not delivery.done.wait(timeout):
                raise TimeoutError(f"ExecutionEnded did not answer in {timeout:.0f}s")
            if delivery.error:
                raise RuntimeError(f"ExecutionEnded failed: {delivery.response}")
            answer: dict[str, Any] = delivery.response
            return answer
        return None

    @property
    def sagemaker_url(self) -> str:
        assert self.account is not None
        return self.account.sagemaker_url

    # -- progress -------------------------------------------------------------------

    def _on_sagemaker_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "training_job_done":
            self.progress.job(data)

    # -- executions -----------------------------------------------------------------

    def execute(
        self, execution_input: dict[str, Any], name: str, timeout: float = 1800.0
    ) -> RunResult:
        execution_input = self.stage_source(execution_input, name)
        sfn = boto3.client("stepfunctions")
        arn = sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=name,
            input=json.dumps(execution_input),
        )["executionArn"]
        assert self.account is not None
        watcher = self.account.executions
        try:
            result = self._follow(sfn, arn, name, timeout)
        except TimeoutError:
            # _follow stopped it as the state machine's own timeout would: TIMED_OUT.
            self.execution_ended(arn)
            raise
        except KeyboardInterrupt:
            # A console Stop: ABORTED.
            watcher.report_as(arn, "ABORTED", error="Interrupted", cause="Ctrl-C")
            sfn.stop_execution(executionArn=arn, error="Interrupted", cause="Ctrl-C")
            self.execution_ended(arn)
            raise
        if result.status != "SUCCEEDED":
            result.ended = self.execution_ended(arn)
        return result

    def _follow(self, sfn: Any, arn: str, name: str, timeout: float) -> RunResult:
        started = time.monotonic()
        entered: dict[str, float] = {}
        timings: dict[str, float] = {}
        events: list[dict[str, Any]] = []
        end_seen = False
        for poll in itertools.count():
            new_events = _history(sfn, arn, after=events[-1]["id"] if events else 0)
            events.extend(new_events)
            end_seen = end_seen or any(e["type"] in _END_EVENTS for e in new_events)
            desc = None
            if end_seen or poll % _DESCRIBE_EVERY == 0:
                desc = sfn.describe_execution(executionArn=arn)
                if desc["status"] != "RUNNING" and not end_seen:
                    # Ended between the two calls: its last events too.
                    late = _history(sfn, arn, after=events[-1]["id"] if events else 0)
                    new_events += late
                    events.extend(late)
            for event in new_events:
                kind = event["type"]
                ts = event["timestamp"].timestamp()
                if kind.endswith("StateEntered"):
                    state = event["stateEnteredEventDetails"]["name"]
                    entered[state] = ts
                    elapsed = time.monotonic() - started
                    self.progress.state(state, elapsed)
                elif kind.endswith("StateExited"):
                    state = event["stateExitedEventDetails"]["name"]
                    spent = ts - entered.get(state, ts)
                    timings[state] = timings.get(state, 0.0) + spent
                elif (line := lease_wait_line(event)) is not None:
                    self.progress.note(line)
            if desc is not None and desc["status"] != "RUNNING":
                self.progress.finish(desc["status"])
                break
            if time.monotonic() - started > timeout:
                assert self.account is not None
                self.account.executions.report_as(
                    arn, "TIMED_OUT", error="States.Timeout", cause="local --timeout"
                )
                sfn.stop_execution(
                    executionArn=arn, error="LocalTimeout", cause="local run timed out"
                )
                raise TimeoutError(f"execution {name} did not finish in {timeout:.0f}s")
            time.sleep(_POLL_SECONDS)  # each poll costs the moto server CPU
        assert desc is not None  # the loop ends on a described end
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

    def stage_source(self, execution_input: dict[str, Any], name: str) -> dict[str, Any]:
        """A local folder ``source`` (a sharded dataset) is uploaded to the
        embedded bucket under ``sources/<execution>/`` and the input names that
        prefix instead: the Distributed Map lists S3, as it does in the cloud."""
        source = execution_input.get("source")
        if not isinstance(source, str) or "://" in source.replace("file://", "", 1):
            return execution_input
        folder = Path(local_path(source))
        if not folder.is_dir():
            return execution_input
        prefix = f"sources/{name}/"
        s3 = boto3.client("s3")
        count = 0
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if path.is_file() and not any(p.startswith(".") for p in relative.parts):
                s3.upload_file(str(path), self.bucket, prefix + relative.as_posix())
                count += 1
        self.print(f"  staged {count} shard objects from {folder} to s3://{self.bucket}/{prefix}")
        return {**execution_input, "source": f"s3://{self.bucket}/{prefix}"}

    def download_bucket(self, dest: Path, prefix: str = "") -> int:
        """Copy every object the pipeline wrote (under ``prefix``) to ``dest``."""
        s3 = boto3.client("s3")
        count = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                target = dest / obj["Key"]
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(self.bucket, obj["Key"], str(target), Config=WHOLE_OBJECT)
                count += 1
        return count


def lease_wait_line(event: dict[str, Any]) -> str | None:
    """``waiting for the endpoint lease held by <execution>`` for a task that
    failed on a held lease (Deploy's Retry then waits its turn), else None."""
    if event.get("type") not in ("TaskFailed", "LambdaFunctionFailed"):
        return None
    details = event.get("taskFailedEventDetails") or event.get("lambdaFunctionFailedEventDetails")
    if not details or details.get("error") != "EndpointBusyError":
        return None
    cause = str(details.get("cause") or "")
    holder = re.search(r"being deployed by execution ([A-Za-z0-9_-]+)", cause)
    held_by = holder[1] if holder else "another execution"
    return f"      waiting for the endpoint lease held by {held_by}"


def _history(sfn: Any, arn: str, after: int = 0) -> list[dict[str, Any]]:
    """The execution's events with an ``id`` above ``after``, oldest first.

    Read newest first and only as far back as ``after``: a poll costs the
    events that are new, not the whole history again (a run's history holds
    hundreds of events, and the runner polls five times a second)."""
    newer: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 20, "reverseOrder": True}
    while True:
        page = sfn.get_execution_history(**kwargs)
        for event in page["events"]:
            if event["id"] <= after:
                return newer[::-1]
            newer.append(event)
        token = page.get("nextToken")
        if not token:
            return newer[::-1]
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
