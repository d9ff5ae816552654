"""A repeated `audit` on unchanged inputs is replayed without loading the command line; any
change to what it read, a command that writes, or an input too fresh to trust runs it again
(replay.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gathering_consolidate import replay, seal

CLI = Path(sys.executable).with_name("gathering-consolidate")
NAIVE = "from datetime import datetime\n\n\ndef stamp():\n    return datetime.now()\n"


def _settle() -> None:
    """Wait until what the test just wrote is older than the replay's racy window."""
    time.sleep(replay._RACY_NS / 1e9 + 0.1)


def _project(where: Path, pyproject: bool = True) -> Path:
    root = where / "project"
    (root / "pkg").mkdir(parents=True)
    if pyproject:
        (root / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n')
    (root / "a.py").write_text(NAIVE)
    (root / "pkg" / "b.py").write_text(NAIVE)
    return root


def _run(root: Path, cache: Path, *args: str, target: tuple[str, ...] = (".",)):
    """(exit code, standard output, whether it was replayed): a replayed run imports no typer,
    as the interpreter's own import log (on standard error) shows."""
    env = {**os.environ, seal.ENV_VAR: str(cache), "PYTHONPROFILEIMPORTTIME": "1"}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        [str(CLI), "audit", *target, *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    replayed = " typer" not in done.stderr and "gathering_consolidate.replay" in done.stderr
    return done.returncode, done.stdout, replayed


def _kept(cache: Path) -> list[Path]:
    folder = cache / "replay"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_a_repeated_audit_is_replayed_until_a_file_changes(tmp_path: Path):
    cache = tmp_path / "cache"
    root = _project(tmp_path)
    _settle()
    first = _run(root, cache, "-q")
    assert first[0] == 1 and "DTZ" in first[1] and not first[2]
    assert _kept(cache) == []  # a full audit: its result is not the one the run cache replays
    second = _run(root, cache, "-q")
    assert second[:2] == first[:2] and not second[2]  # the run cache answered: kept now
    assert len(_kept(cache)) == 1
    third = _run(root, cache, "-q")
    assert third == (first[0], first[1], True)

    (root / "a.py").write_text(NAIVE + "\n\ndef again():\n    return datetime.now()\n")
    fourth = _run(root, cache, "-q")
    assert not fourth[2]
    assert fourth[1].count("DTZ") == first[1].count("DTZ") + 1
    # a.py changed within the racy window of that run: nothing kept from it
    assert not _run(root, cache, "-q")[2]


def test_a_new_file_or_a_new_configuration_above_the_target_is_seen(tmp_path: Path):
    cache = tmp_path / "cache"
    outer = tmp_path / "outer"
    root = _project(outer, pyproject=False)
    _settle()
    _run(root, cache, "-q")
    kept = _run(root, cache, "-q")
    assert _run(root, cache, "-q") == (kept[0], kept[1], True)

    (root / "pkg" / "c.py").write_text(NAIVE)  # a new file in a listed folder
    added = _run(root, cache, "-q")
    assert not added[2] and "pkg/c.py" in added[1]

    _settle()
    _run(root, cache, "-q")
    assert _run(root, cache, "-q")[2]
    # A pyproject.toml appears above the target: the project root and configuration change,
    # though no file the command opened did.
    (outer / "pyproject.toml").write_text(
        '[project]\nname = "o"\nversion = "0"\n\n[tool.gathering-consolidate]\nselect = ["EXC"]\n'
    )
    moved = _run(root, cache, "-q")
    assert not moved[2] and "DTZ" not in moved[1]


def test_the_pre_commit_hook_command_is_replayed_until_any_project_file_changes(tmp_path: Path):
    """`audit --changed FILES` (the hook) reports on the changed files from the whole project:
    a change to another file of the project is an input too."""
    cache = tmp_path / "cache"
    root = _project(tmp_path)
    _settle()
    hook = ("--changed", "--quiet", "a.py")
    first = _run(root, cache, target=hook)
    assert first[0] == 1 and "a.py" in first[1] and "pkg/b.py" not in first[1]
    _run(root, cache, target=hook)
    assert _run(root, cache, target=hook) == (first[0], first[1], True)
    (root / "pkg" / "b.py").write_text("x = 1\n")  # not a changed file, but of the project
    assert not _run(root, cache, target=hook)[2]


def test_commands_that_write_or_change_something_are_never_kept(tmp_path: Path):
    cache = tmp_path / "cache"
    root = _project(tmp_path)
    _settle()
    for _ in range(3):
        _run(root, cache, "-q", "-o", str(tmp_path / "report.txt"))
        _run(root, cache, "--no-cache", "-q")
        _run(root, cache, "-f", "github")
    assert _kept(cache) == []


def test_a_tampered_entry_is_not_replayed(tmp_path: Path):
    cache = tmp_path / "cache"
    root = _project(tmp_path)
    _settle()
    _run(root, cache, "-f", "json")
    expected = _run(root, cache, "-f", "json")
    (entry,) = _kept(cache)
    data = bytearray(entry.read_bytes())
    data[-5] ^= 0xFF  # inside the output it would print
    entry.write_bytes(bytes(data))
    again = _run(root, cache, "-f", "json")
    assert again == (expected[0], expected[1], False)


@pytest.mark.parametrize(
    "argv",
    [
        ["audit"],
        ["audit", "."],
        ["audit", "src", "-q"],
        ["audit", ".", "--format", "json", "--select", "EXC,ASY"],
        ["audit", ".", "--format=sarif", "--ignore=DTZ", "-j", "2"],
        ["audit", ".", "--baseline", "base.json", "--quiet"],
        ["audit", "--changed", "--quiet", "a.py", "pkg/b.py"],
    ],
)
def test_plain_audits_may_be_replayed(argv, monkeypatch):
    monkeypatch.setattr(os, "isatty", lambda fd: False)
    assert replay.Command.of(argv) is not None


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["migrate", "narrow-except", "."],
        ["audit", ".", "-o", "out.txt"],
        ["audit", ".", "--output=out.txt"],
        ["audit", ".", "--fix"],
        ["audit", ".", "--no-cache"],
        ["audit", ".", "--update-baseline"],
        ["audit", ".", "--sarif-file", "x.sarif"],
        ["audit", ".", "--github"],
        ["audit", ".", "--python", ".venv"],  # looked at with stat, which no audit event shows
        ["audit", ".", "-f", "github"],
        ["audit", ".", "--format=github"],
        ["audit", ".", "-qf", "json"],  # combined short options: not parsed here, so not kept
        ["audit", ".", "-q=1"],
        ["audit", ".", "--select"],  # a value missing
        ["audit", ".", "--", "-weird-name"],
    ],
)
def test_other_commands_are_not_replayed(argv, monkeypatch):
    monkeypatch.setattr(os, "isatty", lambda fd: False)
    assert replay.Command.of(argv) is None


def test_a_terminal_is_never_replayed_to(monkeypatch):
    monkeypatch.setattr(os, "isatty", lambda fd: fd == 1)
    assert replay.Command.of(["audit", "."]) is None


def test_the_command_key_covers_the_environment_and_the_working_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "isatty", lambda fd: False)
    monkeypatch.chdir(tmp_path)
    base = replay.Command.of(["audit", "."])
    monkeypatch.setenv("FORCE_COLOR", "1")
    coloured = replay.Command.of(["audit", "."])
    monkeypatch.setenv("OLDPWD", "/somewhere")  # describes the shell only
    assert replay.Command.of(["audit", "."]).key == coloured.key
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    elsewhere = replay.Command.of(["audit", "."])
    assert len({base.key, coloured.key, elsewhere.key}) == 3
