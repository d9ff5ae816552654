from collections.abc import Iterator

from ...model import Finding, Severity
from ..base import FileCheck, FileContext, Invalid, Valid
from .helpers import AWARE_FIX, datetime_calls, is_naive


class NaiveNow(FileCheck):
    """`datetime.now()`, `datetime.fromtimestamp(ts)` or `datetime.today()` without a timezone.

    ## Why is this bad?
    Without `tz` these return the server's local wall-clock time with no `tzinfo`: the value
    changes meaning with the host's zone and daylight saving, and cannot be compared with aware
    values. Passing a `tz` (even a variable) is not reported; `tz=None` is.

    ## Fix safety
    Unsafe: an aware value behaves differently in comparisons and arithmetic with naive ones.
    Codemod `aware-datetimes` passes `timezone.utc`.

    ## References
    - https://docs.python.org/3/library/datetime.html#aware-and-naive-objects
    """

    id, name = "DTZ003", "naive-now"
    severity = Severity.MEDIUM
    fix = AWARE_FIX
    VALID = [
        Valid("""
            from datetime import datetime, timezone
            a = datetime.now(timezone.utc)
            b = datetime.now(tz=zone)
            c = datetime.fromtimestamp(ts, timezone.utc)
            d = datetime.now().astimezone()
        """),
    ]
    INVALID = [
        Invalid(
            """
            from datetime import datetime
            started = datetime.now()
            """,
            line=2,
        ),
        Invalid(
            """
            import datetime
            day = datetime.datetime.today()
            seen = datetime.datetime.fromtimestamp(ts)
            explicit = datetime.datetime.now(tz=None)
            """,
            count=3,
        ),
    ]

    def check(self, ctx: FileContext) -> Iterator[Finding]:
        for call, method in datetime_calls(ctx):
            naive = (
                method == "today"
                or (method == "now" and is_naive(call, 0))
                or (method == "fromtimestamp" and is_naive(call, 1))
            )
            if naive:
                yield ctx.finding(
                    self,
                    call,
                    f"`datetime.{method}()` without a timezone is naive local time;"
                    " pass `tz=timezone.utc`",
                )
