from collections.abc import Iterator

from ...model import Finding, Severity
from ..base import FileCheck, FileContext, Invalid, Valid
from .helpers import AWARE_FIX, datetime_calls


class NaiveUtcnow(FileCheck):
    """`datetime.utcnow()` returns a naive datetime that only means UTC by convention.

    ## Why is this bad?
    The result has no `tzinfo`. Compared with an aware value (a `timestamptz` column read by
    psycopg, a parsed ISO string with an offset) it raises `TypeError`; stored or serialised, it
    reads as local time. It is deprecated since Python 3.12.

    Calls whose result is made aware at once (`.replace(tzinfo=...)`, `.astimezone()`) and
    `utcnow()` methods of other objects (a clock, `arrow`, `pendulum`) are not reported: the name
    is resolved through the file's imports.

    ## Fix safety
    Unsafe: `datetime.now(timezone.utc)` is aware, and code that compares it with naive values
    (or subtracts them) must change too. Codemod `aware-datetimes`.

    ## References
    - https://docs.python.org/3/library/datetime.html#datetime.datetime.utcnow
    """

    id, name = "DTZ001", "naive-utcnow"
    severity = Severity.MEDIUM
    fix = AWARE_FIX
    VALID = [
        Valid("""
            from datetime import datetime, timezone
            created = datetime.now(timezone.utc)
        """),
        Valid("""
            import datetime as dt
            created = dt.datetime.utcnow().replace(tzinfo=dt.timezone.utc)
        """),
        Valid("""
            class Clock:
                def utcnow(self): ...
            clock = Clock()
            created = clock.utcnow()
        """),
    ]
    INVALID = [
        Invalid(
            """
            from datetime import datetime
            created = datetime.utcnow()
            """,
            line=2,
            message="utcnow",
        ),
        Invalid(
            """
            import datetime as dt
            def stamp():
                return dt.datetime.utcnow().isoformat()
            """,
            line=3,
        ),
        Invalid(
            """
            from datetime import datetime as DateTime
            started = DateTime.utcnow()
            """
        ),
    ]

    def check(self, ctx: FileContext) -> Iterator[Finding]:
        for call, method in datetime_calls(ctx):
            if method == "utcnow":
                yield ctx.finding(
                    self,
                    call,
                    "`datetime.utcnow()` is naive; use `datetime.now(timezone.utc)`",
                )
