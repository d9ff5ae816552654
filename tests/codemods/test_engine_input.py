"""The codemod engine on bad input (issue 12): files are read as Python reads them and written
back in their own encoding and line ends; a file that does not parse stops nothing; a failed
analysis never reads as "nothing to change"; the command line is usable (a diff without
--unsafe-fixes, bracketed text kept, whole paths at 80 columns); no password in the generated
async service's repr."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gathering_consolidate.audit.base import dedent
from gathering_consolidate.audit.datetimes.naive_utcnow import NaiveUtcnow
from gathering_consolidate.cli import app
from gathering_consolidate.codemods.async_db import AsyncDb
from gathering_consolidate.codemods.base import CodemodProject, Refused, refusal_category
from gathering_consolidate.codemods.engine import WriteError, apply, plan_migration, run_codemod
from gathering_consolidate.config import load_config
from tests.conftest import REPO

runner = CliRunner()
PYPROJECT = '[project]\nname = "x"\nversion = "0"\n'
AWARE = "datetime.now(timezone.utc)"


def _project(tmp_path: Path, files: dict[str, bytes]) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    for relpath, data in files.items():
        target = tmp_path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return tmp_path


def _migrate(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["migrate", *args], env=env)


def _leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if p.name.endswith((".tmp", ".bak"))]


# -- encodings and line ends -------------------------------------------------------------------
def test_crlf_file_is_migrated_once_and_keeps_crlf(tmp_path):
    """The issue's reproduction: exit 0, CRLF kept (on the changed and added lines too), and a
    second run changes nothing."""
    root = _project(
        tmp_path, {"app/a.py": b"from datetime import datetime\r\nx = datetime.utcnow()\r\n"}
    )
    result = _migrate("aware-datetimes", str(root), "--unsafe-fixes", "--write")
    assert result.exit_code == 0, result.output
    data = (root / "app/a.py").read_bytes()
    assert AWARE.encode() in data
    assert data.count(b"\r\n") == data.count(b"\n") == 2
    again = _migrate("aware-datetimes", str(root), "--unsafe-fixes", "--write")
    assert again.exit_code == 0, again.output
    assert (root / "app/a.py").read_bytes() == data
    dry = _migrate("aware-datetimes", str(root))
    assert (dry.exit_code, dry.stdout) == (0, "")


def test_lines_added_to_a_crlf_file_are_crlf(tmp_path):
    """isolate-handlers adds an import line (and writes its helper module, LF): the import in the
    CRLF file ends in CRLF like every other line."""
    source = dedent("""
        import logging

        log = logging.getLogger(__name__)


        class Bus:
            def __init__(self):
                self.subscribers = []

            def publish(self, event):
                for handler in self.subscribers:
                    try:
                        handler(event)
                    except Exception:
                        log.exception("handler failed")
    """)
    root = _project(
        tmp_path,
        {"app/__init__.py": b"", "app/bus.py": source.replace("\n", "\r\n").encode()},
    )
    result = _migrate("isolate-handlers", str(root), "--write")
    assert result.exit_code == 0, result.output
    data = (root / "app/bus.py").read_bytes()
    assert data != source.replace("\n", "\r\n").encode(), "isolate-handlers changed nothing"
    assert b"safe_handler" in data
    assert data.count(b"\n") == data.count(b"\r\n")


def test_bom_is_kept(tmp_path):
    bom = b"\xef\xbb\xbf"
    root = _project(
        tmp_path, {"app/a.py": bom + b"from datetime import datetime\nx = datetime.utcnow()\n"}
    )
    result = _migrate("aware-datetimes", str(root), "--unsafe-fixes", "--write")
    assert result.exit_code == 0, result.output
    data = (root / "app/a.py").read_bytes()
    assert data.startswith(bom) and data.count(bom) == 1
    assert AWARE.encode() in data


LATIN1 = b'# -*- coding: latin-1 -*-\nfrom datetime import datetime\nname = "caf\xe9"\n'


def test_latin1_with_a_cookie_stays_latin1(tmp_path):
    root = _project(tmp_path, {"app/a.py": LATIN1 + b"x = datetime.utcnow()\n"})
    result = _migrate("aware-datetimes", str(root), "--unsafe-fixes", "--write")
    assert result.exit_code == 0, result.output
    data = (root / "app/a.py").read_bytes()
    assert b'"caf\xe9"' in data and AWARE.encode() in data  # still latin-1, not UTF-8
    assert _leftovers(root) == []


def test_a_change_the_encoding_cannot_hold_fails_and_writes_nothing(tmp_path):
    """A latin-1 file whose new text has a character latin-1 lacks: a per-file failure (exit 2),
    the file untouched, no temporary file left; other files are still migrated."""
    original = LATIN1 + b"x = 1\n"
    root = _project(
        tmp_path,
        {
            "app/a.py": original,
            "app/b.py": b"from datetime import datetime\nx = datetime.utcnow()\n",
        },
    )
    project, skipped = plan_project(root)
    assert not skipped
    text = project.files["app/a.py"]
    codemod = _Replace({"app/a.py": text.replace("x = 1", 'x = "\u20ac"')})
    plan = run_codemod(codemod, project)
    assert [f.path for f in plan.failures] == ["app/a.py"]
    assert "(iso-8859-1) cannot hold" in plan.failures[0].reason  # latin-1, as Python names it
    apply(plan)
    assert (root / "app/a.py").read_bytes() == original
    assert _leftovers(root) == []


def plan_project(root: Path):
    from gathering_consolidate.codemods.engine import load_project

    return load_project(root)


class _Replace:
    """A stand-in codemod that rewrites given files to given texts."""

    id = "replace-text"
    from gathering_consolidate.model import Applicability as _A

    applicability = _A.SAFE

    def __init__(self, texts: dict[str, str]):
        self.texts = texts

    def run(self, project: CodemodProject):
        from gathering_consolidate.codemods.base import Changed

        for path, after in self.texts.items():
            yield Changed(path, project.files[path], after)


# -- all or nothing ----------------------------------------------------------------------------
def test_a_read_only_file_under_write_fails_cleanly_and_writes_nothing(tmp_path):
    naive = b"from datetime import datetime\nx = datetime.utcnow()\n"
    root = _project(tmp_path, {"app/a.py": naive, "app/b.py": naive, "app/c.py": naive})
    locked = root / "app/b.py"
    locked.chmod(0o444)
    result = _migrate("aware-datetimes", str(root), "--unsafe-fixes", "--write")
    assert result.exit_code == 2
    assert "app/b.py is read-only" in result.stderr and "nothing written" in result.stderr
    for name in ("a.py", "b.py", "c.py"):  # all or nothing: the writable ones are untouched
        assert (root / "app" / name).read_bytes() == naive, name
    assert stat.S_IMODE(locked.stat().st_mode) == 0o444
    assert _leftovers(root) == []


def test_a_file_changed_since_it_was_read_is_not_overwritten(tmp_path):
    naive = b"from datetime import datetime\nx = datetime.utcnow()\n"
    root = _project(tmp_path, {"app/a.py": naive})
    plan = plan_migration(root, "aware-datetimes")
    (root / "app/a.py").write_bytes(naive + b"y = 2\n")
    with pytest.raises(WriteError, match="changed since it was read"):
        apply(plan)
    assert (root / "app/a.py").read_bytes() == naive + b"y = 2\n"


def test_a_file_removed_since_it_was_read_stops_the_write(tmp_path):
    naive = b"from datetime import datetime\nx = datetime.utcnow()\n"
    root = _project(tmp_path, {"app/a.py": naive, "app/b.py": naive, "app/empty.py": b""})
    plan = plan_migration(root, "aware-datetimes")
    assert {c.path for c in plan.changes} == {"app/a.py", "app/b.py"}
    (root / "app/b.py").unlink()
    with pytest.raises(WriteError, match=r"app/b\.py was removed since it was read"):
        apply(plan)
    assert (root / "app/a.py").read_bytes() == naive
    assert not (root / "app/b.py").exists()


def test_mixed_line_ends_are_kept_as_read(tmp_path):
    mixed = b"from datetime import datetime\r\ny = 1\nx = datetime.utcnow()\r\n"
    root = _project(tmp_path, {"app/a.py": mixed})
    result = _migrate("aware-datetimes", str(root), "--unsafe-fixes", "--write")
    assert result.exit_code == 0, result.output
    data = (root / "app/a.py").read_bytes()
    assert b"\r\ny = 1\nx = " in data and data.endswith(b"(timezone.utc)\r\n")


def test_a_target_swapped_for_a_symlink_is_refused(tmp_path):
    """Planned on a regular file that is a symlink by the time it is written: nothing is
    written through it."""
    naive = b"from datetime import datetime\nx = datetime.utcnow()\n"
    outside = tmp_path / "outside.py"
    outside.write_bytes(naive)
    root = _project(tmp_path / "project", {"app/a.py": naive})
    plan = plan_migration(root, "aware-datetimes")
    assert plan.changes
    (root / "app/a.py").unlink()
    os.symlink(outside, root / "app/a.py")
    with pytest.raises(WriteError, match="symbolic link"):
        apply(plan)
    assert outside.read_bytes() == naive
    assert (root / "app/a.py").is_symlink()
    assert _leftovers(tmp_path) == []


# -- failures never read as success; unparseable files stop nothing ------------------------------
def test_an_internal_analysis_error_fails_the_codemod(tmp_path, monkeypatch):
    def boom(self, ctx):
        raise RuntimeError("injected analysis failure")

    monkeypatch.setattr(NaiveUtcnow, "check", boom)
    root = _project(
        tmp_path, {"app/a.py": b"from datetime import datetime\nx = datetime.utcnow()\n"}
    )
    result = _migrate("aware-datetimes", str(root))
    assert result.exit_code == 2, result.output
    assert "injected analysis failure" in result.stderr
    assert "failed <project>: aware-datetimes cannot run" in result.stderr


def test_an_unparseable_unrelated_file_does_not_stop_a_codemod(tmp_path):
    root = _project(
        tmp_path,
        {
            "app/a.py": b"from datetime import datetime\nx = datetime.utcnow()\n",
            "app/broken.py": b"def broken(:\n",
            "app/notutf8.py": b"x = '\xff'\n",
        },
    )
    dry = _migrate("aware-datetimes", str(root))
    assert dry.exit_code == 1, dry.output
    assert "skipped app/broken.py: syntax error" in dry.stderr
    assert "skipped app/notutf8.py: cannot decode: not valid UTF-8" in dry.stderr
    wrote = _migrate("aware-datetimes", str(root), "--unsafe-fixes", "--write")
    assert wrote.exit_code == 0, wrote.output
    assert AWARE in (root / "app/a.py").read_text()
    assert (root / "app/broken.py").read_bytes() == b"def broken(:\n"


PEP758 = b"""from datetime import datetime


