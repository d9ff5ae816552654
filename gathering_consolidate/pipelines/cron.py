"""Cron expression validation for scheduled actions, on croniter.

`validate_cron(expr)` returns the problems a scheduler should refuse an expression for, each naming
the field at fault:

- syntax: not five fields, or a field croniter cannot read (the message names the field: minute,
  hour, day of month, month or day of week, and says what is wrong: a value out of range, a zero
  step, an unknown name);
- never fires: a day that never occurs in the months given (`0 0 30 2 *`), or no run found within
  croniter's search horizon;
- too frequent: two runs closer together than `min_interval` (the floor), computed from the
  expanded minute and hour sets, so `*/5 * * * *` under a 10-minute floor is refused whatever the
  time of day;
- time budget: finding the next run is a search; it runs in a worker thread and the caller waits
  at most `time_budget_s`, so a pathological expression becomes a problem, never a hang.

Why: the GatheRing scheduler parsed only the minute and hour fields by hand, so `0 0 30 2 *` was
accepted and `* * * * *` could flood the executor; a schedule must be refused when it is created.

Five-field expressions (and croniter's `@hourly`-style aliases) only: a sixth field would be read
as seconds by croniter but as a year by other tools. Day of month and day of week both restricted
means either may match (standard cron).
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

FIELDS = ("minute", "hour", "day of month", "month", "day of week")
_RANGES = {
    "minute": (0, 59),
    "hour": (0, 23),
    "day of month": (1, 31),
    "month": (1, 12),
    "day of week": (0, 7),
}
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
#: How far croniter searches for a next run before it calls an expression one that never fires.
SEARCH_YEARS = 50
#: How many consecutive firing days are looked at to tell whether two consecutive days both fire.
_DAY_SAMPLE = 400


@dataclass(frozen=True, slots=True)
class CronProblem:
    """One reason to refuse an expression. `field` is one of `FIELDS`, or "expression" (the whole
    text: field count, alias) or "schedule" (never fires, too frequent, time budget)."""

    field: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "message": self.message}


class CronError(ValueError):
    """An expression `next_run` cannot schedule; `.problems` says why."""

    def __init__(self, expr: str, problems: list[CronProblem]) -> None:
        super().__init__(f"cron {expr!r}: " + "; ".join(p.message for p in problems))
        self.expr = expr
        self.problems = problems


def _format_interval(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _normalise(expr: str) -> tuple[list[str] | None, list[CronProblem]]:
    text = expr.strip() if isinstance(expr, str) else expr
    if not isinstance(text, str):
        return None, [CronProblem("expression", f"expected a string, got {type(expr).__name__}")]
    if not text:
        return None, [CronProblem("expression", "empty cron expression")]
    if text.startswith("@"):
        alias = ALIASES.get(text.lower())
        if alias is None:
            known = ", ".join(ALIASES)
            return None, [CronProblem("expression", f"unknown alias {text!r} (known: {known})")]
        text = alias
    fields = text.split()
    if len(fields) != 5:
        return None, [
            CronProblem(
                "expression",
                "expected 5 fields (minute hour day-of-month month day-of-week),"
                f" got {len(fields)}",
            )
        ]
    return fields, []


def _field_reason(name: str, value: str, error: Exception) -> str:
    text = str(error)
    low, high = _RANGES[name]
    if "out of range" in text:
        return f"values must be within {low}-{high}"
    if "step" in text:
        return "the step after '/' must be a positive number"
    if "Hashed" in text or value.lower().startswith("h"):
        return "hashed ('H') values are not supported"
    if type(error).__name__ == "CroniterNotAlphaError" or "not acceptable" in text:
        return "not a number, range, list, step or known name"
    return text


def _field_problems(fields: list[str]) -> list[CronProblem]:
    from croniter import croniter

    problems = []
    for index, name in enumerate(FIELDS):
        probe = ["*"] * 5
        probe[index] = fields[index]
        try:
            croniter.expand(" ".join(probe))
        except (
            ValueError,
            KeyError,
            TypeError,
            IndexError,
        ) as exc:  # croniter's errors are ValueErrors
            problems.append(
                CronProblem(
                    name,
                    f"{name} field {fields[index]!r} is invalid:"
                    f" {_field_reason(name, fields[index], exc)}",
                )
            )
    return problems


def _values(expanded: list[Any], low: int, high: int) -> list[int]:
    if expanded == ["*"]:
        return list(range(low, high + 1))
    return sorted({int(v) for v in expanded if isinstance(v, int)})


def _within_day_gap(minutes: list[int], hours: list[int]) -> tuple[int | None, int | None]:
    """(smallest gap in minutes between two runs of one day, the gap from the day's last run to
    the next day's first); None where a day has only one run."""
    times = sorted(h * 60 + m for h in hours for m in minutes)
    if len(times) < 2:
        return None, 1440 - times[-1] + times[0] if times else None
    within = min(b - a for a, b in itertools.pairwise(times))
    return within, 1440 - times[-1] + times[0]


class _OverBudget(Exception):
    """The worker passed the deadline: the caller reports the budget problem."""


@dataclass(slots=True)
class _Outcome:
    problems: list[CronProblem]
    next_run: datetime | None = None
    done: bool = False


def _search(
    fields: list[str],
    expanded: list[list[Any]],
    min_interval: timedelta,
    now: datetime,
    deadline: float,
    out: _Outcome,
) -> None:
    """Runs in the worker thread: next run, and the cross-day gap when it matters."""
    from croniter import CroniterBadDateError, croniter

    expr = " ".join(fields)
    try:
        out.next_run = croniter(
            expr, now, ret_type=datetime, max_years_between_matches=SEARCH_YEARS
        ).get_next()
    except CroniterBadDateError:
        out.problems.append(
            CronProblem("schedule", f"never fires (no run within {SEARCH_YEARS} years)")
        )
        out.done = True
        return
    minutes = _values(expanded[0], 0, 59)
    hours = _values(expanded[1], 0, 23)
    within, across = _within_day_gap(minutes, hours)
    floor = min_interval.total_seconds() / 60
    if within is not None and within < floor:
        out.problems.append(_too_frequent(within, min_interval))
    elif across is not None and across < floor:
        try:
            if _consecutive_days(fields, now, deadline):
                out.problems.append(_too_frequent(across, min_interval))
        except _OverBudget:
            return  # not done: the caller reports the budget
    out.done = True


def _too_frequent(gap_minutes: int, floor: timedelta) -> CronProblem:
    gap = _format_interval(timedelta(minutes=gap_minutes))
    return CronProblem(
        "schedule",
        f"two runs can be {gap} apart, more often than the floor of one run every"
        f" {_format_interval(floor)}",
    )


def _consecutive_days(fields: list[str], now: datetime, deadline: float) -> bool:
    """Whether two consecutive calendar days both fire (looked for over the next firing days)."""
    from croniter import CroniterBadDateError, croniter

    if fields[2] == "*" and fields[4] == "*":
        return True
    days = croniter(
        " ".join(["0", "0", *fields[2:]]),
        now,
        ret_type=datetime,
        max_years_between_matches=SEARCH_YEARS,
    )
    previous = None
    try:
        for _ in range(_DAY_SAMPLE):
            if time.monotonic() > deadline:
                raise _OverBudget
            day = days.get_next().date()
            if previous is not None and (day - previous).days == 1:
                return True
            previous = day
    except CroniterBadDateError:
        return False
    return False


def _check(
    expr: str, min_interval: timedelta, now: datetime | None, time_budget_s: float
) -> _Outcome:
    from croniter import croniter

    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    fields, problems = _normalise(expr)
    if fields is None:
        return _Outcome(problems, done=True)
    problems = _field_problems(fields)
    if problems:
        return _Outcome(problems, done=True)
    expanded, _nth = croniter.expand(" ".join(fields))
    if fields[4] == "*":
        try:
            croniter.expand(" ".join(fields), strict=True)
        except ValueError:
            days = ", ".join(str(d) for d in expanded[2])
            months = ", ".join(_MONTHS[m - 1] for m in _values(expanded[3], 1, 12))
            return _Outcome(
                [CronProblem("day of month", f"never fires: day {days} never occurs in {months}")],
                done=True,
            )
    out = _Outcome([])
    deadline = time.monotonic() + time_budget_s
    worker = threading.Thread(
        target=_search,
        args=(fields, expanded, min_interval, now, deadline, out),
        name="cron-next-run",
        daemon=True,
    )
    worker.start()
    worker.join(max(time_budget_s, 0.0))
    if not out.done or time.monotonic() > deadline:
        return _Outcome(
            [
                CronProblem(
                    "schedule",
                    f"computing the next run took longer than the {time_budget_s:g} s budget",
                )
            ],
            done=False,
        )
    return out


_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def validate_cron(
    expr: str,
    *,
    min_interval: timedelta = timedelta(minutes=1),
    now: datetime | None = None,
    time_budget_s: float = 0.5,
) -> list[CronProblem]:
    """The problems with `expr` as a schedule; [] when it is valid. `now` (timezone-aware, default
    the current UTC time) is where the search for the next run starts. Blocks at most
    `time_budget_s` on the search (a syntax check does not count): call it from a worker thread in
    an async handler."""
    return list(_check(expr, min_interval, now, time_budget_s).problems)


def next_run(
    expr: str,
    after: datetime,
    *,
    min_interval: timedelta = timedelta(minutes=1),
    time_budget_s: float = 0.5,
) -> datetime:
    """The first run strictly after `after` (timezone-aware; the result is in the same zone, DST
    gaps and folds handled by croniter). Raises `CronError` for an expression `validate_cron`
    refuses, ValueError for a naive `after`."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    outcome = _check(expr, min_interval, after, time_budget_s)
    if outcome.problems or outcome.next_run is None:
        raise CronError(expr, outcome.problems)
    return outcome.next_run
