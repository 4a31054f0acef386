"""EventBridge Scheduler's schedule expressions, pure: ``at(...)``,
``rate(...)`` and ``cron(...)``, and when each next falls due.

- ``at(yyyy-mm-ddThh:mm:ss)`` is a local time in the schedule's
  ``ScheduleExpressionTimezone``.
- ``rate(value unit)`` (minute(s), hour(s), day(s); a day is 24 hours, also
  across a daylight saving change) fires first at ``StartDate``, or at once
  when the schedule has none, then every interval.
- ``cron(minutes hours day-of-month month day-of-week year)``: six fields,
  evaluated in the time zone. One of day-of-month and day-of-week must be
  ``?``. Supported: numbers, ``*``, ``?``, lists ``,``, ranges ``-``,
  increments ``/``, month names JAN-DEC, day names SUN-SAT (1 is Sunday),
  ``L`` (the month's last day), ``NW`` (the weekday nearest day N),
  ``D#N`` (the Nth day D of the month) and ``DL`` (the month's last day D).
  Anything else is refused with :class:`ScheduleExpressionError`.
- Daylight saving, as Scheduler does it: a local time the spring change skips
  does not fire; one the autumn change repeats fires once.

Pure (the standard library only): ``cdk synth`` checks the retraining schedule
with it (stacks/schedule.py), and the local account both refuses a bad
expression at CreateSchedule/UpdateSchedule and evaluates it.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
#: How far ahead a cron is searched for its next instant.
_HORIZON_DAYS = 366 * 5


class ScheduleExpressionError(ValueError):
    """An expression this local Scheduler does not evaluate."""


@dataclass(frozen=True)
class At:
    local: datetime  # naive, in the schedule's time zone


@dataclass(frozen=True)
class Rate:
    seconds: int


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    day_of_month: str  # the raw field: "?", "*", "L", "15W", "1,15"...
    months: frozenset[int]
    day_of_week: str
    years: frozenset[int]


Expression = At | Rate | Cron


def _values(field: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    """Numbers, names, ``*``, lists, ranges and ``/`` increments."""
    out: set[int] = set()

    def number(text: str) -> int:
        key = text.upper()
        if names and key in names:
            return names[key]
        if not text.isdigit():
            raise ScheduleExpressionError(f"cron: {text!r} is not a value of {field!r}")
        value = int(text)
        if not low <= value <= high:
            raise ScheduleExpressionError(f"cron: {value} is outside {low}-{high} in {field!r}")
        return value

    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = number(step_text) if step_text else 1
        if step_text and (not step_text.isdigit() or int(step_text) < 1):
            raise ScheduleExpressionError(f"cron: bad increment in {field!r}")
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = number(a), number(b)
        else:
            first = number(base)
            last = high if step_text else first
        if first > last:
            raise ScheduleExpressionError(f"cron: range {base!r} runs backwards")
        out.update(range(first, last + 1, step))
    return frozenset(out)


def is_time_zone(name: str, max_len: int = 50) -> bool:
    """True for an IANA time zone name (``ScheduleExpressionTimezone``)."""
    if name == "UTC":  # valid without a time zone database on the host
        return True
    if not name or len(name) > max_len or name.startswith("/") or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return False
    return True


def parse(expression: str) -> Expression:
    """The expression, or :class:`ScheduleExpressionError` saying what is wrong."""
    text = expression.strip()
    if m := _AT.match(text):
        return At(datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    if m := _RATE.match(text):
        value = int(m.group(1))
        if value < 1:
            raise ScheduleExpressionError(f"{expression}: the rate must be positive")
        if (value == 1) != (not m.group(2).endswith("s")):
            raise ScheduleExpressionError(
                f"{expression}: the unit is singular for 1 and plural otherwise"
            )
        return Rate(value * _UNITS[m.group(2).rstrip("s")])
    if m := _CRON.match(text):
        fields = m.group(1).split()
        if len(fields) != 6:
            raise ScheduleExpressionError(
                f"{expression}: cron takes 6 fields (minutes hours day-of-month month "
                f"day-of-week year), got {len(fields)}"
            )
        minutes, hours, dom, month, dow, year = fields
        if (dom == "?") == (dow == "?"):
            raise ScheduleExpressionError(
                f"{expression}: one of day-of-month and day-of-week must be '?'"
            )
        cron = Cron(
            minutes=_values(minutes, 0, 59),
            hours=_values(hours, 0, 23),
            day_of_month=dom.upper(),
            months=_values(month, 1, 12, _MONTHS),
            day_of_week=dow.upper(),
            years=_values(year, 1970, 2199),
        )
        # Refuses an unsupported day field now, not when it is first evaluated.
        _dom_matches(cron.day_of_month, date(2024, 1, 1))
        _dow_matches(cron.day_of_week, date(2024, 1, 1))
        return cron
    raise ScheduleExpressionError(
        f"{expression!r} is not at(yyyy-mm-ddThh:mm:ss), rate(value unit) or cron(...)"
    )


def _dom_matches(field: str, day: date) -> bool:
    last = calendar.monthrange(day.year, day.month)[1]
    if field in ("*", "?"):
        return True
    if field == "L":
        return day.day == last
    if field.endswith("W") and field[:-1].isdigit():
        if not 1 <= int(field[:-1]) <= 31:
            raise ScheduleExpressionError(f"cron: {field!r}: W takes a day 1 to 31")
        target = min(int(field[:-1]), last)
        wanted = date(day.year, day.month, target)
        if wanted.weekday() == 5:  # Saturday -> Friday, or Monday if the 1st
            wanted = wanted - timedelta(days=1) if target > 1 else wanted + timedelta(days=2)
        elif wanted.weekday() == 6:  # Sunday -> Monday, or Friday if the last day
            wanted = wanted + timedelta(days=1) if target < last else wanted - timedelta(days=2)
        return day == wanted
    return day.day in _values(field, 1, 31)


def _dow_matches(field: str, day: date) -> bool:
    weekday = (day.weekday() + 1) % 7 + 1  # 1 = Sunday ... 7 = Saturday
    if field in ("*", "?"):
        return True
    if "#" in field:
        name, _, nth = field.partition("#")
        if not nth.isdigit() or not 1 <= int(nth) <= 5:
            raise ScheduleExpressionError(f"cron: {field!r}: # takes 1 to 5")
        wanted = _values(name, 1, 7, _DAYS)
        return weekday in wanted and (day.day - 1) // 7 + 1 == int(nth)
    if field.endswith("L") and len(field) > 1:
        wanted = _values(field[:-1], 1, 7, _DAYS)
        last = calendar.monthrange(day.year, day.month)[1]
        return weekday in wanted and day.day + 7 > last
    if field == "L":
        return weekday == 7
    return weekday in _values(field, 1, 7, _DAYS)


def _day_matches(cron: Cron, day: date) -> bool:
    if day.year not in cron.years or day.month not in cron.months:
        return False
    return _dom_matches(cron.day_of_month, day) and _dow_matches(cron.day_of_week, day)


def _local_to_utc(local: datetime, zone: ZoneInfo) -> datetime | None:
    """The instant of a local wall time; None for one the spring change skips.
    A repeated autumn time is its first instant (``fold=0``)."""
    aware = local.replace(tzinfo=zone, fold=0)
    back = aware.astimezone(UTC).astimezone(zone)
    if back.replace(tzinfo=None) != local:
        return None
    return aware.astimezone(UTC)


def next_due(
    expression: Expression,
    *,
    after: datetime,
    timezone: str = "UTC",
    start: datetime | None = None,
    created: datetime | None = None,
) -> datetime | None:
    """The first instant (UTC) strictly after ``after`` at which the schedule
    is due, None if never again. ``start`` is StartDate; ``created`` anchors a
    rate schedule that has none."""
    zone = ZoneInfo(timezone)
    if isinstance(expression, At):
        when = _local_to_utc(expression.local, zone)
        return when if when is not None and when > after else None
    if isinstance(expression, Rate):
        anchor = start or created or after
        if anchor > after:
            return anchor
        steps = int((after - anchor).total_seconds() // expression.seconds) + 1
        return anchor + timedelta(seconds=steps * expression.seconds)
    floor = max(after, start - timedelta(microseconds=1)) if start else after
    local = floor.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
    day = local.date()
    for _ in range(_HORIZON_DAYS):
        if _day_matches(expression, day):
            for hour in sorted(expression.hours):
                for minute in sorted(expression.minutes):
                    wall = datetime(day.year, day.month, day.day, hour, minute)
                    instant = _local_to_utc(wall, zone)
                    if instant is not None and instant > floor:
                        return instant
        day += timedelta(days=1)
    return None
