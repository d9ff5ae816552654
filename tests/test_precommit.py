"""The pre-commit hooks of `.pre-commit-hooks.yaml`, run by `pre-commit` itself against a temporary
git repository holding a copy of the fixture app.

The fast tests run the manifest's hooks as `repo: local` hooks (same id, entry, file types and
flags; the entry pointed at this checkout's `gathering-consolidate`, language `unsupported`), so
no hook environment is installed. The slow test installs the hook the way a user gets it:
`pre-commit try-repo` on this repository (a `language: python` environment built from it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gathering_consolidate.model import (
    AuditResult,
    FileOutcome,
    Finding,
    Location,
    Severity,
    Status,
)
from gathering_consolidate.precommit import module_name, restrict

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "fixtures" / "gathering_app"
MANIFEST = REPO / ".pre-commit-hooks.yaml"
BIN = Path(sys.executable).parent
TOOL = BIN / "gathering-consolidate"
PRE_COMMIT = BIN / "pre-commit"

HELPERS = "import time\n\n\ndef compute():\n    return 1\n"
ROUTES = (
    "from gathering.extra_helpers import compute\n\n\nasync def handler():\n    return compute()\n"
)


def _manifest() -> dict[str, dict]:
    return {hook["id"]: hook for hook in yaml.safe_load(MANIFEST.read_text())}


def _local_config(ids: list[str], manual: tuple[str, ...] = ()) -> str:
    """A `repo: local` configuration with the manifest's hooks `ids`; those in `manual` run only
    when asked for (`--hook-stage manual`), not on every commit."""
    hooks = []
    for hook_id in ids:
        hook = dict(_manifest()[hook_id])
        if hook_id in manual:
            hook["stages"] = ["manual"]
        assert hook["entry"].startswith("gathering-consolidate ")
        hook["entry"] = str(TOOL) + hook["entry"].removeprefix("gathering-consolidate")
        hook["language"] = "unsupported"
        hooks.append(hook)
    return yaml.safe_dump({"repos": [{"repo": "local", "hooks": hooks}]}, sort_keys=False)


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _git(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = _run(["git", *args], cwd, env)
    return done


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path_factory.mktemp("pre-commit-home")),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


@pytest.fixture(scope="module")
def shared_repo(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Path:
    """The fixture app in a git repository with the hooks installed and a warm audit cache
    (built once: the cache is per project folder, so the tests share the folder)."""
    root = tmp_path_factory.mktemp("precommit") / "repo"
    shutil.copytree(FIXTURE, root)
    (root / "gathering" / "extra_helpers.py").write_text(HELPERS)
    (root / "gathering" / "extra_routes.py").write_text(ROUTES)
    (root / ".pre-commit-config.yaml").write_text(
        _local_config(
            ["gathering-consolidate", "gathering-consolidate-fix", "gathering-consolidate-gate"],
            manual=("gathering-consolidate-fix", "gathering-consolidate-gate"),
        )
    )
    assert _git(root, env, "init", "-q").returncode == 0
    _git(root, env, "add", "-A")
    assert _git(root, env, "commit", "-q", "-m", "init", "--no-verify").returncode == 0
    installed = _run([str(PRE_COMMIT), "install"], root, env)
    assert installed.returncode == 0, installed.stderr
    warm = _run([str(TOOL), "audit", ".", "-q"], root, env)  # as an earlier audit or hook run
    assert warm.returncode == 1, warm.stderr
    return root


@pytest.fixture
def repo(shared_repo: Path, env: dict[str, str]) -> Iterator[Path]:
    """The shared repository, put back to its first commit (tree, index, untracked files)
    after each test."""
    head = _git(shared_repo, env, "rev-parse", "HEAD").stdout.strip()
    yield shared_repo
    _git(shared_repo, env, "reset", "-q", "--hard", head)
    _git(shared_repo, env, "clean", "-fdq")


def _commit(root: Path, env: dict[str, str], *paths: str) -> subprocess.CompletedProcess[str]:
    """`git commit` through the installed hook; git sends the hook's output to stderr, folded
    into `stdout` here."""
    _git(root, env, "add", *paths)
    done = _git(root, env, "commit", "-m", "change")
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout + done.stderr, "")


def _finding_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("gathering/")]


def test_manifest_is_valid_and_points_at_the_commands() -> None:
    done = subprocess.run(
        [str(PRE_COMMIT), "validate-manifest", str(MANIFEST)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    hooks = _manifest()
    check = hooks["gathering-consolidate"]
    assert check["entry"] == "gathering-consolidate audit --changed --quiet"
    assert check["types"] == ["python"] and check["require_serial"] is True
    assert check.get("pass_filenames", True) is True
    assert hooks["gathering-consolidate-fix"]["entry"].endswith("--changed --fix --quiet")
    gate = hooks["gathering-consolidate-gate"]
    assert gate["entry"] == "gathering-consolidate gate" and gate["pass_filenames"] is False
    for hook in hooks.values():
        assert hook["language"] == "python"


def test_check_hook_reports_the_changed_files_only(repo: Path, env: dict[str, str]) -> None:
    auth = repo / "gathering" / "api" / "auth.py"
    auth.write_text(auth.read_text() + "\n\ndef stamp_now():\n    return datetime.utcnow()\n")
    done = _commit(repo, env, "gathering/api/auth.py")
    assert done.returncode != 0, "the commit must be refused"
    lines = _finding_lines(done.stdout)
    assert any("DTZ001" in line and "stamp_now" not in line for line in lines)
    last = len(auth.read_text().splitlines())
    assert any(line.startswith(f"gathering/api/auth.py:{last}:") for line in lines)
    # Other files' own findings are not the committer's: none from the scheduler, say.
    assert not [line for line in lines if line.startswith("gathering/orchestration/")]
    assert {line.split(":", 1)[0] for line in lines} <= {
        "gathering/api/auth.py",
        *_cross_file_targets(lines),
    }


def _cross_file_targets(lines: list[str]) -> set[str]:
    return {line.split(":", 1)[0] for line in lines if "ASY00" in line or "EXC00" in line}


def test_cross_file_finding_in_an_unchanged_file_counts(repo: Path, env: dict[str, str]) -> None:
    helpers = repo / "gathering" / "extra_helpers.py"
    helpers.write_text(HELPERS.replace("    return 1", "    time.sleep(0.1)\n    return 1"))
    done = _commit(repo, env, "gathering/extra_helpers.py")
    assert done.returncode != 0
    lines = _finding_lines(done.stdout)
    assert any(
        line.startswith("gathering/extra_routes.py:5:") and "ASY001" in line for line in lines
    ), done.stdout


def test_clean_change_passes(repo: Path, env: dict[str, str]) -> None:
    (repo / "gathering" / "extra_helpers.py").write_text(
        HELPERS + "\n\ndef twice():\n    return compute() * 2\n"
    )
    done = _commit(repo, env, "gathering/extra_helpers.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Passed" in done.stdout


def test_baseline_in_the_configuration_applies(repo: Path, env: dict[str, str]) -> None:
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.gathering-consolidate]\nbaseline = "baseline.json"\n'
    )
    made = _run([str(TOOL), "audit", ".", "--update-baseline"], repo, env)
    assert made.returncode == 0, made.stderr
    _git(repo, env, "add", "pyproject.toml", "baseline.json")
    assert _git(repo, env, "commit", "-q", "-m", "baseline", "--no-verify").returncode == 0
    # Edits around baselined findings: lines move, nothing new.
    auth = repo / "gathering" / "api" / "auth.py"
    auth.write_text('"""Auth."""\n\n# moved down\n' + auth.read_text())
    done = _commit(repo, env, "gathering/api/auth.py")
    assert done.returncode == 0, done.stdout + done.stderr
    # One new finding fails, and only it is listed.
    auth.write_text(auth.read_text() + "\n\ndef stamp_now():\n    return datetime.utcnow()\n")
    done = _commit(repo, env, "gathering/api/auth.py")
    assert done.returncode != 0
    [line] = _finding_lines(done.stdout)
    assert "DTZ001" in line


def test_fix_hook_rewrites_the_changed_file(repo: Path, env: dict[str, str]) -> None:
    events = repo / "gathering" / "orchestration" / "events.py"
    before = events.read_text()
    events.write_text(before + "\n# touched\n")
    _git(repo, env, "add", "gathering/orchestration/events.py")
    done = _run(
        [
            str(PRE_COMMIT),
            "run",
            "gathering-consolidate-fix",
            "--hook-stage",
            "manual",
            "--files",
            "gathering/orchestration/events.py",
        ],
        repo,
        env,
    )
    assert done.returncode == 1
    assert "files were modified by this hook" in done.stdout
    assert "fixed gathering/orchestration/events.py (isolate-handlers)" in done.stdout
    assert "safe_handler" in events.read_text()
    assert (repo / "gathering" / "isolation.py").is_file()  # the helper it needs
    # Only the changed file was rewritten.
    status = _git(repo, env, "status", "--porcelain").stdout.splitlines()
    assert sorted(line[3:] for line in status) == [
        "gathering/isolation.py",
        "gathering/orchestration/events.py",
    ]


def test_gate_hook_runs_the_gate(repo: Path, env: dict[str, str]) -> None:
    done = _run(
        [str(PRE_COMMIT), "run", "gathering-consolidate-gate", "--hook-stage", "manual"],
        repo,
        env,
    )
    assert "gathering-consolidate gate" in done.stdout
    assert "No such command" not in done.stdout + done.stderr
    assert done.returncode in (0, 1), done.stdout + done.stderr


@pytest.mark.slow
def test_try_repo_installs_and_runs_the_hook(tmp_path: Path, env: dict[str, str]) -> None:
    """The hook as users install it: pre-commit builds a `language: python` environment from
    this repository (from PyPI and the local wheels) and runs it on the changed file."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURE, root)
    _git(root, env, "init", "-q")
    _git(root, env, "add", "-A")
    _git(root, env, "commit", "-q", "-m", "init", "--no-verify")
    auth = root / "gathering" / "api" / "auth.py"
    auth.write_text(auth.read_text() + "\n\ndef stamp_now():\n    return datetime.utcnow()\n")
    _git(root, env, "add", "-A")
    done = _run(
        [
            str(PRE_COMMIT),
            "try-repo",
            str(REPO),
            "gathering-consolidate",
            "--files",
            "gathering/api/auth.py",
        ],
        root,
        env,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "gathering/api/auth.py:" in done.stdout and "DTZ001" in done.stdout


def _evidence_finding(path: str, evidence: dict) -> Finding:
    return Finding(
        rule="ASY001",
        name="blocking-call-in-async",
        message="m",
        severity=Severity.HIGH,
        location=Location(path, 3, 0),
        symbol=module_name(path) + ".f",
        evidence=evidence,
        fingerprint=path,
    )


def test_restrict_keeps_changed_files_and_evidence_pointing_into_them() -> None:
    files = ["app/__init__.py", "app/db.py", "app/routes.py", "app/other.py", "app/dbx.py"]
    findings = [
        _evidence_finding("app/db.py", {}),  # in a changed file
        _evidence_finding("app/routes.py", {"chain": ["app.routes.f", "app.db.Repo.save"]}),
        _evidence_finding("app/other.py", {"raises": [{"via": "x() at app/db.py:12"}]}),
        _evidence_finding("app/other.py", {"unknown_calls": [{"path": "app/db.py"}]}),
        # Look-alikes that do not point into app/db.py:
        _evidence_finding("app/routes.py", {"chain": ["app.routes.g", "app.dbx.save"]}),
        _evidence_finding("app/routes.py", {"chain": ["app.routes.h", "app.helper"]}),
        _evidence_finding("app/other.py", {"via": "y() at app/db.pyc:3, lib/app/db.py:4"}),
        _evidence_finding("app/other.py", {}),
    ]
    result = AuditResult(
        root="/nonexistent",
        findings=tuple(findings),
        suppressed=(),
        files=(
            *(FileOutcome(p, Status.OK) for p in files),
            FileOutcome("app/broken.py", Status.FAILED, "syntax"),
        ),
        rules=("ASY001",),
    )
    kept = restrict(result, ["app/db.py"])
    assert kept.findings == tuple(findings[:4])
    assert kept.files == (FileOutcome("app/db.py", Status.OK),)  # others' outcomes do not count
    assert kept.exit_code == 1
    # A changed package __init__ owns only the names no module below it defines.
    init = restrict(result, ["app/__init__.py"])
    assert init.findings == (findings[5],)
