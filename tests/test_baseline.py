"""The baseline ratchet (`gathering_consolidate.baseline`, `audit --baseline`): count-aware,
line-free matching that survives edits around a finding, reformatting, moved functions and
renamed files, and says what is new, fixed and stale."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gathering_consolidate.baseline import (
    MOVED,
    REFORMATTED,
    BaselineError,
    compare,
    load_baseline,
    write_baseline,
)
from gathering_consolidate.project import audit

JOBS = """\
from datetime import datetime


def helper():
    return 1


def stamp(job):
    job.started = datetime.utcnow()
    return job
"""


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "proj"\n')
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def _audit(root: Path, target: Path | None = None):
    return audit(target or root, select=["DTZ"], cache=False, jobs=1)


def _baselined(tmp_path: Path, files: dict[str, str]) -> tuple[Path, Path]:
    root = _project(tmp_path, files)
    result = _audit(root)
    assert [f.rule for f in result.findings] == ["DTZ001"]
    path = root / "baseline.json"
    write_baseline(result, path)
    return root, path


def test_written_baseline_is_sorted_json_without_timestamps(tmp_path: Path) -> None:
    root, path = _baselined(tmp_path, {"app/jobs.py": JOBS})
    document = json.loads(path.read_text())
    assert document["schema"] == "gathering-consolidate/baseline"
    assert document["version"] == 1
    [entry] = document["findings"]
    assert entry["rule"] == "DTZ001"
    assert entry["path"] == "app/jobs.py"
    assert entry["symbol"] == "app.jobs.stamp"
    assert entry["line"] == 9 and entry["code"] and entry["fingerprint"]
    assert not any("time" in key for key in document)
    # The same tree gives the same bytes.
    before = path.read_bytes()
    write_baseline(_audit(root), path)
    assert path.read_bytes() == before


def test_unchanged_tree_is_fully_baselined(tmp_path: Path) -> None:
    root, path = _baselined(tmp_path, {"app/jobs.py": JOBS})
    diff = compare(_audit(root), load_baseline(path))
    assert diff.new == [] and len(diff.baselined) == 1
    assert diff.fixed == [] and diff.stale == [] and diff.passed


def test_edits_around_a_baselined_finding_keep_it_baselined(tmp_path: Path) -> None:
    root, path = _baselined(tmp_path, {"app/jobs.py": JOBS})
    jobs = root / "app" / "jobs.py"
    edited = JOBS.replace(
        "def helper():\n    return 1\n",
        "import os\n\n\ndef helper():\n    # a new comment\n    value = os.getcwd()\n"
        "    return value\n\n\ndef another():\n    return 2\n",
    ).replace("    return job\n", "    job.count += 1\n    return job\n")
    jobs.write_text(edited)
    result = _audit(root)
    [finding] = result.findings
    assert finding.location.line != 9  # it moved down the file
    diff = compare(result, load_baseline(path))
    assert diff.new == [] and diff.baselined == [finding]
    assert diff.matches[0].how == "fingerprint"
    assert diff.stale == []


def test_a_second_identical_finding_in_the_same_function_is_new(tmp_path: Path) -> None:
    root, path = _baselined(tmp_path, {"app/jobs.py": JOBS})
    jobs = root / "app" / "jobs.py"
    jobs.write_text(
        JOBS.replace("    return job\n", "    job.started = datetime.utcnow()\n    return job\n")
    )
    result = _audit(root)
    assert len(result.findings) == 2
    assert result.findings[0].fingerprint == result.findings[1].fingerprint  # identical twins
    diff = compare(result, load_baseline(path))
    assert len(diff.baselined) == 1 and len(diff.new) == 1
    assert diff.new[0].location.line == 10  # the twin after the baselined one
    assert not diff.passed


def test_reformatted_code_stays_baselined_as_stale(tmp_path: Path) -> None:
    root, path = _baselined(tmp_path, {"app/jobs.py": JOBS})
    jobs = root / "app" / "jobs.py"
    # Rewrapped as a formatter would (the whitespace inside the call changes the fingerprint).
    jobs.write_text(
        JOBS.replace(
            "    job.started = datetime.utcnow()\n",
            "    job.started = (\n        datetime.utcnow(\n        )\n    )  # reformatted\n",
        )
    )
    result = _audit(root)
    baseline = load_baseline(path)
    assert result.findings[0].fingerprint != baseline.entries[0].fingerprint
    diff = compare(result, baseline)
    assert diff.new == [] and len(diff.baselined) == 1
    assert diff.matches[0].how == REFORMATTED
    assert diff.stale == list(baseline.entries)  # refresh with --update-baseline


def test_function_moved_within_the_file_stays_baselined(tmp_path: Path) -> None:
    root, path = _baselined(tmp_path, {"app/jobs.py": JOBS})
    jobs = root / "app" / "jobs.py"
    stamp = "def stamp(job):\n    job.started = datetime.utcnow()\n    return job\n"
    moved = JOBS.replace("\n\n" + stamp, "\n")
    moved = moved.replace("def helper():", stamp + "\n\ndef helper():")
    jobs.write_text(moved)
    result = _audit(root)
    assert result.findings[0].location.line == 5
    diff = compare(result, load_baseline(path))
    assert diff.new == [] and diff.matches[0].how == "fingerprint"


def test_renamed_file_stays_baselined(tmp_path: Path) -> None:
    root, path = _baselined(tmp_path, {"app/jobs.py": JOBS})
    (root / "app" / "jobs.py").rename(root / "app" / "tasks.py")
    result = _audit(root)
    [finding] = result.findings
    assert finding.location.path == "app/tasks.py"
    diff = compare(result, load_baseline(path))
    assert diff.new == [] and diff.baselined == [finding]
    assert diff.matches[0].how == MOVED
    assert [e.path for e in diff.stale] == ["app/jobs.py"]
    assert diff.fixed == []


def test_renamed_file_does_not_cover_a_different_function(tmp_path: Path) -> None:
    root, path = _baselined(tmp_path, {"app/jobs.py": JOBS})
    (root / "app" / "jobs.py").unlink()
    (root / "app" / "tasks.py").write_text(JOBS.replace("def stamp(", "def touch("))
    diff = compare(_audit(root), load_baseline(path))
    assert len(diff.new) == 1 and [e.path for e in diff.fixed] == ["app/jobs.py"]


def test_fixed_finding_and_unknown_rule(tmp_path: Path) -> None:
    root, path = _baselined(tmp_path, {"app/jobs.py": JOBS})
    document = json.loads(path.read_text())
    document["findings"].append(
        {"rule": "XYZ999", "path": "app/jobs.py", "symbol": "app.jobs.x", "fingerprint": "00"}
    )
    path.write_text(json.dumps(document))
    jobs = root / "app" / "jobs.py"
    jobs.write_text(
        JOBS.replace("datetime.utcnow()", "datetime.now(UTC)").replace(
            "import datetime", "import UTC, datetime"
        )
    )
    diff = compare(_audit(root), load_baseline(path))
    assert diff.new == [] and diff.baselined == []
    assert [e.rule for e in diff.fixed] == ["DTZ001"]
    assert [e.rule for e in diff.stale] == ["XYZ999"]


def test_partial_audit_leaves_other_entries_out_of_scope_and_keeps_them(tmp_path: Path) -> None:
    files = {"app/jobs.py": JOBS, "lib/other.py": JOBS.replace("stamp", "mark")}
    root = _project(tmp_path, files)
    path = root / "baseline.json"
    write_baseline(_audit(root), path)
    assert len(load_baseline(path)) == 2
    partial = _audit(root, root / "app")
    diff = compare(partial, load_baseline(path))
    assert diff.new == [] and len(diff.baselined) == 1
    assert diff.fixed == [] and [e.path for e in diff.out_of_scope] == ["lib/other.py"]
    # Updating from the partial audit keeps what it could not see.
    write_baseline(partial, path)
    assert sorted(e.path for e in load_baseline(path).entries) == ["app/jobs.py", "lib/other.py"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{not json", "not valid JSON"),
        ('{"schema": "other"}', "not a gathering-consolidate baseline"),
        ('{"schema": "gathering-consolidate/baseline", "version": 99}', "newer"),
        (
            '{"schema": "gathering-consolidate/baseline", "version": 1, "findings": [{}]}',
            "entry 0 is malformed",
        ),
    ],
)
def test_bad_baseline_files(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "b.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BaselineError, match=message):
        load_baseline(path)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gathering_consolidate.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_update_then_ratchet(tmp_path: Path) -> None:
    root = _project(tmp_path, {"app/jobs.py": JOBS})
    missing = _cli("audit", ".", "--select", "DTZ", "--baseline", "base.json", cwd=root)
    assert missing.returncode == 2 and "--update-baseline" in missing.stderr
    made = _cli(
        "audit", ".", "--select", "DTZ", "--baseline", "base.json", "--update-baseline", cwd=root
    )
    assert made.returncode == 0, made.stderr
    assert "1 finding" in made.stderr and (root / "base.json").exists()
    clean = _cli("audit", ".", "--select", "DTZ", "--baseline", "base.json", cwd=root)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 new, 1 baselined, 0 fixed, 0 stale" in clean.stdout
    jobs = root / "app" / "jobs.py"
    jobs.write_text(JOBS + "\n\ndef again():\n    return datetime.utcnow()\n")
    worse = _cli("audit", ".", "--select", "DTZ", "--baseline", "base.json", "-f", "json", cwd=root)
    assert worse.returncode == 1
    document = json.loads(worse.stdout)
    assert [f["symbol"] for f in document["findings"]] == ["app.jobs.again"]
    assert document["baseline"]["summary"] == {
        "new": 1,
        "baselined": 1,
        "fixed": 0,
        "stale": 0,
        "out_of_scope": 0,
    }
