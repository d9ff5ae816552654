"""The tool audits its own package clean (every remaining finding is a reviewed suppression)."""

from __future__ import annotations

from gathering_consolidate import audit
from tests.conftest import REPO


def test_own_package_audits_clean():
    result = audit(REPO / "gathering_consolidate", cache=False)
    assert result.errors == ()
    assert result.failed_files == ()
    assert [f"{f.location.path}:{f.location.line} {f.rule}" for f in result.findings] == []
    assert all(s.reason for s in result.suppressed)
