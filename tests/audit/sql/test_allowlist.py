"""The allowlist: `sql approve`, SQL003, stale entries (SQL004), and the cache key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gathering_consolidate import audit
from gathering_consolidate.cli import app
from gathering_consolidate.sql.allowlist import ApproveError, approve, parse

REPORTING = """\
def list_runs(db, pipeline_id, order_by="created_at"):
    return db.execute(
        f"SELECT * FROM runs WHERE pipeline_id = %s ORDER BY {order_by} DESC",
        (pipeline_id,),
    )


def runs_by(db, column, value):
    return db.execute(f"SELECT * FROM runs WHERE {column} = %s", (value,))
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "reporting.py").write_text(REPORTING)
    return tmp_path


def rules(result) -> list[tuple[str, str, int]]:
    return [(f.rule, f.location.path, f.location.line) for f in result.findings]


def test_approve_by_line_turns_the_site_informational(project: Path):
    before = audit(project, select=["SQL"], cache=False)
    assert rules(before) == [("SQL002", "app/reporting.py", 2), ("SQL002", "app/reporting.py", 9)]
    approval = approve(
        project, "app/reporting.py:3", reason="callers pass SORTABLE", reviewer="alice"
    )
    assert approval.added and approval.site.line == 2
    entry = parse(approval.allowlist.read_text()).entries[0]
    assert (entry.path, entry.function, entry.reviewer) == (
        "app/reporting.py",
        "app.reporting.list_runs",
        "alice",
    )
    after = audit(project, select=["SQL"], cache=False)
    assert rules(after) == [("SQL003", "app/reporting.py", 2), ("SQL002", "app/reporting.py", 9)]
    approved = after.findings[0]
    assert approved.evidence["verdict"] == "approved"
    assert "approved by alice" in approved.message


def test_only_informational_findings_pass_the_gate(project: Path):
    for line in (2, 9):
        approve(project, f"app/reporting.py:{line}", reason="reviewed", reviewer="bob")
    result = audit(project, select=["SQL"], cache=False)
    assert {f.rule for f in result.findings} == {"SQL003"}
    assert result.exit_code == 0


def test_approve_by_fingerprint_and_twice(project: Path):
    finding = audit(project, select=["SQL002"], cache=False).findings[1]
    site = finding.evidence["site"]
    first = approve(project, site[:8], reason="reviewed", reviewer="carol")
    again = approve(project, site, reason="reviewed", reviewer="carol")
    assert first.added and not again.added
    assert len(parse(first.allowlist.read_text()).entries) == 1


def test_approve_needs_a_reason_and_an_existing_site(project: Path):
    with pytest.raises(ApproveError, match="reason"):
        approve(project, "app/reporting.py:2", reason=" ", reviewer="alice")
    with pytest.raises(ApproveError, match="no dynamic SQL site"):
        approve(project, "app/reporting.py:7", reason="r", reviewer="alice")


def test_a_changed_allowlist_changes_a_warm_run(project: Path):
    cold = audit(project, select=["SQL"])
    approve(project, "app/reporting.py:2", reason="reviewed", reviewer="alice")
    warm = audit(project, select=["SQL"])
    assert warm.cache_hits == len(warm.files)  # no Python file changed...
    assert rules(warm) != rules(cold)  # ...but the allowlist did
    assert rules(warm)[0][0] == "SQL003"


def test_changing_the_sql_makes_the_entry_stale(project: Path):
    approve(project, "app/reporting.py:2", reason="reviewed", reviewer="alice")
    source = project / "app" / "reporting.py"
    source.write_text(source.read_text().replace('DESC",', 'DESC, id",'))
    result = audit(project, select=["SQL"])
    assert ("SQL002", "app/reporting.py", 2) in rules(result)
    stale = [f for f in result.findings if f.rule == "SQL004"]
    assert [(f.location.path, f.location.line) for f in stale] == [("rules/sql_allowlist.toml", 3)]
    assert result.exit_code == 1


def test_moving_the_site_keeps_the_approval(project: Path):
    approve(project, "app/reporting.py:2", reason="reviewed", reviewer="alice")
    source = project / "app" / "reporting.py"
    source.write_text("import logging\n\n\n" + source.read_text())
    assert rules(audit(project, select=["SQL003"], cache=False)) == [
        ("SQL003", "app/reporting.py", 5)
    ]


def test_entries_without_reviewer_or_bad_toml_are_reported(project: Path):
    allowlist = project / "rules" / "sql_allowlist.toml"
    allowlist.parent.mkdir()
    allowlist.write_text(
        textwrap.dedent(
            """\
            [[site]]
            path = "app/reporting.py"
            function = "app.reporting.list_runs"
            fingerprint = "abc"
            reason = "trust me"
            """
        )
    )
    result = audit(project, select=["SQL004"], cache=False)
    assert [f.message for f in result.findings] == [
        "invalid allowlist: entry approves nothing: missing reviewer"
    ]
    allowlist.write_text("[[site]\n")
    result = audit(project, select=["SQL004"], cache=False)
    assert "invalid TOML" in result.findings[0].message


