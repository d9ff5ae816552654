"""The command line end to end: exit codes, formats, output files, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gathering_consolidate import __version__
from gathering_consolidate.cli import app

runner = CliRunner()
NAIVE = "from datetime import datetime\nstamp = datetime.utcnow()\n"


def _tree(tmp_path: Path, text: str = NAIVE) -> Path:
    (tmp_path / "app").mkdir(parents=True)
    (tmp_path / "app" / "a.py").write_text(text)
    return tmp_path


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"gathering-consolidate {__version__}"


@pytest.mark.parametrize(
    "command", [[], ["audit"], ["rules"], ["migrate"], ["sql"], ["sql", "approve"]]
)
def test_help_on_every_command(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.stdout


def test_exit_code_one_on_findings_and_zero_when_clean(tmp_path):
    tree = _tree(tmp_path)
    dirty = runner.invoke(app, ["audit", str(tree), "--no-cache"])
    assert dirty.exit_code == 1
    assert "app/a.py:2:9: DTZ001" in dirty.stdout
    assert "1 finding in 1 file" in dirty.stdout
    (tree / "app" / "a.py").write_text("x = 1\n")
    clean = runner.invoke(app, ["audit", str(tree), "--no-cache"])
    assert clean.exit_code == 0, clean.stdout


def test_exit_code_two_on_config_error(tmp_path):
    tree = _tree(tmp_path)
    (tree / "pyproject.toml").write_text("[tool.gathering-consolidate]\nbogus = 1\n")
    result = runner.invoke(app, ["audit", str(tree)])
    assert result.exit_code == 2
    assert "unknown key `bogus`" in result.stderr


def test_exit_code_two_on_usage_errors(tmp_path):
    assert runner.invoke(app, ["audit", str(tmp_path / "missing")]).exit_code == 2
    assert runner.invoke(app, ["audit", str(tmp_path), "--select", "NOPE1"]).exit_code == 2
    assert runner.invoke(app, ["audit", str(tmp_path), "--format", "xml"]).exit_code == 2


def test_json_format_is_stable(tmp_path):
    tree = _tree(tmp_path)
    result = runner.invoke(app, ["audit", str(tree), "-f", "json", "--no-cache"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["schema"] == "gathering-consolidate/audit"
    assert data["version"] == 1
    assert data["summary"]["findings"] == 1
    assert data["summary"]["by_rule"] == {"DTZ001": 1}
    assert data["summary"]["files"] == {"ok": 1, "skipped": 0, "failed": 0}
    (finding,) = data["findings"]
    assert set(finding) == {
        "rule", "name", "severity", "tier", "path", "line", "column", "end_line", "end_column",
        "symbol", "message", "evidence", "fix", "fingerprint",
    }  # fmt: skip
    assert (finding["path"], finding["line"], finding["column"]) == ("app/a.py", 2, 9)
    assert finding["symbol"] == "app.a"
    assert finding["fix"] == {
        "title": "Use an aware datetime (tz=timezone.utc)",
        "applicability": "unsafe",
        "codemod": "aware-datetimes",
    }


def test_output_file(tmp_path):
    tree = _tree(tmp_path / "t")
    out = tmp_path / "report.json"
    result = runner.invoke(app, ["audit", str(tree), "-f", "json", "-o", str(out), "--no-cache"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert json.loads(out.read_text())["summary"]["findings"] == 1
    text_out = tmp_path / "report.txt"
    runner.invoke(app, ["audit", str(tree), "-o", str(text_out), "--no-cache"])
    assert "DTZ001" in text_out.read_text()


def test_quiet_prints_only_findings(tmp_path):
    tree = _tree(tmp_path)
    result = runner.invoke(app, ["audit", str(tree), "-q", "--no-cache"])
    assert result.stdout.strip().splitlines() == [
        "app/a.py:2:9: DTZ001 `datetime.utcnow()` is naive; use `datetime.now(timezone.utc)`"
    ]


def test_failed_files_are_listed_and_fail_the_run(tmp_path):
    tree = _tree(tmp_path, "def broken(:\n")
    result = runner.invoke(app, ["audit", str(tree), "--no-cache"])
    assert result.exit_code == 1
    assert "Files not audited" in result.stdout
    assert "syntax error" in result.stdout


def test_select_and_ignore(tmp_path):
    tree = _tree(tmp_path, NAIVE + "other = datetime.now()\n")
    only = runner.invoke(
        app, ["audit", str(tree), "-f", "json", "--select", "DTZ003", "--no-cache"]
    )
    assert json.loads(only.stdout)["summary"]["by_rule"] == {"DTZ003": 1}
    skip = runner.invoke(app, ["audit", str(tree), "-f", "json", "--ignore", "DTZ001,DTZ003"])
    assert json.loads(skip.stdout)["summary"]["findings"] == 0


def test_rules_lists_and_documents(tmp_path):
    listing = runner.invoke(app, ["rules", "--format", "json"])
    ids = [r["id"] for r in json.loads(listing.stdout)]
    assert "DTZ001" in ids and ids == sorted(ids)
    one = runner.invoke(app, ["rules", "dtz001"])
    assert one.exit_code == 0
    assert "## Why is this bad?" in one.stdout
    assert runner.invoke(app, ["rules", "XYZ999"]).exit_code == 2


def test_migrate_diff_then_write(tmp_path):
    tree = _tree(tmp_path)
    refused = runner.invoke(app, ["migrate", str(tree), "--codemod", "aware-datetimes", "--write"])
    assert refused.exit_code == 2 and "--unsafe-fixes" in refused.stderr
    assert (tree / "app" / "a.py").read_text() == NAIVE
    diff = runner.invoke(app, ["migrate", "aware-datetimes", str(tree)])  # a diff is read-only
    assert diff.exit_code == 1
    assert "+stamp = datetime.now(timezone.utc)" in diff.stdout
    assert (tree / "app" / "a.py").read_text() == NAIVE  # dry run writes nothing
    wrote = runner.invoke(
        app, ["migrate", "aware-datetimes", str(tree), "--unsafe-fixes", "--write"]
    )
    assert wrote.exit_code == 0
    assert "datetime.now(timezone.utc)" in (tree / "app" / "a.py").read_text()
    again = runner.invoke(app, ["migrate", "aware-datetimes", str(tree), "--unsafe-fixes"])
    assert again.exit_code == 0 and again.stdout == ""


def test_migrate_unknown_codemod(tmp_path):
    result = runner.invoke(app, ["migrate", str(tmp_path), "--codemod", "nope"])
    assert result.exit_code == 2 and "unknown codemod" in result.stderr


def test_console_script_runs(tmp_path):
    tree = _tree(tmp_path)
    exe = Path(sys.executable).parent / "gathering-consolidate"
    proc = subprocess.run([str(exe), "audit", str(tree), "-q"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "DTZ001" in proc.stdout


def test_migrate_reports_unparsable_files_and_leaves_them(tmp_path):
    tree = _tree(tmp_path)
    (tree / "app" / "broken.py").write_text("def broken(:\n")
    (tree / "app" / "latin.py").write_bytes(b"x = '\xe9'\n")
    result = runner.invoke(
        app, ["migrate", "aware-datetimes", str(tree), "--unsafe-fixes", "--write"]
    )
    assert result.exit_code == 0  # reported, not fatal: the codemod did not need them
    assert "skipped app/broken.py: syntax error" in result.stderr
    assert "skipped app/latin.py: cannot decode: not valid UTF-8" in result.stderr
    assert (tree / "app" / "broken.py").read_text() == "def broken(:\n"
    assert "datetime.now(timezone.utc)" in (tree / "app" / "a.py").read_text()


def test_an_unexpected_error_exits_two(monkeypatch, capsys):
    from gathering_consolidate import cli

    def boom() -> None:
        raise RuntimeError("worker pool broke")

    monkeypatch.setattr(cli, "app", boom)
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    assert "internal error" in capsys.readouterr().err
