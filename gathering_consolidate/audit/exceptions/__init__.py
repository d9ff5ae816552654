"""Family `EXC`: broad exception handlers (`except Exception`, `BaseException`, bare `except:`),
tiered, with what each does with the error and what its try body can really raise."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from ...model import Finding, SummaryTable
from .broad_except_reraised import BroadExceptReraised
from .broad_except_swallowed import BroadExceptSwallowed
from .exception_analysis_incomplete import ExceptionAnalysisIncomplete
from .helpers import BEHAVIOURS

CHECKS = (BroadExceptSwallowed, BroadExceptReraised, ExceptionAnalysisIncomplete)


def summarize(findings: Sequence[Finding]) -> list[SummaryTable]:
    """A tier x behaviour table and a per-file list, so the debt can be seen going down phase by
    phase from one run to the next."""
    findings = [f for f in findings if f.rule in ("EXC001", "EXC002")]
    if not findings:
        return []
    by_tier: dict[int | None, Counter[str]] = defaultdict(Counter)
    by_file: dict[str, Counter[str]] = defaultdict(Counter)
    tiers: dict[str, int | None] = {}
    for finding in findings:
        behaviour = str(finding.evidence.get("behaviour", "other"))
        by_tier[finding.tier][behaviour] += 1
        by_file[finding.location.path][finding.rule] += 1
        tiers[finding.location.path] = finding.tier
    rows = []
    total: Counter[str] = Counter()
    for tier in sorted(by_tier, key=lambda t: (t is None, t or 0)):
        counts = by_tier[tier]
        total.update(counts)
        label = "-" if tier is None else tier
        rows.append((label, *(counts[b] for b in BEHAVIOURS), sum(counts.values())))
    rows.append(("all", *(total[b] for b in BEHAVIOURS), sum(total.values())))
    files = [
        (
            path,
            "-" if tiers[path] is None else tiers[path],
            counts["EXC001"],
            counts["EXC002"],
            counts["EXC001"] + counts["EXC002"],
        )
        for path, counts in sorted(by_file.items())
    ]
    return [
        SummaryTable(
            "EXC",
            "Broad exception handlers by tier and behaviour",
            ("Tier", *BEHAVIOURS, "Total"),
            tuple(rows),
        ),
        SummaryTable(
            "EXC",
            "Broad exception handlers by file",
            ("File", "Tier", "Swallowed (EXC001)", "Re-raised (EXC002)", "Total"),
            tuple(files),
        ),
    ]
