"""A local EventBridge Scheduler: fires the schedules moto only stores.

:class:`LocalScheduler` reads the account's schedules from moto on every
tick and, when one is due on its :class:`Clock`, delivers the target's
``Input`` as Scheduler does:

- a Lambda function: invoked asynchronously (through the account's
  :class:`~local.account.lambda_dispatch.LambdaDispatcher`); a function error
  is Lambda's to retry, as for any asynchronous invocation (two more tries,
  one and then two minutes later);
- an SQS queue (``SendMessage``), an SNS topic (``Publish``), a state
  machine (``StartExecution``).

A delivery that fails (an unknown function, a missing queue) is retried by
the target's ``RetryPolicy`` (``MaximumRetryAttempts``,
``MaximumEventAgeInSeconds``; AWS's defaults 185 and 86400) with a doubling
delay from one second up to a minute, then sent to the ``DeadLetterConfig``
queue if there is one. ``State: DISABLED``, ``StartDate``, ``EndDate``,
``ScheduleExpressionTimezone``, ``FlexibleTimeWindow`` and
``ActionAfterCompletion: DELETE`` are honoured. Expressions are read by
:mod:`pipeline_core.schedule_expressions`.

``services`` and ``make run`` use the :class:`RealClock` (a tick every
second); tests pass a :class:`TestClock`, :meth:`TestClock.advance` it and
call :meth:`LocalScheduler.tick` themselves (no background ticks then).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError

from local.account.lambda_dispatch import LambdaDispatcher
from pipeline_core.schedule_expressions import (
    At,
    ScheduleExpressionError,
    next_due,
    parse,
)

#: AWS's RetryPolicy defaults.
DEFAULT_RETRY_ATTEMPTS = 185
DEFAULT_EVENT_AGE = 86400
#: Lambda's own retries of an asynchronous invocation whose function failed.
LAMBDA_ASYNC_RETRY_DELAYS = (60, 120)


class Clock(Protocol):
    def now(self) -> datetime: ...


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class TestClock:
    """A clock that moves only when told (``advance``)."""

    __test__ = False  # not a pytest class

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0.0, **delta: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds, **delta)
            return self._now


@dataclass(eq=False)
class Attempt:
    """One delivery of one firing, and what came of it."""

    schedule: str  # "group/name"
    target: str
    scheduled: datetime
    attempt: int = 0  # Scheduler's retries so far
    lambda_retries: int = 0
    due: datetime | None = None
    outcome: str = "pending"  # delivered | failed | dead-lettered | dropped
    error: str | None = None
    response: Any = None
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Tracked:
    signature: tuple[Any, ...]
    due: datetime | None


class DeliveryError(Exception):
    """The target could not be reached (Scheduler retries these)."""


def _signature(got: dict[str, Any]) -> tuple[Any, ...]:
    return (
        got.get("ScheduleExpression"),
        got.get("ScheduleExpressionTimezone"),
        got.get("StartDate"),
        got.get("EndDate"),
        json.dumps(got.get("FlexibleTimeWindow"), sort_keys=True, default=str),
        got.get("LastModificationDate"),
    )


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value), UTC)


def _flexible_offset(got: dict[str, Any], due: datetime) -> timedelta:
    """Within a FLEXIBLE window: a stable point in it per schedule and firing."""
    window = got.get("FlexibleTimeWindow") or {}
    if window.get("Mode") != "FLEXIBLE":
        return timedelta(0)
    seconds = int(window.get("MaximumWindowInMinutes", 1)) * 60
    digest = hashlib.sha256(f"{got.get('Arn')}@{due.isoformat()}".encode()).digest()
    return timedelta(seconds=int.from_bytes(digest[:4], "big") % seconds)


class LocalScheduler:
    """Fires the account's schedules on a clock."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        dispatcher: LambdaDispatcher | None = None,
        interval: float = 1.0,
    ) -> None:
        self.clock: Clock = clock or RealClock()
        #: Lambda targets run here (set when a template is deployed).
        self.dispatcher = dispatcher
        self.interval = interval
        self.attempts: list[Attempt] = []
        self.problems: list[str] = []
        self._tracked: dict[str, _Tracked] = {}
        self._retries: list[tuple[Attempt, dict[str, Any]]] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clients: dict[tuple[tuple[str, str], ...], Any] = {}
        #: Whether this scheduler's account is the live one (local/account/liveness.py).
        self.live: Callable[[], bool] = lambda: True

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        if isinstance(self.clock, TestClock):
            return  # its time moves only when a test advances it, and the test ticks
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="local-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Join the Lambda invocations under way."""
        for thread in list(self._threads):
            thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if not self.live():
                continue  # a newer account in this process fires these (liveness.py)
            try:
                self.tick()
            except Exception as e:  # moto going away: the next tick retries
                self.problems.append(f"tick: {type(e).__name__}: {e}")

    # -- what is due -----------------------------------------------------------------

    def _scheduler_client(self) -> Any:
        """One client per AWS_* environment: the loop lists every second, and a
        client costs more to build than the calls it makes."""
        key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                found = self._clients[key] = boto3.client("scheduler")
        return found

    def schedules(self) -> list[dict[str, Any]]:
        client = self._scheduler_client()
        out: list[dict[str, Any]] = []
        for page in client.get_paginator("list_schedules").paginate():
            for item in page.get("Schedules", []):
                group = item.get("GroupName", "default")
                try:
                    out.append(client.get_schedule(Name=item["Name"], GroupName=group))
                except ClientError:
                    continue  # deleted meanwhile
        return out

    def tick(self) -> list[Attempt]:
        """Deliver every schedule due by the clock's now, and due retries."""
        with self._lock:
            now = self.clock.now()
            fired: list[Attempt] = []
            seen: set[str] = set()
            for got in self.schedules():
                key = f"{got.get('GroupName', 'default')}/{got['Name']}"
                seen.add(key)
                fired.extend(self._check(key, got, now))
            for key in set(self._tracked) - seen:
                del self._tracked[key]
            pending, self._retries = self._retries, []
            for attempt, got in pending:
                if attempt.due is None or attempt.due > now:
                    self._retries.append((attempt, got))
                    continue
                self._deliver(attempt, got)
            return fired

    def _next(self, got: dict[str, Any], after: datetime) -> datetime | None:
        try:
            expression = parse(str(got.get("ScheduleExpression", "")))
        except ScheduleExpressionError as e:
            self.problems.append(f"{got.get('Name')}: {e}")
            return None
        start = _aware(got.get("StartDate"))
        end = _aware(got.get("EndDate"))
        due = next_due(
            expression,
            after=after,
            timezone=str(got.get("ScheduleExpressionTimezone") or "UTC"),
            start=start,
            created=_aware(got.get("CreationDate")),
        )
        if due is None or (end is not None and due > end):
            return None
        return due + _flexible_offset(got, due)

    def _check(self, key: str, got: dict[str, Any], now: datetime) -> list[Attempt]:
        signature = _signature(got)
        tracked = self._tracked.get(key)
        if tracked is None or tracked.signature != signature:
            # New: due from its creation (a rate without StartDate fires at once);
            # updated: from now on.
            created = _aware(got.get("CreationDate")) or now
            anchor = min(created, now) - timedelta(microseconds=1) if tracked is None else now
            tracked = _Tracked(signature, self._next(got, anchor))
            self._tracked[key] = tracked
        if got.get("State", "ENABLED") != "ENABLED":
            return []
        fired: list[Attempt] = []
        while tracked.due is not None and tracked.due <= now:
            scheduled = tracked.due
            attempt = Attempt(key, got["Target"]["Arn"], scheduled)
            self.attempts.append(attempt)
            fired.append(attempt)
            self._deliver(attempt, got)
            if isinstance(parse(got["ScheduleExpression"]), At):
                tracked.due = None
            else:
                # Missed instants are not made up: the next one after now.
                tracked.due = self._next(got, max(scheduled, now))
        if fired and tracked.due is None and got.get("ActionAfterCompletion") == "DELETE":
            self._delete(got)  # its last invocation is made (retries go on without it)
        return fired

    def _delete(self, got: dict[str, Any]) -> None:
        try:
            boto3.client("scheduler").delete_schedule(
                Name=got["Name"], GroupName=got.get("GroupName", "default")
            )
        except ClientError:
            pass  # the target deleted it itself
        self._tracked.pop(f"{got.get('GroupName', 'default')}/{got['Name']}", None)

    def fire_now(self, name: str, group: str = "default") -> Attempt:
        """Deliver the schedule's target at once and wait for it (Lambda too),
        then delete a one-time ``DELETE`` schedule: "what Scheduler does when
        it is due", for callers that cannot wait for the clock."""
        got = boto3.client("scheduler").get_schedule(Name=name, GroupName=group)
        with self._lock:
            attempt = Attempt(f"{group}/{name}", got["Target"]["Arn"], self.clock.now())
            self.attempts.append(attempt)
            self._deliver(attempt, got, wait=True)
            if got.get("ActionAfterCompletion") == "DELETE" and attempt.outcome == "delivered":
                self._delete(got)
        return attempt

    # -- delivery --------------------------------------------------------------------

    def _deliver(self, attempt: Attempt, got: dict[str, Any], *, wait: bool = False) -> None:
        target = got["Target"]
        arn = str(target["Arn"])
        body = target.get("Input") or "{}"
        try:
            if ":lambda:" in arn:
                self._invoke_lambda(attempt, got, body, wait=wait)
                return
            if ":sqs:" in arn:
                _send_sqs(arn, body)
            elif ":sns:" in arn:
                boto3.client("sns").publish(TopicArn=arn, Message=body)
            elif ":states:" in arn:
                # Step Functions names it when no name is given; moto 5.2.5 names it "None".
                boto3.client("stepfunctions").start_execution(
                    stateMachineArn=arn, input=body, name=str(uuid.uuid4())
                )
            else:
                raise DeliveryError(f"the local Scheduler has no target type for {arn}")
        except (DeliveryError, ClientError) as e:
            self._failed(attempt, got, f"{type(e).__name__}: {e}")
            return
        attempt.outcome = "delivered"
        attempt.done.set()

    def _invoke_lambda(
        self, attempt: Attempt, got: dict[str, Any], body: str, *, wait: bool
    ) -> None:
        dispatcher = self.dispatcher
        if dispatcher is None:
            raise DeliveryError("no Lambda functions are deployed in the local account")
        try:
            dispatcher.lookup(str(got["Target"]["Arn"]))
        except KeyError as e:
            raise DeliveryError(f"ResourceNotFoundException: {e}") from e

        def run() -> None:
            payload, failed = dispatcher.invoke(str(got["Target"]["Arn"]), body)
            attempt.response = json.loads(payload or b"null")
            if failed and attempt.lambda_retries < len(LAMBDA_ASYNC_RETRY_DELAYS):
                delay = LAMBDA_ASYNC_RETRY_DELAYS[attempt.lambda_retries]
                retry = Attempt(
                    attempt.schedule, attempt.target, attempt.scheduled, attempt.attempt,
                    attempt.lambda_retries + 1, self.clock.now() + timedelta(seconds=delay),
                )  # fmt: skip
                with self._lock:
                    self.attempts.append(retry)
                    self._retries.append((retry, got))
            attempt.outcome = "failed" if failed else "delivered"
            attempt.error = str(attempt.response) if failed else None
            attempt.done.set()

        if wait:
            run()
            return
        attempt.outcome = "delivered"  # accepted: Lambda runs it on its own
        thread = threading.Thread(target=run, name=f"schedule-{attempt.schedule}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _failed(self, attempt: Attempt, got: dict[str, Any], error: str) -> None:
        policy = got["Target"].get("RetryPolicy") or {}
        max_attempts = int(policy.get("MaximumRetryAttempts", DEFAULT_RETRY_ATTEMPTS))
        max_age = int(policy.get("MaximumEventAgeInSeconds", DEFAULT_EVENT_AGE))
        attempt.outcome, attempt.error = "failed", error
        delay = timedelta(seconds=min(60, 2**attempt.attempt))
        due = self.clock.now() + delay
        exhausted = None
        if attempt.attempt >= max_attempts:
            exhausted = "MaximumRetryAttempts"
        elif due - attempt.scheduled > timedelta(seconds=max_age):
            exhausted = "MaximumEventAgeInSeconds"
        if exhausted is None:
            retry = Attempt(
                attempt.schedule, attempt.target, attempt.scheduled, attempt.attempt + 1
            )
            retry.due = due
            self.attempts.append(retry)
            self._retries.append((retry, got))
        else:
            self._dead_letter(attempt, got, exhausted)
        attempt.done.set()

    def _dead_letter(self, attempt: Attempt, got: dict[str, Any], exhausted: str) -> None:
        queue = (got.get("Target", {}).get("DeadLetterConfig") or {}).get("Arn")
        if not queue:
            attempt.outcome = "dropped"
            return
        code, _, message = (attempt.error or "").partition(": ")
        attributes = {
            "ERROR_CODE": code,
            "ERROR_MESSAGE": message,
            "EXHAUSTED_RETRY_CONDITION": exhausted,
            "RETRY_ATTEMPTS": str(attempt.attempt),
            "SCHEDULE_ARN": str(got.get("Arn", "")),
            "TARGET_ARN": attempt.target,
            "INVOCATION_ID": str(uuid.uuid4()),
        }
        try:
            _send_sqs(
                str(queue),
                got["Target"].get("Input") or "{}",
                {k: {"DataType": "String", "StringValue": v or "-"} for k, v in attributes.items()},
            )
            attempt.outcome = "dead-lettered"
        except ClientError as e:
            self.problems.append(f"{attempt.schedule}: dead-letter queue {queue}: {e}")
            attempt.outcome = "dropped"


def _send_sqs(arn: str, body: str, attributes: dict[str, Any] | None = None) -> None:
    _, _, _, region, account, name = arn.split(":", 5)
    sqs = boto3.client("sqs", region_name=region)
    url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    kwargs: dict[str, Any] = {"QueueUrl": url, "MessageBody": body}
    if attributes:
        kwargs["MessageAttributes"] = attributes
    sqs.send_message(**kwargs)
