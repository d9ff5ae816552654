"""ASY follows calls into installed third-party source (issue 9 point 4): a library no catalogue
names is read from the target's environment (`--python` / `config.python`), never run.

`dbkit` is built here and copied into a real `python -m venv` beside a hand-written dist-info;
the venv's interpreter is replaced by a script that leaves a marker, so every test also shows it
is never run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gathering_consolidate.config import load_config
from gathering_consolidate.model import AuditResult, Finding, Severity
from gathering_consolidate.project import audit
from tests.test_libsource import booby_trap, copy_install, make_venv, write_tree

DBKIT = {
    "dbkit/__init__.py": """
        from .client import Client, connect

        __all__ = ["Client", "connect"]
    """,
    "dbkit/client.py": """
        import time

        import psycopg


        class Client:
            def __init__(self, dsn="postgresql://"):
                self.dsn = dsn

            def query(self, sql):
                return self._run(sql)

            def _run(self, sql):
                time.sleep(0.1)
                return sql

            def connect(self):
                return psycopg.connect(self.dsn)

            def render(self, sql):
                return {"sql": sql}

            def lookup(self, key):
                return self._plugin.resolve(key)


        def connect(dsn="postgresql://"):
            return Client(dsn)
    """,
}

APP = {
    "app/__init__.py": "",
    "app/api.py": """
        from fastapi import APIRouter

        import dbkit

        router = APIRouter()


        @router.get("/rows")
        async def rows():
            return dbkit.Client().query("SELECT 1")


        @router.get("/conn")
        async def conn():
            return dbkit.Client().connect()


        def helper():
            return dbkit.Client().query("SELECT 2")


        @router.get("/via")
        async def via():
            return helper()


        @router.get("/render")
        async def render():
            return dbkit.Client().render("SELECT 3")


        @router.get("/lookup")
        async def lookup():
            return dbkit.Client().lookup("k")


        @router.get("/pooled")
        async def pooled():
            client = dbkit.connect()  # what a library function returns: named opaquely
            return client.query("SELECT 4")
    """,
}

QUERY_CHAIN = ["dbkit.Client.query", "dbkit.Client._run", "time.sleep"]


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """(project, venv python, marker): dbkit installed in a venv whose interpreter is a trap."""
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    monkeypatch.setenv("GATHERING_CONSOLIDATE_CACHE_DIR", str(tmp_path / "user-cache"))
    venv = tmp_path / "venv"
    copy_install(make_venv(venv), DBKIT, "dbkit", "2.3")
    marker = tmp_path / "interpreter-was-run"
    booby_trap(venv, marker)
    project = tmp_path / "project"
    write_tree(project, APP)
    return project, venv / "bin" / "python", marker


def by_symbol(result: AuditResult, rule: str) -> dict[str, Finding]:
    found = [f for f in result.findings if f.rule == rule]
    assert len({f.symbol for f in found}) == len(found), found
    return {f.symbol.rsplit(".", 1)[-1]: f for f in found}


def unknown_resolved(finding: Finding) -> set[str]:
    return {u["resolved"] for u in finding.evidence["unknown_calls"]}


def test_without_an_environment_the_library_call_is_unknown(
    target: tuple[Path, Path, Path],
) -> None:
    project, _python, _marker = target
    config = load_config(project)
    assert config.python is None
    result = audit(project, select=["ASY"], config=config, cache=False)
    assert not result.errors, result.errors
    assert by_symbol(result, "ASY001") == {}
    could_not_tell = by_symbol(result, "ASY003")
    assert set(could_not_tell) == {"rows", "conn", "via", "render", "lookup", "pooled"}
    for finding in could_not_tell.values():
        assert finding.severity is Severity.INFO and "could not tell" in finding.message
    assert "dbkit.Client.query" in unknown_resolved(could_not_tell["rows"])
    assert "dbkit.Client.query" in unknown_resolved(could_not_tell["via"])


def test_with_the_environment_the_chain_through_the_library_is_reported(
    target: tuple[Path, Path, Path],
) -> None:
    project, python, marker = target
    config = load_config(project, python=python)
    result = audit(project, select=["ASY"], config=config, cache=False)
    assert not result.errors, result.errors
    blocking = by_symbol(result, "ASY001")
    assert set(blocking) == {"rows", "conn", "via", "pooled"}

    rows = blocking["rows"]
    assert rows.severity is Severity.HIGH
    assert rows.evidence["source"] == "library source"
    assert rows.evidence["chain"] == ["app.api.rows", *QUERY_CHAIN]
    assert rows.evidence["root"] == "time.sleep"
    assert rows.evidence["route"] == "GET /rows"
    assert rows.evidence["library"] == {
        "call": "dbkit.Client.query",
        "chain": QUERY_CHAIN,
        "distribution": "dbkit",
        "version": "2.3",
        "source": "library source",
    }
    assert "dbkit.Client.query" not in unknown_resolved(rows)
    assert "inside dbkit 2.3 (read from its installed source)" in rows.message
    assert "asyncio.sleep" not in rows.message  # the catalogue's fix is for the library's call

    conn = blocking["conn"]
    assert conn.evidence["chain"] == ["app.api.conn", "dbkit.Client.connect", "psycopg.connect"]
    assert conn.evidence["root"] == "psycopg.connect"
    assert conn.evidence["library"]["distribution"] == "dbkit"

    # Through a project helper: the helper's call into the library is the root it reaches.
    via = blocking["via"]
    assert via.evidence["source"] == "library source"
    assert via.evidence["chain"] == ["app.api.via", "app.api.helper", *QUERY_CHAIN]
    assert via.evidence["library"]["call"] == "dbkit.Client.query"

    pooled = blocking["pooled"]
    assert pooled.evidence["chain"][:2] == ["app.api.pooled", "dbkit.connect().query"]
    assert pooled.evidence["root"] == "time.sleep"

    rest = by_symbol(result, "ASY003")
    assert set(rest) == {"render", "lookup"}
    # Nothing blocking and nothing unresolved in the library: known not to block.
    assert rest["render"].severity is not Severity.INFO
    assert rest["render"].evidence["unknown_calls"] == []
    # Something unresolved inside the library: still unknown, and the finding says why.
    assert rest["lookup"].severity is Severity.INFO
    (entry,) = [
        u
        for u in rest["lookup"].evidence["unknown_calls"]
        if u["resolved"] == "dbkit.Client.lookup"
    ]
    assert "installed dbkit 2.3 source" in entry["reason"]
    assert not marker.exists()


def test_the_cli_python_option_reports_the_library_chain(
    target: tuple[Path, Path, Path],
) -> None:
    from gathering_consolidate.cli import app

    project, python, marker = target
    args = ["audit", str(project), "--select", "ASY", "-f", "json"]
    before = CliRunner().invoke(app, args)
    assert before.exit_code != 2, before.output
    rules = {(f["rule"], f["symbol"]) for f in json.loads(before.output)["findings"]}
    assert ("ASY001", "app.api.rows") not in rules
    assert ("ASY003", "app.api.rows") in rules

    result = CliRunner().invoke(app, [*args, "--python", str(python)])
    assert result.exit_code != 2, result.output
    findings = json.loads(result.output)["findings"]
    (rows,) = [f for f in findings if f["rule"] == "ASY001" and f["symbol"] == "app.api.rows"]
    assert rows["evidence"]["source"] == "library source"
    assert rows["evidence"]["chain"] == ["app.api.rows", *QUERY_CHAIN]
    assert rows["evidence"]["library"]["version"] == "2.3"
    assert not any(f["rule"] == "ASY003" and f["symbol"] == "app.api.rows" for f in findings)
    assert not marker.exists()


def test_an_upgrade_in_the_environment_invalidates_the_cached_findings(
    target: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """Each run is its own process (the console script), with the audit cache on: the same
    project and `--python`, but dbkit 2.4 no longer sleeps, so the cached ASY001 must go."""
    project, python, marker = target
    exe = Path(sys.executable).parent / "gathering-consolidate"
    args = [str(exe), "audit", str(project), "--select", "ASY", "-f", "json", "--python"]

    def blocking_symbols() -> set[str]:
        proc = subprocess.run(
            [*args, str(python)], capture_output=True, text=True, timeout=300, env=os.environ
        )
        assert proc.returncode in (0, 1), proc.stderr
        return {f["symbol"] for f in json.loads(proc.stdout)["findings"] if f["rule"] == "ASY001"}

    assert blocking_symbols() == {"app.api.rows", "app.api.conn", "app.api.via", "app.api.pooled"}
    site = next((python.parent.parent / "lib").glob("python3.*/site-packages"))
    client = site / "dbkit" / "client.py"
    client.write_text(client.read_text().replace("time.sleep(0.1)", "pass"))
    (site / "dbkit-2.3.dist-info").rename(site / "dbkit-2.4.dist-info")
    metadata = site / "dbkit-2.4.dist-info" / "METADATA"
    metadata.write_text(metadata.read_text().replace("Version: 2.3", "Version: 2.4"))
    assert blocking_symbols() == {"app.api.conn"}
    assert not marker.exists()