def test_entries_for_files_outside_the_audited_paths_are_not_stale(project: Path):
    (project / "app" / "other.py").write_text("X = 1\n")
    approve(project, "app/reporting.py:2", reason="reviewed", reviewer="alice")
    result = audit(project / "app" / "other.py", select=["SQL"], cache=False)
    assert result.findings == ()


def test_cli_approve(project: Path):
    runner = CliRunner()
    ok = runner.invoke(
        app,
        ["sql", "approve", "app/reporting.py:9", "--reason", "columns are constants",
         "--reviewer", "dana", "--project", str(project)],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "approved: app/reporting.py:9 app.reporting.runs_by" in ok.output
    missing = runner.invoke(
        app,
        ["sql", "approve", "app/reporting.py:1", "--reason", "x", "--reviewer", "dana",
         "--project", str(project)],
    )  # fmt: skip
    assert missing.exit_code == 2


# -- writes never leave the project (issue 12, point 2) ----------------------------------------
def _approve_cli(project: Path, *extra: str):
    return CliRunner().invoke(
        app,
        ["sql", "approve", "app/reporting.py:9", "--reason", "columns are constants",
         "--reviewer", "dana", "--project", str(project), *extra],
    )  # fmt: skip


def _err(result) -> str:
    """stderr with the console's line wrapping undone."""
    return " ".join(result.stderr.split())


@pytest.fixture
def outside(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("outside")
    (folder / "victim.toml").write_text("precious\n")
    return folder


def _untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["victim.toml"]
    assert (outside / "victim.toml").read_text() == "precious\n"


def test_approve_ignores_a_symlink_planted_at_the_old_temporary_name(project: Path, outside):
    """The old writer used the fixed `rules/.sql_allowlist.toml.tmp` and wrote through a symlink
    planted there; the new one uses a fresh random name, so the planted link is never opened."""
    (project / "rules").mkdir()
    planted = project / "rules" / ".sql_allowlist.toml.tmp"
    planted.symlink_to(outside / "victim.toml")
    result = _approve_cli(project)
    assert result.exit_code == 0, result.output
    _untouched(outside)
    allowlist = project / "rules" / "sql_allowlist.toml"
    assert not allowlist.is_symlink()
    assert parse(allowlist.read_text()).entries[0].reviewer == "dana"
    assert planted.is_symlink()
    assert sorted(p.name for p in (project / "rules").iterdir()) == [
        ".sql_allowlist.toml.tmp",
        "sql_allowlist.toml",
    ]


def test_approve_refuses_a_symlinked_rules_folder(project: Path, outside):
    (project / "rules").symlink_to(outside, target_is_directory=True)
    result = _approve_cli(project)
    assert result.exit_code == 2
    assert "outside the project" in _err(result)
    _untouched(outside)


def test_approve_refuses_a_symlinked_allowlist_file(project: Path, outside):
    (project / "rules").mkdir()
    (project / "rules" / "sql_allowlist.toml").symlink_to(outside / "victim.toml")
    result = _approve_cli(project)
    assert result.exit_code == 2
    assert "outside the project" in _err(result)
    _untouched(outside)
    inner = project / "rules" / "real.toml"
    inner.write_text("")
    (project / "rules" / "sql_allowlist.toml").unlink()
    (project / "rules" / "sql_allowlist.toml").symlink_to(inner)  # a link even inside: refused
    result = _approve_cli(project)
    assert result.exit_code == 2
    assert "symbolic link" in _err(result)
    assert inner.read_text() == ""


def test_approve_refuses_a_symlinked_folder_that_stays_inside(project: Path):
    (project / "data").mkdir()
    (project / "rules").symlink_to(project / "data", target_is_directory=True)
    result = _approve_cli(project)
    assert result.exit_code == 2
    assert "symbolic link" in _err(result)
    assert list((project / "data").iterdir()) == []


@pytest.mark.parametrize("where", ["absolute", "dotdot"])
def test_approve_refuses_an_allowlist_path_outside_the_project(project: Path, outside, where):
    if where == "absolute":
        value = str(outside / "victim.toml")
    else:
        value = f"rules/../../{outside.relative_to(project.parent)}/x.toml"
    (project / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n'
        f"[tool.gathering-consolidate.checks.SQL]\nallowlist = {value!r}\n".replace("'", '"')
    )
    result = _approve_cli(project)
    assert result.exit_code == 2
    assert "checks.SQL: `allowlist`" in _err(result)
    assert "project" in _err(result)
    _untouched(outside)
    audited = CliRunner().invoke(app, ["audit", str(project)])  # the audit refuses it too
    assert audited.exit_code == 2
    assert "`allowlist`" in _err(audited)


def test_approve_refuses_an_allowlist_option_outside_the_project(project: Path, outside):
    result = _approve_cli(project, "--allowlist", str(outside / "victim.toml"))
    assert result.exit_code == 2
    assert "outside the project" in _err(result)
    _untouched(outside)
