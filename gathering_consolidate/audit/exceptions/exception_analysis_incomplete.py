from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ...model import Finding, Location, Severity, fingerprint
from ..base import Invalid, ProjectContext, Valid
from . import analysis, flow


class ExceptionAnalysisIncomplete(analysis.ExceptionCheck):
    """The cross-file exception analysis could not finish: some handlers are unknown.

    ## Why is this bad?
    EXC001/EXC002 say what a try body can raise by following calls across the project. On a
    very large or very tangled code base that walk is cut off after a fixed number of steps
    (`step-budget`), so the audit always ends. The handlers it did not reach are still
    reported, but what they raise is unknown: their `narrow_reason` says so and
    `narrow-except` refuses them. This finding says how many handlers that concerns, so an
    audit that gave up is never read as one that found nothing to narrow.

    Reported once per audit, at the first handler left unknown, with `evidence` giving the
    budget, the number of handlers analysed and the number left unknown.

    ## How to fix
    Raise `step-budget` in `[tool.gathering-consolidate.checks.EXC]`, or exclude generated
    code the analysis does not need; report the project if a normal-sized one needs it.
    """

    id, name = "EXC003", "exception-analysis-incomplete"
    severity = Severity.INFO
    VALID = [
        Valid("""
            def load(raw):
                try:
                    return int(raw)
                except Exception:
                    return None
        """)
    ]
    INVALID = [
        Invalid(
            """
            import json

            def first(raw):
                try:
                    return json.loads(raw)
                except Exception:
                    return None

            def second(raw):
                try:
                    return int(raw)
                except Exception:
                    return None
            """,
            options={"step-budget": 1},
            line=6,
            evidence={"handlers": 2, "unknown": 2, "step_budget": 1},
            message="the exception analysis stopped after 1 resolution steps",
        )
    ]

    def finish(self, facts: Mapping[str, Any], project: ProjectContext) -> Iterator[Finding]:
        items = analysis.analyse(facts, project, self.options)
        unknown = [item for item in items if item.incomplete]
        if not unknown:
            return
        first = unknown[0]
        handler = first.facts
        budget = int(self.options.get("step-budget") or flow.STEP_BUDGET)
        yield Finding(
            rule=self.id,
            name=self.name,
            message=(
                f"{first.unresolved[0]}: what {len(unknown)} of {len(items)} broad handlers"
                " can raise is unknown (raise `step-budget` to analyse them)"
            ),
            severity=self.severity,
            location=Location(
                first.path, handler.line, handler.column, handler.end_line, handler.end_column
            ),
            symbol=handler.symbol,
            tier=project.tiers.get(first.path),
            evidence={"handlers": len(items), "unknown": len(unknown), "step_budget": budget},
            fingerprint=fingerprint(self.id, "<project>", "", "incomplete"),
        )
