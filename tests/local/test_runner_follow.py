"""How the local run follows an execution: the history each poll, and
DescribeExecution when the history shows the end (and now and then besides)."""

from __future__ import annotations

import datetime
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from local.account import runner
from local.account.runner import LocalPipeline

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def _event(event_id: int, kind: str, state: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": event_id,
        "type": kind,
        "timestamp": T0 + datetime.timedelta(seconds=event_id),
    }
    if kind.endswith("StateEntered"):
        event["stateEnteredEventDetails"] = {"name": state}
    if kind.endswith("StateExited"):
        event["stateExitedEventDetails"] = {"name": state}
    return event


class FakeSfn:
    """An execution whose history shows one more event per history call. Its
    status is final from the ``end_after``-th history call on, and once it is,
    its whole history is written."""

    def __init__(self, events: list[dict[str, Any]], end_after: int) -> None:
        self.events = events
        self.visible = 0
        self.end_after = end_after
        self.history_calls = 0
        self.describe_calls = 0

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        self.history_calls += 1
        self.visible = min(len(self.events), self.visible + 1)
        shown = self.events[: self.visible][::-1]  # newest first
        return {"events": shown[: kwargs["maxResults"]]}

    def describe_execution(self, **_kwargs: Any) -> dict[str, Any]:
        self.describe_calls += 1
        if self.history_calls < self.end_after:
            return {"status": "RUNNING"}
        self.visible = len(self.events)
        return {"status": "SUCCEEDED", "output": '{"ok": true}'}


EVENTS = [
    _event(1, "ExecutionStarted"),
    _event(2, "TaskStateEntered", "ConvertDataset"),
    _event(3, "TaskStateExited", "ConvertDataset"),
    _event(4, "TaskStateEntered", "Evaluate"),
    _event(5, "TaskStateExited", "Evaluate"),
    _event(6, "ExecutionSucceeded"),
]


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalPipeline:
    monkeypatch.setattr(runner, "_POLL_SECONDS", 0.0)
    return LocalPipeline(
        work_dir=tmp_path, backend=None, synthesized=Future(), printer=lambda _line: None
    )


@pytest.mark.parametrize(
    ("end_after", "describes"),
    [
        (6, 2),  # at poll 0, and when the end event is read (poll 5)
        (7, 3),  # the status turns a poll after the end event: asked again
        (30, 26),  # the end event read long before the status turns: every poll
    ],
)
def test_describe_is_asked_at_the_first_poll_and_once_the_history_shows_the_end(
    pipeline: LocalPipeline, end_after: int, describes: int
) -> None:
    sfn = FakeSfn(EVENTS, end_after=end_after)
    result = pipeline._follow(sfn, "arn", "run", timeout=60)
    assert result.status == "SUCCEEDED" and result.output == {"ok": True}
    assert [e["id"] for e in result.events] == [1, 2, 3, 4, 5, 6]
    assert set(result.timings) == {"ConvertDataset", "Evaluate"}
    assert sfn.describe_calls == describes


def test_while_the_history_shows_no_end_describe_is_asked_every_tenth_poll(
    pipeline: LocalPipeline,
) -> None:
    quiet = [_event(1, "ExecutionStarted")]  # nothing new for 24 polls
    sfn = FakeSfn([*quiet, *EVENTS[1:]], end_after=25)
    sfn.events = quiet  # the rest is written when the status turns
    full = [*quiet, *EVENTS[1:]]

    def describe(**_kwargs: Any) -> dict[str, Any]:
        sfn.describe_calls += 1
        if sfn.history_calls < sfn.end_after:
            return {"status": "RUNNING"}
        sfn.events = full
        sfn.visible = len(full)
        return {"status": "SUCCEEDED", "output": "{}"}

    sfn.describe_execution = describe  # type: ignore[method-assign]
    result = pipeline._follow(sfn, "arn", "run", timeout=60)
    # polls 0, 10, 20 find it running; poll 30 finds it ended, and one more
    # history call collects the events written meanwhile
    assert (sfn.describe_calls, sfn.history_calls) == (4, 32)
    assert [e["id"] for e in result.events] == [1, 2, 3, 4, 5, 6]
    assert result.status == "SUCCEEDED"
