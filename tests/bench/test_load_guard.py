"""The busy-machine rule of ``make bench``, on injected load, CPU and clock.

Nothing here waits or times anything: the clock is fake and ``sleep`` only
moves it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from bench.__main__ import table, write_markdown
from bench.common import Measure
from bench.load import (
    BUSY,
    LoadGuard,
    LoadRecord,
    busy_threshold,
    speed_line,
    speed_reference,
    verdict,
)


class Machine:
    """A fake machine: a script of 1-minute loads, a clock, the bench's CPU seconds."""

    def __init__(self, loads: list[float], *, cores: int = 2) -> None:
        self._loads: Iterator[float] = iter(loads)
        self.last = loads[-1]
        self.now = 1000.0
        self.cpu = 0.0
        self.sleeps: list[float] = []
        self.said: list[str] = []
        self.cores = cores

    def load(self) -> float:
        self.last = next(self._loads, self.last)
        return self.last

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def work(self, seconds: float, cores: float) -> str:
        """A measure: ``seconds`` of wall time using ``cores`` of CPU."""
        self.now += seconds
        self.cpu += seconds * cores
        return "result"

    def guard(self, *, max_wait_s: float = 120.0, poll_s: float = 5.0) -> LoadGuard:
        return LoadGuard(
            cores=self.cores,
            max_wait_s=max_wait_s,
            poll_s=poll_s,
            load=self.load,
            cpu_seconds=lambda: self.cpu,
            clock=lambda: self.now,
            sleep=self.sleep,
            say=self.said.append,
        )


def test_the_threshold_is_half_the_cores() -> None:
    assert busy_threshold(2) == 1.0
    assert busy_threshold(8) == 4.0
    assert busy_threshold(0) == 0.5  # os.cpu_count() may say nothing
    assert Machine([0.0], cores=4).guard().threshold == 2.0


def test_a_quiet_machine_measures_at_once() -> None:
    m = Machine([0.4, 0.5])
    result, load = m.guard().run(lambda: m.work(10, 1.0))
    assert result == "result"
    assert m.sleeps == [] and m.said == []
    assert (load.first, load.before, load.after, load.waited_s) == (0.4, 0.4, 0.5, 0.0)
    assert load.seconds == 10 and load.own_cores == 1.0
    assert not load.busy and not load.rose
    assert verdict(True, load) == "met" and verdict(False, load) == "NOT met"


def test_a_load_exactly_at_the_threshold_is_not_busy() -> None:
    m = Machine([1.0, 1.0])
    _, load = m.guard().run(lambda: m.work(1, 0.0))
    assert m.sleeps == [] and not load.busy and not load.rose


def test_a_busy_machine_is_waited_for_until_it_quietens() -> None:
    m = Machine([1.8, 1.5, 1.2, 0.9, 0.7])
    calls: list[float] = []

    def fn() -> str:
        calls.append(m.now)
        return m.work(5, 1.0)

    _, load = m.guard(poll_s=5).run(fn)
    assert m.sleeps == [5, 5, 5]
    assert calls == [1015.0]  # measured once, after the wait
    assert (load.first, load.before, load.waited_s, load.after) == (1.8, 0.9, 15.0, 0.7)
    assert not load.busy
    assert verdict(True, load) == "met"
    assert "waited 15 s from 1.80" in load.describe()
    assert any("waiting up to 120 s" in line for line in m.said)


def test_the_wait_is_bounded_then_the_row_gets_no_verdict() -> None:
    m = Machine([1.5])
    calls: list[float] = []

    def fn() -> str:
        calls.append(m.now)
        return m.work(3, 1.0)

    _, load = m.guard(max_wait_s=12, poll_s=5).run(fn)
    assert m.sleeps == [5, 5, 2]  # never past max_wait_s
    assert calls == [1012.0]  # measured anyway
    assert load.busy and load.waited_s == 12
    assert any("busy: measuring anyway" in line for line in m.said)
    for met in (True, False, None):
        assert verdict(met, load) == BUSY
    assert "met" not in BUSY


