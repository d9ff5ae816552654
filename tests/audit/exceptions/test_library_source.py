"""EXC follows a call into an installed third-party package's own source (never importing it):
a wrapper library no catalogue names is resolved, and narrow-except uses what it raises."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_libsource import DBKIT, booby_trap, copy_install, make_venv

APP = """
    import dbkit


    def load(dsn, sql):
        try:
            return dbkit.connect(dsn).query(sql)
        except Exception:
            return None
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    monkeypatch.setenv("GATHERING_CONSOLIDATE_CACHE_DIR", str(tmp_path / "user-cache"))
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    venv = tmp_path / "venv"
    copy_install(make_venv(venv), DBKIT, "dbkit", "1.0")
    marker = tmp_path / "interpreter-was-run"
    booby_trap(venv, marker)
    root = tmp_path / "app"
    (root / "app" / "auth").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "0"\n')
    (root / "app" / "auth" / "store.py").write_text(textwrap.dedent(APP).lstrip())
    return root, venv, marker


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "gathering-consolidate"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def evidence(root: Path, *extra: str) -> dict:
    out = cli("audit", str(root), "--select", "EXC", "--no-cache", "-f", "json", *extra)
    assert out.returncode == 1, out.stderr
    (finding,) = json.loads(out.stdout)["findings"]
    return finding["evidence"]


def test_without_the_environment_the_wrapper_is_unknown_and_not_narrowed(project):
    root, _venv, _marker = project
    found = evidence(root)
    assert found["narrow_to"] is None
    assert "`dbkit.connect().query` has no exception mapping" in found["unresolved_calls"][0]


def test_with_the_environment_its_source_says_what_it_raises(project):
    root, venv, marker = project
    found = evidence(root, "--python", str(venv / "bin" / "python"))
    assert found["unresolved_calls"] == []
    assert set(found["narrow_to"]) == {"dbkit.errors.QueryError", "psycopg.Error"}
    vias = {r["type"]: r["via"] for r in found["raises"]}
    assert "library source dbkit 1.0" in vias["dbkit.errors.QueryError"]
    assert not marker.exists(), "the target's interpreter must never run"


def test_narrow_except_uses_the_library_source(project):
    root, venv, marker = project
    target = root / "app" / "auth" / "store.py"
    before = target.read_text()
    refused = cli("migrate", "narrow-except", str(root), "--tier", "2")
    assert refused.returncode == 0, refused.stderr
    assert target.read_text() == before
    written = cli(
        "migrate",
        "narrow-except",
        str(root),
        "--tier",
        "2",
        "--python",
        str(venv / "bin" / "python"),
        "--unsafe-fixes",
        "--write",
    )
    assert written.returncode == 0, written.stderr
    after = target.read_text()
    assert "except (dbkit.errors.QueryError, psycopg.Error):" in after
    assert "import psycopg" in after
    compile(after, str(target), "exec")
    assert not marker.exists()


def test_an_upgrade_of_the_library_is_not_served_from_the_cache(project, tmp_path):
    """The cached EXC results are keyed by the installed distributions' versions: after an
    upgrade that changes what the wrapper raises, a cached audit says the new thing."""
    import shutil

    root, venv, _marker = project
    python = str(venv / "bin" / "python")

    def narrowed() -> set[str]:
        out = cli("audit", str(root), "--select", "EXC", "-f", "json", "--python", python)
        assert out.returncode == 1, out.stderr
        (finding,) = json.loads(out.stdout)["findings"]
        return set(finding["evidence"]["narrow_to"])

    assert narrowed() == {"dbkit.errors.QueryError", "psycopg.Error"}
    assert narrowed() == {"dbkit.errors.QueryError", "psycopg.Error"}  # from the cache
    (site,) = (venv / "lib").glob("python3.*/site-packages")
    shutil.rmtree(site / "dbkit-1.0.dist-info")
    upgraded = {
        **DBKIT,
        "dbkit/client.py": DBKIT["dbkit/client.py"].replace(
            "raise QueryError(sql)", "raise LookupError(sql)"
        ),
    }
    copy_install(site, upgraded, "dbkit", "2.0")
    assert narrowed() == {"LookupError", "psycopg.Error"}
