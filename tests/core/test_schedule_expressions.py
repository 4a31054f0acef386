"""EventBridge Scheduler's expressions (pipeline_core/schedule_expressions.py):
when at, rate and six-field cron schedules fall due, in their time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline_core.schedule_expressions import (
    At,
    Rate,
    ScheduleExpressionError,
    next_due,
    parse,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def due(expression: str, after: datetime, timezone: str = "UTC", **kw: datetime) -> datetime:
    found = next_due(parse(expression), after=after, timezone=timezone, **kw)
    assert found is not None
    return found


def test_parse_reads_the_three_kinds() -> None:
    assert parse("at(2026-03-01T10:30:00)") == At(datetime(2026, 3, 1, 10, 30))
    assert parse("rate(1 minute)") == Rate(60)
    assert parse("rate(7 days)") == Rate(7 * 86400)


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("cron(0 3 * * ?)", "6 fields"),
        ("cron(0 3 * * MON *)", "must be '?'"),
        ("cron(0 3 ? * ? *)", "must be '?'"),
        ("cron(61 3 * * ? *)", "outside 0-59"),
        ("cron(0 3 5X * ? *)", "not a value"),
        ("cron(0 3 ? * 2#6 2030)", "# takes 1 to 5"),
        ("cron(0 3 0W * ? *)", "W takes a day"),
        ("cron(0 3 LW * ? *)", "not a value"),
        ("rate(0 minutes)", "positive"),
        ("rate(1 hours)", "singular"),
        ("rate(5 hour)", "singular"),
        ("every day", "not at("),
    ],
)
def test_parse_refuses_what_it_cannot_evaluate_with_a_clear_error(
    expression: str, says: str
) -> None:
    with pytest.raises(ScheduleExpressionError, match=says.replace("(", r"\(")):
        parse(expression)


def test_at_is_a_local_time_in_the_schedule_time_zone() -> None:
    # 10:00 in New York in winter is 15:00 UTC.
    assert due("at(2026-01-15T10:00:00)", utc(2026, 1, 1), "America/New_York") == utc(
        2026, 1, 15, 15
    )
    # Once past, never again.
    assert next_due(parse("at(2026-01-15T10:00:00)"), after=utc(2026, 2, 1)) is None


def test_rate_starts_at_start_date_or_at_once_and_keeps_its_interval() -> None:
    start = utc(2026, 5, 1, 12, 0)
    assert due("rate(2 hours)", utc(2026, 5, 1), start=start) == start
    assert due("rate(2 hours)", start, start=start) == start + timedelta(hours=2)
    assert due("rate(2 hours)", utc(2026, 5, 1, 15, 0), start=start) == utc(2026, 5, 1, 16)
    # Without a StartDate: from its creation.
    created = utc(2026, 5, 1, 9, 17)
    assert due("rate(15 minutes)", created - timedelta(seconds=1), created=created) == created


def test_a_rate_of_days_is_24_hours_across_a_daylight_saving_change() -> None:
    start = utc(2026, 3, 7, 12, 0)  # the day before New York springs forward
    after = start + timedelta(minutes=1)
    assert due("rate(1 day)", after, "America/New_York", start=start) == utc(2026, 3, 8, 12, 0)


def test_cron_in_utc_finds_the_next_weekday_and_hour() -> None:
    sunday = utc(2026, 12, 6, 19, 0)
    assert due("cron(0 3 ? * MON *)", sunday) == utc(2026, 12, 7, 3, 0)
    assert due("cron(0/15 * * * ? *)", utc(2026, 12, 6, 19, 7)) == utc(2026, 12, 6, 19, 15)
    assert due("cron(0 8 1,15 * ? *)", utc(2026, 12, 2)) == utc(2026, 12, 15, 8)
    assert due("cron(0 0 1 JAN ? 2030)", utc(2026, 1, 1)) == utc(2030, 1, 1)


def test_cron_in_a_time_zone_follows_its_daylight_saving() -> None:
    # 03:00 in Berlin: 02:00 UTC in winter (CET), 01:00 UTC in summer (CEST).
    assert due("cron(0 3 ? * MON *)", utc(2026, 1, 10), "Europe/Berlin") == utc(2026, 1, 12, 2)
    assert due("cron(0 3 ? * MON *)", utc(2026, 7, 10), "Europe/Berlin") == utc(2026, 7, 13, 1)


def test_a_local_time_the_spring_change_skips_does_not_fire() -> None:
    # New York has no 02:30 on 2026-03-08: the next one is the day after (EDT).
    assert due("cron(30 2 * * ? *)", utc(2026, 3, 8, 0), "America/New_York") == utc(
        2026, 3, 9, 6, 30
    )


def test_a_local_time_the_autumn_change_repeats_fires_once() -> None:
    tz = "America/New_York"
    first = due("cron(30 1 * * ? *)", utc(2026, 11, 1, 0), tz)
    assert first == utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert due("cron(30 1 * * ? *)", first, tz) == utc(2026, 11, 2, 6, 30)  # not 01:30 EST


def test_cron_last_day_nearest_weekday_and_nth_weekday() -> None:
    assert due("cron(0 12 L * ? *)", utc(2028, 2, 1)) == utc(2028, 2, 29, 12)
    # 2026-08-15 is a Saturday: 15W is Friday the 14th.
    assert due("cron(0 9 15W * ? *)", utc(2026, 8, 1)) == utc(2026, 8, 14, 9)
    # The first Monday (2) of June 2026 is the 1st; the second Tuesday (3) the 9th.
    assert due("cron(0 9 ? * 2#1 *)", utc(2026, 5, 31)) == utc(2026, 6, 1, 9)
    assert due("cron(0 9 ? * TUE#2 *)", utc(2026, 6, 2)) == utc(2026, 6, 9, 9)
    # The last Friday (6L) of June 2026 is the 26th.
    assert due("cron(0 9 ? * 6L *)", utc(2026, 6, 1)) == utc(2026, 6, 26, 9)


def test_cron_respects_start_date() -> None:
    start = utc(2026, 6, 10, 0, 0)
    assert due("cron(0 9 * * ? *)", utc(2026, 6, 1), start=start) == utc(2026, 6, 10, 9)
