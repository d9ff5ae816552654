from collections.abc import Iterator

from ...model import Finding, Severity
from ..base import FileCheck, FileContext, Invalid, Valid
from .helpers import AWARE_FIX, datetime_calls


class NaiveUtcfromtimestamp(FileCheck):
    """`datetime.utcfromtimestamp(ts)` returns a naive datetime that only means UTC by convention.

    ## Why is this bad?
    As `utcnow()`: no `tzinfo`, so comparisons with aware values fail and the value reads as local
    time once stored. Deprecated since Python 3.12.

    ## Fix safety
    Unsafe: `datetime.fromtimestamp(ts, tz=timezone.utc)` is aware; code mixing it with naive
    values must change too. Codemod `aware-datetimes`.

    ## References
    - https://docs.python.org/3/library/datetime.html#datetime.datetime.utcfromtimestamp
    """

    id, name = "DTZ002", "naive-utcfromtimestamp"
    severity = Severity.MEDIUM
    fix = AWARE_FIX
    VALID = [
        Valid("""
            from datetime import datetime, timezone
            expires = datetime.fromtimestamp(payload["exp"], tz=timezone.utc)
        """),
    ]
    INVALID = [
        Invalid(
            """
            import datetime
            expires = datetime.datetime.utcfromtimestamp(payload["exp"])
            """,
            line=2,
        ),
    ]

    def check(self, ctx: FileContext) -> Iterator[Finding]:
        for call, method in datetime_calls(ctx):
            if method == "utcfromtimestamp":
                yield ctx.finding(
                    self,
                    call,
                    "`datetime.utcfromtimestamp()` is naive;"
                    " use `datetime.fromtimestamp(ts, tz=timezone.utc)`",
                )