def parse(text):
    try:
        return int(text)
    except ValueError, TypeError:
        return None


stamp = datetime.utcnow()
"""


def test_newer_syntax_is_migrated_when_the_target_requires_that_python(tmp_path):
    """PEP 758 `except A, B:` (Python 3.14) in a project that requires 3.14: the codemod reads and
    rewrites the file (libcst reads it; the output is checked on the lowered text) and keeps the
    newer syntax; in a project that requires an older Python the file is reported and left
    alone."""
    root = _project(tmp_path / "new", {"app/a.py": PEP758})
    (root / "pyproject.toml").write_text(PYPROJECT + 'requires-python = ">=3.14"\n')
    result = _migrate("aware-datetimes", str(root), "--unsafe-fixes", "--write")
    assert result.exit_code == 0, result.output
    assert "skipped" not in result.stderr
    text = (root / "app/a.py").read_text()
    assert "except ValueError, TypeError:" in text and f"stamp = {AWARE}" in text
    again = _migrate("aware-datetimes", str(root))
    assert (again.exit_code, again.stdout) == (0, "")

    old = _project(tmp_path / "old", {"app/a.py": PEP758, "app/b.py": b"x = 1\n"})
    (old / "pyproject.toml").write_text(PYPROJECT + 'requires-python = ">=3.10"\n')
    result = _migrate("aware-datetimes", str(old), "--unsafe-fixes", "--write")
    assert result.exit_code == 0, result.output
    assert "skipped app/a.py: syntax error" in result.stderr
    assert (old / "app/a.py").read_bytes() == PEP758


def test_fifos_and_symlinks_out_of_the_tree_are_skipped_not_followed(tmp_path):
    outside = tmp_path / "outside.py"
    outside.write_bytes(b"from datetime import datetime\nx = datetime.utcnow()\n")
    root = _project(tmp_path / "project", {"app/b.py": b"x = 1\n"})
    os.symlink(outside, root / "app/a.py")
    os.mkfifo(root / "app/f.py")
    result = _migrate("aware-datetimes", str(root), "--unsafe-fixes", "--write")
    assert result.exit_code == 0, result.output
    assert "skipped app/a.py: symlink" in result.stderr
    assert "skipped app/f.py: not a regular file" in result.stderr
    assert AWARE not in outside.read_text()


# -- usage -------------------------------------------------------------------------------------
def test_a_dry_run_needs_no_unsafe_fixes_but_write_does(tmp_path):
    naive = b"from datetime import datetime\nx = datetime.utcnow()\n"
    root = _project(tmp_path, {"app/a.py": naive})
    dry = _migrate(str(root), "--codemod", "aware-datetimes")  # the README's example
    assert dry.exit_code == 1, dry.output
    assert f"+x = {AWARE}" in dry.stdout
    refused = _migrate(str(root), "--codemod", "aware-datetimes", "--write")
    assert refused.exit_code == 2
    assert "--unsafe-fixes" in refused.stderr
    assert (root / "app/a.py").read_bytes() == naive


def test_bracketed_text_survives(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        PYPROJECT + "\n[tool.gathering-consolidate]\nbogus = 1\n"
    )
    bad_config = _migrate("aware-datetimes", str(tmp_path))
    assert bad_config.exit_code == 2
    assert "[tool.gathering-consolidate]" in bad_config.stderr, bad_config.stderr
    root = _project(tmp_path / "other", {"app/[tool]/x.py": b"def broken(:\n"})
    skipped = _migrate("aware-datetimes", str(root))
    assert "skipped app/[tool]/x.py" in skipped.stderr, skipped.stderr


def test_an_internal_error_keeps_its_bracketed_text(monkeypatch, capsys):
    from gathering_consolidate import cli

    def boom() -> None:
        raise RuntimeError("[tool.gathering-consolidate] went wrong")

    monkeypatch.setattr(cli, "app", boom)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    assert "RuntimeError('[tool.gathering-consolidate] went wrong')" in capsys.readouterr().err


def test_80_columns_keep_paths_whole(tmp_path):
    deep = (
        "app/" + "/".join(f"package_number_{i}" for i in range(6)) + "/module_with_a_long_name.py"
    )
    assert len(deep) > 80
    root = _project(
        tmp_path,
        {
            deep: b"def broken(:\n",
            deep.replace("module_", "other_"): b"from datetime import datetime\n"
            b"x = datetime.utcnow()\n",
        },
    )
    result = _migrate("aware-datetimes", str(root), "--verbose", env={"COLUMNS": "80"})
    assert result.exit_code == 1, result.output
    assert f"skipped {deep}: syntax error" in result.stderr, result.stderr


BUILT_AWAY = b"""import psycopg


