from ...model import Severity
from ..base import EngineCheck, Invalid, Valid


class SuppressionWithoutReason(EngineCheck):
    """A `# consolidate: ignore[RULE]` comment that gives no reason; it suppresses nothing.

    ## Why is this bad?
    A suppression is a reviewed decision. Without the reason, the next reader cannot tell a
    judgement from a shortcut, so the finding it targets stays reported until one is written.

    ## How to fix
    Write the reason after the bracket: `# consolidate: ignore[DTZ001] log-only timestamp`.
    """

    id, name = "SUP002", "suppression-without-reason"
    severity = Severity.LOW
    VALID = [
        Valid("""
            from datetime import datetime
            # consolidate: fixme[DTZ001] GH-42 move to aware datetimes
            stamp = datetime.utcnow()
        """)
    ]
    INVALID = [
        Invalid(
            """
            from datetime import datetime
            stamp = datetime.utcnow()  # consolidate: ignore[DTZ001]
            """,
            line=2,
        )
    ]
