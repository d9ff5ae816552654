"""The main job (`gathering-consolidate run`) on a small real project: the user's tree is never
touched, the stages run and report, a failing stage does not stop the others, the outputs are
written and a second run into the same folder replaces the first."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gathering_consolidate import mainjob
from tests.conftest import REPO

SMALL_FILES = {
    "pyproject.toml": """
        [project]
        name = "smallapp"
        version = "0.1.0"
        requires-python = ">=3.11"

        [tool.ruff.lint]
        select = ["E", "F"]
        """,
    "smallapp/__init__.py": "",
    "smallapp/store.py": '''
        """A small app with a few of the patterns a consolidation fixes."""

        import json
        import logging
        from datetime import datetime

        logger = logging.getLogger(__name__)


        def stamp():
            return datetime.utcnow()


        def load(path):
            try:
                with open(path, encoding="utf-8") as fh:
                    return json.load(fh)
            except Exception:
                return None


        def find(cursor, name):
            cursor.execute(f"SELECT * FROM users WHERE name = '{name}'")
            return cursor.fetchall()
        ''',
    "smallapp/auth.py": '''
        """Token checks."""

        import jwt


        def user_id(token, key):
            try:
                return jwt.decode(token, key, algorithms=["HS256"])["sub"]
            except Exception:
                return None
        ''',
}


def make_small_project(root: Path) -> Path:
    """A real (small) project with findings several codemods fix."""
    for rel, text in SMALL_FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def small_run(tmp: Path, **options) -> tuple[Path, mainjob.RunResult, list]:
    project = make_small_project(tmp / "smallapp")
    events: list[mainjob.ProgressEvent] = []
    result = mainjob.run_job(
        mainjob.RunOptions(target=project, out=tmp / "out", skip_verify=True, **options),
        events.append,
    )
    return project, result, events


@pytest.fixture(scope="module")
def unsafe_run(tmp_path_factory) -> tuple[Path, mainjob.RunResult, list, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("run")
    project = make_small_project(tmp / "smallapp")
    digest = tree_digest(project)
    events: list[mainjob.ProgressEvent] = []
    result = mainjob.run_job(
        mainjob.RunOptions(project, tmp / "out", unsafe_fixes=True, skip_verify=True),
        events.append,
    )
    mainjob.write_outputs(result)
    return project, result, events, digest


def test_the_users_tree_is_never_touched(unsafe_run):
    project, result, _events, digest = unsafe_run
    assert tree_digest(project) == digest
    after = Path(result.after_dir)
    assert "datetime.now(timezone.utc)" in (after / "smallapp/store.py").read_text()
    assert "utcnow" in (Path(result.before_dir) / "smallapp/store.py").read_text()


def test_every_stage_reports_and_progress_follows_it(unsafe_run):
    _project, result, events, _digest = unsafe_run
    ids = [s.id for s in result.stages]
    assert ids == [s.id for s in mainjob.STAGES]
    by_id = {s.id: s for s in result.stages}
    for stage_id in ("copy", "audit-before", "codemods", "audit-after"):
        assert by_id[stage_id].status == "ok", by_id[stage_id]
    for stage_id in ("verify-before", "verify-after"):
        assert by_id[stage_id].status == "skipped"
        assert by_id[stage_id].summary == "--skip-verify"
    starts = [e.stage for e in events if e.kind == "start"]
    ends = [(e.stage, e.status) for e in events if e.kind == "end"]
    assert starts == ids
    assert ends == [(s.id, s.status) for s in result.stages]
    assert any(e.kind == "step" and "aware-datetimes" in e.message for e in events)


def test_unsafe_codemods_applied_and_findings_go_down(unsafe_run):
    _project, result, _events, _digest = unsafe_run
    codemods = {c["id"]: c for c in result.stage("codemods").data["codemods"]}
    assert codemods["aware-datetimes"]["status"] == "applied"
    assert codemods["parameterise-sql"]["status"] == "applied"
    assert codemods["aware-datetimes"]["diff_file"] == "diffs/aware-datetimes.diff"
    out = Path(result.options.out).resolve()
    assert (
        "+    return datetime.now(timezone.utc)" in (out / "diffs/aware-datetimes.diff").read_text()
    )
    before = result.stage("audit-before").data["by_family"]
    after = result.stage("audit-after").data["by_family"]
    assert before.get("DTZ", 0) >= 1 and after.get("DTZ", 0) == 0
    assert before.get("SQL", 0) >= 1 and after.get("SQL", 0) < before["SQL"]
    # The audit JSON of each side is kept beside the report.
    document = json.loads((out / "audit-after.json").read_text())
    assert document["summary"]["findings"] == result.stage("audit-after").data["findings"]


def test_outputs_written_and_result_round_trips(unsafe_run):
    _project, result, _events, _digest = unsafe_run
    out = Path(result.options.out).resolve()
    document = mainjob.load_result(out / "result.json")
    assert document == json.loads(json.dumps(result.to_dict()))
    failed = any(
        s["status"] == "error" or (s["status"] == "failed" and s["id"] != "verify-before")
        for s in document["stages"]
    )
    assert document["exit_code"] == (1 if failed else 0)
    assert (out / "report.md").read_text().startswith("# Consolidation report: smallapp")
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert (out / ".gitignore").read_text().splitlines()[-1] == "*"
    assert document["commands"][0].startswith("gathering-consolidate run ")
    assert "--unsafe-fixes" in document["commands"][0]
    # Stage by stage: each applied codemod, in the order the run applied them.
    applied = [
        c["id"] for c in result.stage("codemods").data["codemods"] if c["status"] == "applied"
    ]
    replayed = [
        line.split()[2]
        for line in document["commands"]
        if line.startswith("gathering-consolidate migrate ")
    ]
    assert [c for c in replayed if c in applied] == applied and applied


def test_without_unsafe_fixes_unsafe_codemods_are_only_proposed(tmp_path):
    project, result, _events = small_run(tmp_path)
    codemods = {c["id"]: c for c in result.stage("codemods").data["codemods"]}
    assert codemods["aware-datetimes"]["status"] == "proposed"
    assert codemods["aware-datetimes"]["diff_file"] == "diffs/aware-datetimes.proposed.diff"
    assert "utcnow" in (Path(result.after_dir) / "smallapp/store.py").read_text()
    # lint-guard is safe: applied on the copy, never on the project.
    assert codemods["lint-guard"]["status"] == "applied"
    assert "BLE001" in (Path(result.after_dir) / "pyproject.toml").read_text()
    assert "BLE001" not in (project / "pyproject.toml").read_text()


def test_a_failing_stage_is_reported_and_the_others_run(tmp_path):
    project = make_small_project(tmp_path / "smallapp")
    with (project / "pyproject.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[tool.gathering-consolidate]\nselect = ["NOPE999"]\n')
    result = mainjob.run_job(mainjob.RunOptions(project, tmp_path / "out", skip_verify=True))
    by_id = {s.id: s for s in result.stages}
    assert by_id["copy"].status == "ok"
    assert by_id["audit-before"].status == "error"
    assert "NOPE999" in by_id["audit-before"].summary
    assert by_id["codemods"].status == "skipped"
    assert by_id["codemods"].summary == "needs stage `audit-before`, which ended in an error"
    assert by_id["audit-after"].status == "error"  # it still ran
    assert result.exit_code == 1
    paths = mainjob.write_outputs(result)
    assert "ConfigError" in paths.report_md.read_text()


def test_output_folder_rules(tmp_path):
    project = make_small_project(tmp_path / "smallapp")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(mainjob.RunError, match="not empty"):
        mainjob.run_job(mainjob.RunOptions(project, busy, skip_verify=True))
    assert (busy / "notes.txt").read_text() == "mine"
    with pytest.raises(mainjob.RunError, match="must not be the project"):
        mainjob.run_job(mainjob.RunOptions(project, project, skip_verify=True))
    with pytest.raises(mainjob.RunError, match=r"no pyproject\.toml"):
        bare = tmp_path / "bare"
        bare.mkdir()
        mainjob.run_job(mainjob.RunOptions(bare, tmp_path / "o2", skip_verify=True))


def test_out_inside_the_project_is_left_out_of_the_copy_and_a_rerun_replaces_it(tmp_path):
    project = make_small_project(tmp_path / "smallapp")
    out = project / "consolidation"
    options = mainjob.RunOptions(project, out, skip_verify=True)
    first = mainjob.run_job(options)
    mainjob.write_outputs(first)
    second = mainjob.run_job(options)
    assert second.stage("copy").status == "ok"
    assert not (out / "after" / "consolidation").exists()
    assert (
        second.stage("audit-before").data["findings"]
        == first.stage("audit-before").data["findings"]
    )


def test_cli_run_renders_progress_and_exit_code(tmp_path):
    project = make_small_project(tmp_path / "smallapp")
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "gathering_consolidate.cli", "run", str(project),
         "--out", str(tmp_path / "out"), "--skip-verify"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "[1/8] Copy the project" in proc.stderr
    assert "report:" in proc.stderr and "report.html" in proc.stderr
    assert re.search(r"^findings \d+ -> \d+$", proc.stderr, re.M), proc.stderr
    assert (tmp_path / "out" / "report.md").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "gathering_consolidate.cli", "run", str(project), "--app", "nocolon"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "expected MODULE:ATTR" in bad.stderr


def test_an_unreachable_database_errors_its_stages_and_the_rest_run(tmp_path):
    project = make_small_project(tmp_path / "smallapp")
    (project / "schema").mkdir()
    shutil.copy(REPO / "fixtures/gathering_app/schema/001_schemas.sql", project / "schema")
    events: list[mainjob.ProgressEvent] = []
    result = mainjob.run_job(
        mainjob.RunOptions(
            project,
            tmp_path / "out",
            app="smallapp.api:app",
            database_url="postgresql://postgres:secret@127.0.0.1:1/nothing",
        ),
        events.append,
    )
    by_id = {s.id: s for s in result.stages}
    for stage_id in ("schema", "verify-before", "verify-after"):
        assert by_id[stage_id].status == "error", by_id[stage_id]
        assert "DatabaseError" in by_id[stage_id].summary
        assert "secret" not in by_id[stage_id].summary  # the password never shows
    # Tried once: the later stages get the same error, not a second attempt's.
    assert by_id["verify-after"].summary == by_id["schema"].summary
    for stage_id in ("copy", "audit-before", "codemods", "audit-after"):
        assert by_id[stage_id].status == "ok"
    assert result.exit_code == 1
    assert "secret" not in json.dumps(result.to_dict())


def test_fifos_are_left_out_of_the_copy_and_symlinks_are_not_followed(tmp_path):
    project = make_small_project(tmp_path / "smallapp")
    os.mkfifo(project / "smallapp" / "pipe")  # copying it would block on open()
    outside = tmp_path / "secret.py"
    outside.write_text("TOKEN = 'x'\n")
    (project / "smallapp" / "linked.py").symlink_to(outside)
    result = mainjob.run_job(mainjob.RunOptions(project, tmp_path / "out", skip_verify=True))
    copy = result.stage("copy")
    assert copy.status == "ok"
    assert copy.data["not_copied"] == ["smallapp/pipe"]
    assert "1 FIFOs, sockets or devices left out" in copy.summary
    linked = Path(result.after_dir) / "smallapp" / "linked.py"
    assert linked.is_symlink() and os.readlink(linked) == str(outside)
    assert not (Path(result.after_dir) / "smallapp" / "pipe").exists()
