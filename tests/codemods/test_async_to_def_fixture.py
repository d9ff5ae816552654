"""`async-to-def --write` on a copy of the fixture app: its own suite still passes on a real
PostgreSQL and the ASY
audit is clean for every converted route."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gathering_consolidate import audit
from gathering_consolidate.codemods.engine import apply, plan_migration
from tests.conftest import FIXTURE_APP

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def copy_fixture(destination: Path) -> Path:
    shutil.copytree(
        FIXTURE_APP,
        destination,
        ignore=shutil.ignore_patterns(
            "__pycache__", ".pytest_cache", ".gathering_consolidate_cache"
        ),
    )
    return destination


def run_fixture_suite(app: Path, database_url: str) -> set[str]:
    """Run the app's own tests; return the failing ones as `module::name`."""
    report = app / "junit.xml"
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"],
        cwd=app, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert report.exists(), proc.stdout[-3000:] + proc.stderr[-2000:]
    failed = set()
    for case in ET.parse(report).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.add(f"{case.get('classname')}::{case.get('name')}")
    return failed


def test_async_to_def_keeps_the_fixture_suite_green(tmp_path, fresh_database):
    app = copy_fixture(tmp_path / "app")
    plan = plan_migration(app, "async-to-def", unsafe_fixes=True)
    assert not plan.failures, plan.failures
    assert any("awaits `scheduler.reload_action(...)`" in r.reason for r in plan.refusals)
    converted = {c.path for c in plan.changes}
    assert "gathering/api/routers/health.py" in converted
    apply(plan)

    again = plan_migration(app, "async-to-def", unsafe_fixes=True)
    assert not again.changes  # idempotent

    after = audit(app, select=["ASY"], cache=False)
    text = {p: (app / p).read_text() for p in converted}
    for finding in after.findings:
        source = text.get(finding.location.path)
        if source is None or finding.rule not in ("ASY001", "ASY005"):
            continue
        # Every remaining blocking finding in a converted file is in a handler that stayed async.
        function = finding.symbol.rsplit(".", 1)[1]
        assert f"async def {function}(" in source, finding

    assert run_fixture_suite(app, fresh_database) == set()
