"""Family `ASY`: blocking work in async code, found on the project's call graph (`index/`).

The checks share one collector (per-module facts, cached with each file) and one analysis of the
call graph per run; see `helpers.py`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from ...model import Finding, SummaryTable
from .async_without_await import AsyncWithoutAwait
from .blocking_call_in_async import BlockingCallInAsync
from .executor_in_handler import ExecutorInHandler
from .lazy_blocking_load import LazyBlockingLoad
from .unawaited_coroutine import UnawaitedCoroutine

CHECKS = (
    BlockingCallInAsync,
    ExecutorInHandler,
    AsyncWithoutAwait,
    UnawaitedCoroutine,
    LazyBlockingLoad,
)


def summarize(findings: Sequence[Finding]) -> list[SummaryTable]:
    """One row per async function with blocking findings: its route, how many blocking calls
    (ASY001: every call; ASY002: executor hops; ASY005: first access only) and the safe
    strategy."""
    rows: dict[str, list] = defaultdict(lambda: ["", "", 0, 0, 0, "", ""])
    for finding in findings:
        if finding.rule not in ("ASY001", "ASY002", "ASY005"):
            continue
        row = rows[finding.symbol]
        row[0] = finding.evidence.get("route") or "-"
        row[1] = ".".join(finding.symbol.split(".")[-2:])
        row[{"ASY001": 2, "ASY002": 3, "ASY005": 4}[finding.rule]] += 1
        row[5] = finding.evidence.get("strategy", "")
        row[6] = finding.location.path
    if not rows:
        return []
    ordered = sorted(rows.values(), key=lambda r: (r[0] == "-", r[6], r[1]))
    strategies = defaultdict(int)
    for row in ordered:
        strategies[row[5]] += 1
    title = "Event-loop blocking by function (strategy: B async-to-def, A async-db); " + ", ".join(
        f"{k or '?'}: {v}" for k, v in sorted(strategies.items())
    )
    return [
        SummaryTable(
            family="ASY",
            title=title,
            columns=("route", "function", "ASY001", "ASY002", "ASY005", "strategy"),
            rows=tuple(tuple(r[:6]) for r in ordered),
        )
    ]