def find(conn: psycopg.Connection, name: str):
    query = f"SELECT * FROM users WHERE name = '{name}'"
    return conn.execute(query).fetchall()
"""


def test_refusals_are_counted_by_category_and_listed_with_verbose(tmp_path):
    root = _project(tmp_path, {"app/a.py": BUILT_AWAY, "app/b.py": BUILT_AWAY})
    quiet = _migrate("parameterise-sql", str(root))
    assert quiet.exit_code == 0, quiet.output
    assert "2 refused: the SQL is built away from the call (2)" in quiet.stderr, quiet.stderr
    assert "refused app/a.py" not in quiet.stderr
    verbose = _migrate("parameterise-sql", str(root), "--verbose")
    assert "refused app/a.py:6: the SQL is built away from the call" in verbose.stderr
    assert "refused app/b.py:6:" in verbose.stderr


def test_refusal_categories():
    assert Refused("a.py", "store.get() at a.py:3: the callee is not resolved").category == (
        "unresolved call"
    )
    assert Refused("a.py", "anything", category="mine").category == "mine"
    assert refusal_category("the try body can raise 5 types (A, B): too many") == (
        "the try body can raise N types"
    )
    assert refusal_category("`x` already means something else in this module; rename it") == (
        "… already means something else in this module"
    )
    assert refusal_category("awaits `request.form()`: a blocking call") == "awaits …"


def test_list_documents_every_option():
    from gathering_consolidate.codemods.engine import codemod_registry

    listing = _migrate("--list")
    assert listing.exit_code == 0
    for cid, cls in codemod_registry().items():
        assert cid in listing.stdout
        for key in cls.OPTIONS:
            assert f"-O {key}=" in listing.stdout, (cid, key)
            assert f"`-O {key}=" in cls.docs(), (cid, key)
    one = _migrate("--list", "narrow-except")
    assert one.exit_code == 0
    assert one.stdout.startswith("narrow-except (unsafe): ")
    assert "\n## Options\n- `-O include-tests=false`: " in one.stdout
    assert "\n    " not in one.stdout.split("## Options")[0]  # the docstring is dedented
    readme = (REPO / "README.md").read_text()
    for cls in codemod_registry().values():
        for key in cls.OPTIONS:
            assert re.search(rf"`{re.escape(key)}=", readme), key


# -- secrets -----------------------------------------------------------------------------------
SERVICE = """
    import os

    import psycopg

    class DatabaseService:
        def __init__(self, conninfo: str) -> None:
            self.conninfo = conninfo

        def execute(self, sql, params=None):
            with psycopg.connect(self.conninfo) as conn:
                return conn.execute(sql, params).fetchall()

    def get_db() -> DatabaseService:
        return DatabaseService(os.environ["DATABASE_URL"])
