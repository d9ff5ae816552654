"""The consolidated fixture (fixtures/gathering_app_consolidated) is the "after" app: its own
suite passes against a fresh PostgreSQL database (including its uvicorn tests: restart,
SIGKILL during a scheduled action, rate limit, startup guard, event loop under load), and the
toolkit's audit finds nothing in it, while the same audit of the before app does."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from gathering_consolidate import audit
from tests.conftest import FIXTURE_APP, REPO

CONSOLIDATED_APP = REPO / "fixtures" / "gathering_app_consolidated"


@pytest.mark.postgres
@pytest.mark.slow
def test_consolidated_suite_passes_on_a_fresh_database(fresh_database):
    env = {**os.environ, "DATABASE_URL": fresh_database, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"],
        cwd=CONSOLIDATED_APP, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, output
    summary = proc.stdout.strip().splitlines()[-1]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 180, summary
    assert "failed" not in summary and "error" not in summary, summary
    # The runtime tests ran (they are what proves restart survival and crash recovery).
    assert "test_runtime.py" not in "\n".join(
        line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")
    ), output


def test_consolidated_app_audits_clean():
    result = audit(CONSOLIDATED_APP, cache=False)
    assert result.errors == ()
    assert result.failed_files == ()
    assert [f"{f.location.path}:{f.location.line} {f.rule}" for f in result.findings] == []
    assert result.exit_code == 0
    # Not a vacuous pass: the same audit finds the before app's pitfalls.
    before = audit(FIXTURE_APP, cache=False)
    assert {f.rule[:3] for f in before.findings} >= {
        "ASY",
        "AUT",
        "DTZ",
        "EXC",
        "MEM",
        "SQL",
        "STB",
    }


def test_consolidated_schema_file_is_the_rendered_revisions():
    """schema/050_consolidation.sql is `gathering-consolidate schema sql` under its header: when a
    revision changes, this says the fixture's copy is stale."""
    from gathering_consolidate.schema.migrations import render_sql

    text = (CONSOLIDATED_APP / "schema" / "050_consolidation.sql").read_text(encoding="utf-8")
    header, _, body = text.partition("\n\n")
    assert "gathering-consolidate schema sql" in header
    assert all(line.startswith("--") for line in header.splitlines())
    assert body == render_sql()
