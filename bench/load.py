"""Whether the machine was quiet enough to trust a measure's times.

Before each measure :class:`LoadGuard` reads the 1-minute load average. Above
half the cores it waits (polling, bounded) for the load to drop; if it does
not, the measure is taken anyway and its row gets no verdict. After the
measure it reads the load again and takes off the bench's own share (its CPU
use during the measure, weighted as the load average weights it): what is
left above the threshold is other work that started during the measure, and
the verdict is marked so.

The load, CPU and clock sources are injectable so the rule can be tested
without waiting. :func:`speed_reference` times a fixed loop, so a reader can
tell a slow hour of the machine from a slower program.
"""

from __future__ import annotations

import math
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

#: Linux folds the run queue into the 1-minute load average every 5 s with
#: weight ``exp(-5/60)``: a constant ``n`` runnable tasks held for ``t``
#: seconds moves the average ``1 - exp(-t/60)`` of the way to ``n``.
LOAD_TIME_CONSTANT_S = 60.0
MAX_WAIT_S = 120.0
#: The kernel updates the load average every 5 s; polling faster reads the same value.
POLL_S = 5.0


#: Steps of the fixed loop of :func:`speed_reference`.
SPEED_LOOP_STEPS = 10_000_000


def speed_reference(steps: int = SPEED_LOOP_STEPS, repeat: int = 3) -> float:
    """Best-of-``repeat`` seconds of a fixed pure-Python loop: how fast this
    machine was at that moment. The same idle 2-core machine has run the same
    loop at speeds that differ by 1.8 times from one hour to the next, so
    BENCHMARKS.md records it at the start and the end of a run; absolute
    times from two runs compare only next to it. Lower is faster."""
    best = math.inf
    for _ in range(max(repeat, 1)):
        start = time.perf_counter()
        total = 0
        for i in range(steps):
            total += i & 7
        best = min(best, time.perf_counter() - start)
    return best


def speed_line(seconds: float, steps: int = SPEED_LOOP_STEPS, repeat: int = 3) -> str:
    loop = f"a fixed pure-Python loop of {steps:,} steps"
    return f"{seconds:.3f} s for {loop} (best of {repeat}; lower is faster)"


def one_minute_load() -> float:
    return os.getloadavg()[0]


def own_cpu_seconds() -> float:
    """CPU seconds of this process and of its finished (waited-for) children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def busy_threshold(cores: int) -> float:
    """The 1-minute load above which the machine counts as busy: half the cores."""
    return max(cores, 1) / 2


@dataclass(frozen=True)
class LoadRecord:
    """The 1-minute load around one measure."""

    threshold: float
    #: The load when the measure was due, before any waiting.
    first: float
    #: The load when the measure started (after waiting, if it waited).
    before: float
    waited_s: float
    after: float
    #: The measure's wall time.
    seconds: float
    #: Cores the bench used on average during the measure (its own CPU
    #: seconds, its finished children's included, over the wall time).
    own_cores: float

    @property
    def own_share(self) -> float:
        """The part of ``after`` the bench's own work accounts for."""
        if self.seconds <= 0:
            return 0.0
        return self.own_cores * (1 - math.exp(-self.seconds / LOAD_TIME_CONSTANT_S))

    @property
    def others_after(self) -> float:
        """``after`` less the bench's own share: the load of everything else."""
        return max(0.0, self.after - self.own_share)

    @property
    def busy(self) -> bool:
        """Still busy when the measure started (the wait ran out)."""
        return self.before > self.threshold

    @property
    def rose(self) -> bool:
        """Quiet at the start, but other work pushed the load over during the measure."""
        return not self.busy and self.others_after > self.threshold

    def describe(self) -> str:
        """The summary table's load cell."""
        text = f"{self.before:.2f} → {self.after:.2f} (others ≈ {self.others_after:.2f})"
        if self.waited_s >= 1:
            text = f"waited {self.waited_s:.0f} s from {self.first:.2f}; {text}"
        return text

    def to_dict(self) -> dict[str, float | bool]:
        return {
            "threshold": self.threshold,
            "load_when_due": round(self.first, 2),
            "load_before": round(self.before, 2),
            "waited_seconds": round(self.waited_s, 1),
            "load_after": round(self.after, 2),
            "measure_seconds": round(self.seconds, 1),
            "bench_cores": round(self.own_cores, 2),
            "others_after": round(self.others_after, 2),
            "busy": self.busy,
            "rose": self.rose,
        }