"""

HANDLER = """
    from fastapi import APIRouter, Depends
    from app.db import DatabaseService, get_db

    router = APIRouter()

    @router.get("/one")
    async def one(db: DatabaseService = Depends(get_db)):
        return db.execute("SELECT 1")
"""


@pytest.mark.parametrize(
    ("dsn", "kept"),
    [
        ("postgresql://app:s3cr3t-pw@db.local:5432/prod", "postgresql://app:***@db.local"),
        ("host=db.local user=app password=s3cr3t-pw dbname=prod", "password=***"),
        ("host=db.local password='s3cr3t-pw x' dbname=prod", "dbname=prod"),
        ("postgresql://app@db/prod?password=s3cr3t-pw&sslmode=require", "sslmode=require"),
    ],
)
def test_the_generated_async_service_repr_hides_the_password(dsn, kept):
    project = CodemodProject(
        root=Path("/nonexistent"),
        config=load_config(REPO / "tests"),
        files={"app/db.py": dedent(SERVICE), "app/api.py": dedent(HANDLER)},
    )
    plan = run_codemod(AsyncDb(), project)
    source = next(c.after for c in plan.changes if c.path == "app/db.py")
    # Only the generated class and its masking helper, defined without importing psycopg.
    namespace: dict[str, object] = {}
    start = source.index("class AsyncDatabaseService")
    end = source.index("_async_service: AsyncDatabaseService")
    helper = source[source.index("def _masked_conninfo") :]
    helper = helper[: helper.index("\n\n\n")]
    exec(  # code this tool generated, not code from a target
        "import re, asyncio, contextlib, contextvars\nfrom typing import Any\n"
        "AsyncConnectionPool = AsyncIterator = dict_row = None\n"
        + helper
        + "\n\n"
        + source[start:end],
        namespace,
    )
    service = namespace["AsyncDatabaseService"](dsn)  # type: ignore[operator]
    shown = repr(service)
    assert "s3cr3t" not in shown and kept in shown, shown
    assert "s3cr3t" not in str(service)


def test_a_file_the_analysis_declines_is_named_not_passed_by(monkeypatch):
    """The audit a codemod reads may decline a file (nested too deeply to analyse): the codemod
    reports it as skipped, with the reason, instead of reading it as nothing to change."""
    from gathering_consolidate.audit.exceptions import flow
    from gathering_consolidate.codemods.base import CodemodProject, Skipped
    from gathering_consolidate.codemods.engine import run_codemod
    from gathering_consolidate.codemods.narrow_except import NarrowExcept
    from gathering_consolidate.config import load_config
    from tests.conftest import REPO

    collect = flow.collect

    def declining(ctx):
        if ctx.path == "app/deep.py":
            raise RecursionError("maximum recursion depth exceeded")
        return collect(ctx)

    monkeypatch.setattr(flow, "collect", declining)
    code = "def f(x):\n    try:\n        return int(x)\n    except Exception:\n        return 0\n"
    project = CodemodProject(
        Path("/nonexistent"), load_config(REPO / "tests"), {"app/deep.py": code, "app/ok.py": code}
    )
    plan = run_codemod(NarrowExcept({"tier": 0}), project)
    skipped = [o for o in plan.outcomes if isinstance(o, Skipped)]
    assert [o.path for o in skipped] == ["app/deep.py"]
    assert skipped[0].reason.startswith("not analysed: ") and "left as is" in skipped[0].reason
    assert [c.path for c in plan.changes] == ["app/ok.py"]


def test_map_files_runs_in_workers_in_order_with_progress(monkeypatch):
    """`CodemodProject.map_files`: the results in the order of the paths, one progress step
    each, from forked workers when there are two CPUs; a failure in the work is raised here."""
    steps: list[tuple[str, int, int | None]] = []
    paths = [f"m{i}.py" for i in range(7)]
    project = CodemodProject(
        root=REPO,
        config=load_config(REPO / "tests"),
        files={p: "" for p in paths},
        progress=lambda stage, n, total: steps.append((stage, n, total)),
    )
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    results = list(project.map_files("rewriting", lambda p: (p, os.getpid()), paths))
    assert [p for p, _ in results] == paths
    assert os.getpid() not in {pid for _, pid in results}  # ran in the workers
    assert steps == [("rewriting", 1, 7)] * 7

    def fails(path: str) -> str:
        raise ValueError(f"bad {path}")

    with pytest.raises(ValueError, match="bad m"):
        list(project.map_files("rewriting", fails, paths))
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # one CPU: in this process
    assert {pid for _, pid in project.map_files("x", lambda p: (p, os.getpid()), paths)} == {
        os.getpid()
    }
