from ...model import Severity
from ..base import EngineCheck, Invalid, Valid


class UnusedSuppression(EngineCheck):
    """A `# consolidate: ignore[RULE]` comment that suppressed nothing.

    ## Why is this bad?
    Once the code it excused is fixed or moved, a stale suppression hides the next real finding on
    that line and misstates the debt. Reported only for rules that ran in this audit.

    ## How to fix
    Delete the comment, or move it to the line the finding now starts on.
    """

    id, name = "SUP001", "unused-suppression"
    severity = Severity.LOW
    VALID = [
        Valid("""
            from datetime import datetime
            stamp = datetime.utcnow()  # consolidate: ignore[DTZ001] log-only timestamp
        """)
    ]
    INVALID = [
        Invalid(
            """
            from datetime import datetime, timezone
            stamp = datetime.now(timezone.utc)  # consolidate: ignore[DTZ001] log-only timestamp
            """,
            line=2,
        )
    ]