BUSY = "no verdict: taken on a busy machine"


def verdict(met: bool | None, load: LoadRecord | None) -> str:
    """The result cell: the verdict, withheld when busy, marked when the load rose."""
    if load is not None and load.busy:
        return BUSY
    text = {True: "met", False: "NOT met", None: "—"}[met]
    if load is not None and load.rose:
        text += " (the load rose during the measure)"
    return text


@dataclass
class LoadGuard:
    """Waits for a quiet machine before a measure and records the load around it."""

    cores: int
    max_wait_s: float = MAX_WAIT_S
    poll_s: float = POLL_S
    load: Callable[[], float] = one_minute_load
    cpu_seconds: Callable[[], float] = own_cpu_seconds
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    say: Callable[[str], None] = print

    @property
    def threshold(self) -> float:
        return busy_threshold(self.cores)

    def wait_until_quiet(self) -> tuple[float, float, float]:
        """``(load when due, load now, seconds waited)``; waits at most ``max_wait_s``."""
        first = now = self.load()
        start = self.clock()
        if now > self.threshold:
            self.say(
                f"    load {now:.2f} > {self.threshold:g}: waiting up to "
                f"{self.max_wait_s:.0f} s for it to drop"
            )
        while now > self.threshold:
            left = self.max_wait_s - (self.clock() - start)
            if left <= 0:
                break
            self.sleep(min(self.poll_s, left))
            now = self.load()
        waited = self.clock() - start
        if first > self.threshold:
            state = "busy: measuring anyway" if now > self.threshold else "quiet"
            self.say(f"    load {now:.2f} after {waited:.0f} s ({state})")
        return first, now, waited

    def run(self, fn: Callable[[], T]) -> tuple[T, LoadRecord]:
        """``fn()`` once the machine is quiet (or the wait ran out), with its load record."""
        first, before, waited = self.wait_until_quiet()
        cpu = self.cpu_seconds()
        start = self.clock()
        result = fn()
        seconds = self.clock() - start
        cpu = self.cpu_seconds() - cpu
        after = self.load()
        record = LoadRecord(
            threshold=self.threshold,
            first=first,
            before=before,
            waited_s=waited,
            after=after,
            seconds=seconds,
            own_cores=cpu / seconds if seconds > 0 else 0.0,
        )
        return result, record

    def rule(self) -> list[str]:
        """BENCHMARKS.md's statement of the rule."""
        return [
            f"Busy means a 1-minute load average above {self.threshold:g} (half of "
            f"{self.cores} cores). Before each measure the bench reads it; if busy, it "
            f"waits, polling every {self.poll_s:g} s for up to {self.max_wait_s:.0f} s, for "
            "the load to drop. If it does not, the measure is taken anyway, and its row says "
            f'"{BUSY}": neither met nor not met is claimed.',
            "",
            "After each measure the bench reads the load again. Its own work raises it, so "
            "its own share is taken off first: the cores it used during the measure (its "
            "CPU seconds, finished child processes included, over the wall time) times "
            f"1 - exp(-t / {LOAD_TIME_CONSTANT_S:g} s) for a measure of t seconds, the "
            "weight the 1-minute average gives t seconds of load. If the rest (column "
            '"others") is above the threshold, other work rose during the measure and the '
            'verdict says "(the load rose during the measure)". The estimate is rough: the '
            "bench's runnable tasks beyond its CPU share are counted as others', which errs "
            "towards marking a row.",
        ]
