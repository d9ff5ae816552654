"""Family `STB`: stub implementations that claim an outcome they did not produce.

`stub_symbols()` exports the findings by symbol for the test-tagging classifier: a test that
pins a stub's behaviour is a `stub` test, not a contract.
"""

from __future__ import annotations

from ...model import AuditResult, Finding, SuppressionKind
from .fake_completion import FakeCompletion
from .log_only_action import LogOnlyAction
from .placeholder_result import PlaceholderResult
from .stubbed_branch import StubbedBranch
from .unimplemented_route import UnimplementedRoute

CHECKS = (FakeCompletion, LogOnlyAction, UnimplementedRoute, PlaceholderResult, StubbedBranch)

__all__ = [
    "CHECKS",
    "FakeCompletion",
    "LogOnlyAction",
    "PlaceholderResult",
    "StubbedBranch",
    "UnimplementedRoute",
    "stub_symbols",
]


def stub_symbols(result: AuditResult) -> dict[str, list[Finding]]:
    """Qualified symbol (`app.api.pipelines.run_pipeline`) -> its STB findings, in report order.
    Findings kept as debt (`# consolidate: fixme[STB001] ...`) count too: the code is still a
    stub; ones silenced with `ignore` were reviewed as not stubs and do not."""
    ids = {c.id for c in CHECKS}
    found: dict[str, list[Finding]] = {}
    debt = [s.finding for s in result.suppressed if s.kind is SuppressionKind.FIXME]
    findings = [*result.findings, *debt]
    for finding in sorted(findings, key=Finding.sort_key):
        if finding.rule in ids:
            found.setdefault(finding.symbol, []).append(finding)
    return found