def test_default_wait_is_two_minutes_of_five_second_polls() -> None:
    defaults = LoadGuard(cores=2)
    assert (defaults.max_wait_s, defaults.poll_s) == (120.0, 5.0)
    m = Machine([3.0])
    _, load = m.guard().run(lambda: m.work(1, 0.0))
    assert sum(m.sleeps) == 120 and len(m.sleeps) == 24 and load.busy


def test_load_rising_during_the_measure_marks_the_verdict() -> None:
    m = Machine([0.3, 1.6])
    _, load = m.guard().run(lambda: m.work(30, 0.1))  # the bench itself barely worked
    assert not load.busy and load.rose
    assert load.others_after > 1.0
    assert verdict(True, load) == "met (the load rose during the measure)"
    assert verdict(False, load) == "NOT met (the load rose during the measure)"
    assert verdict(None, load) == "— (the load rose during the measure)"


def test_the_benchs_own_load_is_not_counted_as_others() -> None:
    m = Machine([0.2, 1.8])
    # 60 s on both cores: the 1-minute average moves 1 - 1/e of the way to 2.
    _, load = m.guard().run(lambda: m.work(60, 2.0))
    assert math.isclose(load.own_share, 2 * (1 - math.exp(-1)))
    assert math.isclose(load.others_after, 1.8 - 2 * (1 - math.exp(-1)))
    assert not load.rose and verdict(True, load) == "met"
    # The same end load after a short, light measure is someone else's.
    m = Machine([0.2, 1.8])
    _, short = m.guard().run(lambda: m.work(2, 1.0))
    assert short.rose


def test_a_zero_length_measure_has_no_own_share() -> None:
    record = LoadRecord(1.0, 0.1, 0.1, 0.0, 1.5, 0.0, 0.0)
    assert record.own_share == 0.0 and record.others_after == 1.5 and record.rose


def _measure(name: str, met: bool | None, load: LoadRecord | None) -> Measure:
    return Measure(name, "seconds", "base", 2.0, 1.0, "s", "goal", met, load=load)


def test_benchmarks_md_states_the_rule_and_withholds_busy_verdicts(tmp_path: Path) -> None:
    quiet = LoadRecord(1.0, 0.3, 0.3, 0.0, 0.6, 10.0, 1.0)
    busy = LoadRecord(1.0, 2.5, 2.1, 120.0, 2.4, 10.0, 1.0)
    rose = LoadRecord(1.0, 0.3, 0.3, 0.0, 1.9, 10.0, 0.1)
    measures = [_measure("q", True, quiet), _measure("b", True, busy), _measure("r", False, rose)]
    rows = {row.split(" | ")[0]: row for row in table(measures)[2:]}
    assert "| met | 0.30 → 0.60 (others ≈" in rows["| q"]
    assert f"| {BUSY} | waited 120 s from 2.50; 2.10 → 2.40" in rows["| b"]
    assert "met" not in rows["| b"].split(" | ")[6]  # the result cell claims nothing
    assert "| NOT met (the load rose during the measure) |" in rows["| r"]

    guard = LoadGuard(cores=2)
    info = {"cores": "2", "load average (start)": "0.30", "load average (end)": "0.50"}
    out = tmp_path / "B.md"
    write_markdown(out, info, measures, 1.0, rule=guard.rule())
    text = out.read_text()
    assert "- cores: 2" in text and "- load average (end): 0.50" in text
    assert "## Busy machine rule" in text and "above 1 (half of 2 cores)" in text
    assert "for up to 120 s" in text
    assert "1 of 3 rows were taken on a busy machine and 1 saw the load rise" in text
    assert '"busy": true' in text and '"rose": true' in text  # per-row details


def test_the_speed_reference_times_the_fixed_loop_and_says_so() -> None:
    seconds = speed_reference(steps=10_000, repeat=2)
    assert 0 < seconds < 60
    line = speed_line(seconds, 10_000)
    assert line.startswith(f"{seconds:.3f} s for a fixed pure-Python loop of 10,000 steps")
    assert "lower is faster" in line
