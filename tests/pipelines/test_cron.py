"""Cron validation: the field at fault, schedules that never fire, the frequency floor, the time
budget, and next_run across time zones."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gathering_consolidate.pipelines.cron import CronError, CronProblem, next_run, validate_cron

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def check(expr: str, **kwargs) -> list[tuple[str, str]]:
    return [(p.field, p.message) for p in validate_cron(expr, now=NOW, **kwargs)]


@pytest.mark.parametrize(
    "expr",
    [
        "0 * * * *",
        "*/5 9-17 * * MON-FRI",
        "0 0 29 2 *",
        "0 0 L * *",
        "0 0 * * 1#2",
        "0 0 30 2 1",
        "@daily",
        "@HOURLY",
        "  15 3 1 */3 *  ",
        "0 9 * JAN,jul sun",
    ],
)
def test_valid_expressions(expr: str) -> None:
    assert check(expr) == []


@pytest.mark.parametrize(
    ("expr", "field", "message"),
    [
        ("61 * * * *", "minute", "minute field '61' is invalid: values must be within 0-59"),
        ("* 24 * * *", "hour", "hour field '24' is invalid: values must be within 0-23"),
        (
            "0 0 32 * *",
            "day of month",
            "day of month field '32' is invalid: values must be within 1-31",
        ),
        (
            "0 0 0 * *",
            "day of month",
            "day of month field '0' is invalid: values must be within 1-31",
        ),
        ("0 0 * 13 *", "month", "month field '13' is invalid: values must be within 1-12"),
        ("0 0 * * 8", "day of week", "day of week field '8' is invalid: values must be within 0-7"),
        (
            "*/0 * * * *",
            "minute",
            "minute field '*/0' is invalid: the step after '/' must be a positive number",
        ),
        (
            "0 noon * * *",
            "hour",
            "hour field 'noon' is invalid: not a number, range, list, step or known name",
        ),
        (
            "0 0 * FOO *",
            "month",
            "month field 'FOO' is invalid: not a number, range, list, step or known name",
        ),
        (
            "H * * * *",
            "minute",
            "minute field 'H' is invalid: hashed ('H') values are not supported",
        ),
    ],
)
def test_invalid_field_is_named(expr: str, field: str, message: str) -> None:
    assert check(expr) == [(field, message)]


def test_every_invalid_field_is_reported() -> None:
    assert [f for f, _ in check("99 99 * * 9")] == ["minute", "hour", "day of week"]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "empty cron expression"),
        ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        ("0 * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 6"),
        (
            "@reboot",
            "unknown alias '@reboot' (known: @yearly, @annually, @monthly, @weekly,"
            " @daily, @midnight, @hourly)",
        ),
    ],
)
def test_whole_expression_problems(expr: str, message: str) -> None:
    assert check(expr) == [("expression", message)]


def test_never_fires() -> None:
    assert check("0 0 30 2 *") == [("day of month", "never fires: day 30 never occurs in February")]
    assert check("0 0 31 4,6,9,11 *") == [
        ("day of month", "never fires: day 31 never occurs in April, June, September, November")
    ]
    # croniter reads a day of month with an nth weekday as both: the 5th Monday is never the 1st.
    assert check("0 0 1 * 1#5") == [("schedule", "never fires (no run within 50 years)")]


def test_frequency_floor() -> None:
    floor = timedelta(minutes=10)
    assert check("* * * * *") == []  # the default floor is one minute
    assert check("*/5 * * * *", min_interval=floor) == [
        (
            "schedule",
            "two runs can be 5 minutes apart, more often than the floor of one run"
            " every 10 minutes",
        )
    ]
    assert check("*/10 * * * *", min_interval=floor) == []
    assert check("0,1 3 * * *", min_interval=floor) == [
        (
            "schedule",
            "two runs can be 1 minute apart, more often than the floor of one run every 10 minutes",
        )
    ]
    # Across midnight: 23:55 then 00:00 the next day...
    assert check("0,55 0,23 * * *", min_interval=floor) == [
        (
            "schedule",
            "two runs can be 5 minutes apart, more often than the floor of one run every"
            " 10 minutes",
        )
    ]
    # ...but not when the next day never fires.
    assert check("0,55 0,23 * * 1", min_interval=floor) == []
    assert check("0 * * * *", min_interval=timedelta(hours=2)) == [
        (
            "schedule",
            "two runs can be 1 hour apart, more often than the floor of one run every 2 hours",
        )
    ]
    assert check("@daily", min_interval=timedelta(hours=24)) == []


def test_time_budget_is_a_problem_not_a_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    from gathering_consolidate.pipelines import cron

    # Telling whether two consecutive Mondays-the-5th exist walks every firing day looked at; a
    # longer walk than the default makes the search long enough to measure against.
    monkeypatch.setattr(cron, "_DAY_SAMPLE", 2000)
    expr = "0,55 0,23 * * 1#5"
    started = time.perf_counter()
    assert check(expr, min_interval=timedelta(minutes=10), time_budget_s=30) == []
    full = time.perf_counter() - started
    budget = full / 20
    started = time.perf_counter()
    assert check(expr, min_interval=timedelta(minutes=10), time_budget_s=budget) == [
        ("schedule", f"computing the next run took longer than the {budget:g} s budget")
    ]
    bounded = time.perf_counter() - started
    assert bounded < full / 3, (bounded, full)


def test_next_run_is_aware_and_follows_the_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    after = datetime(2026, 3, 28, 12, 0, tzinfo=paris)
    first = next_run("30 2 * * *", after)
    # 2026-03-29 02:30 does not exist in Paris (clocks jump from 02:00 to 03:00).
    assert first.tzinfo is not None
    assert first.utcoffset() == timedelta(hours=2)
    assert next_run("30 2 * * *", first) == datetime(2026, 3, 30, 2, 30, tzinfo=paris)
    assert next_run("0 * * * *", NOW) == datetime(2026, 3, 1, 13, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_run("0 * * * *", datetime(2026, 1, 1))
    with pytest.raises(CronError, match="never fires") as caught:
        next_run("0 0 30 2 *", NOW)
    assert caught.value.problems == [
        CronProblem("day of month", "never fires: day 30 never occurs in February")
    ]


def test_problem_to_dict() -> None:
    assert validate_cron("61 * * * *")[0].to_dict() == {
        "field": "minute",
        "message": "minute field '61' is invalid: values must be within 0-59",
    }
