"""Scenarios for `lint-guard`: the ruff config it writes (kept as written, comments and order),
exactly which files get ignores, how it shrinks, and that its model of ruff agrees with ruff."""

from __future__ import annotations

import ast
import json
import subprocess
import sysconfig
import warnings
from pathlib import Path

import pytest
import tomlkit
from typer.testing import CliRunner

from gathering_consolidate.audit.base import dedent
from gathering_consolidate.cli import app
from gathering_consolidate.codemods._exceptions_helpers import ruff_guard_hits
from gathering_consolidate.codemods.lint_guard import LintGuard
from tests.codemods._exc_support import changed, plan, refusals
from tests.conftest import REPO

RUFF = str(REPO / ".venv" / "bin" / "ruff")
runner = CliRunner()

PYPROJECT = """
    [project]
    name = "app"

    [tool.ruff]
    line-length = 110  # keep in sync with CI

    [tool.ruff.lint]
    # The base set.
    select = ["E", "F", "B"]
    ignore = ["E501", "BLE001"]

    [tool.ruff.lint.per-file-ignores]
    # Tests assert freely.
    "tests/**" = ["B011", "S110"]

    [tool.pytest.ini_options]
    addopts = "-ra"
"""

SWALLOW = "import os\n\n\ndef f():\n    try:\n        os.remove('x')\n    except Exception:\n        pass\n"
#: Tier 1 by what it protects: a database write.
DB_WRITE = (
    "import os\n\n\ndef f(db_session):\n    try:\n        db_session.commit()\n"
    "    except Exception:\n        pass\n"
)
LOGGED = (
    "import logging\nimport os\n\nlog = logging.getLogger(__name__)\ntry:\n    os.remove('x')\n"
    "except Exception:\n    log.exception('x')\n"
)


def guard(files: dict[str, str], **options):
    return plan(LintGuard, files, **options)


def config_after(result) -> str:
    return changed(result, "pyproject.toml").after


def lint_of(text: str):
    return tomlkit.parse(text)["tool"]["ruff"]["lint"]


def test_guard_rules_and_per_handler_debt_markers():
    files = {
        "pyproject.toml": PYPROJECT,
        "app/skills/a.py": SWALLOW,
        "app/pipelines/b.py": "import os\n\nfor x in []:\n    try:\n        os.remove(x)\n    except:\n        continue\n",
        "app/skills/logged.py": LOGGED,
        "tests/test_x.py": SWALLOW,
    }
    result = guard(files)
    after = config_after(result)
    lint = lint_of(after)
    assert lint["select"] == ["E", "F", "B"]  # "B" is bugbear, not blind-except
    assert lint["extend-select"] == ["BLE001", "S110", "S112"]  # E722 comes with "E"
    assert lint["ignore"] == ["E501"]
    assert "extend-per-file-ignores" not in lint  # no whole-file ignore any more
    for kept in ("# keep in sync with CI", "# The base set.", "# Tests assert freely."):
        assert kept in after
    assert any(
        "removed BLE001 from `ignore`" in n for n in changed(result, "pyproject.toml").warnings
    )
    # Each handler carries exactly the codes ruff reports on its line.
    assert "    except Exception:  # noqa: BLE001, S110 -- lint-guard debt (tier " in (
        changed(result, "app/skills/a.py").after
    )
    assert "    except:  # noqa: E722, S112 -- lint-guard debt (tier " in (
        changed(result, "app/pipelines/b.py").after
    )
    # S110 is already ignored in tests/ by the project's own per-file-ignores.
    assert "except Exception:  # noqa: BLE001 -- lint-guard debt" in (
        changed(result, "tests/test_x.py").after
    )
    assert "app/skills/logged.py" not in {c.path for c in result.changes}


def test_current_phase_handlers_are_listed_not_marked():
    files = {
        "pyproject.toml": PYPROJECT,
        "app/db/store.py": DB_WRITE,
        "app/auth/tokens.py": DB_WRITE.replace(
            "except Exception:", "except Exception:  # consolidate: fixme[EXC001] GH-12"
        ),
    }
    result = guard(files)
    assert "app/db/store.py" not in {c.path for c in result.changes}
    assert (
        "except Exception:  # consolidate: fixme[EXC001] GH-12"
        "  # noqa: BLE001, S110 -- lint-guard debt (tier 1, acknowledged)"
    ) in changed(result, "app/auth/tokens.py").after
    ((line, reason),) = refusals(result)
    assert line == 7 and "ruff will report BLE001, S110 here" in reason
    # In phase 2, tier-2 handlers are the current work: not marked.
    result = guard({**files, "app/pipelines/p.py": DB_WRITE.replace("db_session", "s")}, tier=2)
    assert "app/pipelines/p.py" not in {c.path for c in result.changes}


def test_a_new_handler_in_a_file_with_debt_is_not_covered():
    files = {"pyproject.toml": PYPROJECT, "app/skills/a.py": SWALLOW}
    marked = changed(guard(files), "app/skills/a.py").after
    grown = (
        marked
        + "\n\ndef g():\n    try:\n        os.remove('y')\n    except Exception:\n        pass\n"
    )
    hits = ruff_guard_hits(grown, ast.parse(grown))
    assert [(h.line, sorted(h.codes)) for h in hits] == [(14, ["BLE001", "S110"])]


def test_shrinks_after_fixes_and_is_idempotent():
    files = {"pyproject.toml": PYPROJECT, "app/skills/a.py": SWALLOW, "app/skills/b.py": SWALLOW}
    first = guard(files)
    files = {c.path: c.after for c in first.changes} | {
        p: c for p, c in files.items() if p not in {c.path for c in first.changes}
    }
    assert not guard(files).changes  # a second run changes nothing
    # b's handler is fixed (narrowed) but keeps its marker: the next run takes the marker off.
    files["app/skills/b.py"] = files["app/skills/b.py"].replace(
        "except Exception", "except OSError"
    )
    second = guard(files)
    assert [c.path for c in second.changes] == ["app/skills/b.py"]
    assert "noqa" not in changed(second, "app/skills/b.py").after
    assert changed(second, "app/skills/b.py").after == SWALLOW.replace("Exception", "OSError")


def test_old_whole_file_ignores_are_replaced_by_markers():
    config = dedent(PYPROJECT).replace('[tool.pytest.ini_options]\naddopts = "-ra"\n', "")
    config += (
        '\n[tool.ruff.lint.extend-per-file-ignores]\n"app/x.py" = ["T201", "BLE001", "S110"]\n'
        '"app/y.py" = ["BLE001", "S110"]\n'
    )
    files = {"pyproject.toml": config, "app/x.py": SWALLOW, "app/y.py": "x = 1\n"}
    result = guard(files)
    lint = lint_of(config_after(result))
    assert dict(lint["extend-per-file-ignores"]) == {"app/x.py": ["T201"]}
    assert "# noqa: BLE001, S110 -- lint-guard debt" in changed(result, "app/x.py").after
    assert any("2 whole-file ignore(s)" in n for n in changed(result, "pyproject.toml").warnings)


def test_multiline_tuple_gets_each_code_on_its_own_line():
    code = (
        "import os\n\n\ndef f():\n    try:\n        os.remove('x')\n    except (\n"
        "        ValueError,\n        Exception,\n    ):\n        pass\n"
    )
    after = changed(guard({"pyproject.toml": PYPROJECT, "app/m.py": code}), "app/m.py").after
    assert "    except (  # noqa: S110 -- lint-guard debt (tier 2)\n" in after
    assert "        Exception,  # noqa: BLE001 -- lint-guard debt (tier 2)\n" in after


def test_lines_where_ruff_could_not_read_a_marker_are_refused():
    code = SWALLOW.replace("except Exception:", "except Exception:  # noqa: E501")
    result = guard({"pyproject.toml": PYPROJECT, "app/m.py": code})
    assert "app/m.py" not in {c.path for c in result.changes}
    assert any("already has a `# noqa`" in r for _, r in refusals(result))
    code = SWALLOW.replace("except Exception:", "except (ValueError,\\\n    Exception):")
    result = guard({"pyproject.toml": PYPROJECT, "app/m.py": code})
    assert any("continues with a backslash" in r for _, r in refusals(result))


def test_project_without_ruff_config_gets_one():
    result = guard({"pyproject.toml": '[project]\nname = "app"\n', "app/skills/a.py": SWALLOW})
    after = config_after(result)
    assert after.startswith('[project]\nname = "app"\n')
    assert lint_of(after)["extend-select"] == ["BLE001", "E722", "S110", "S112"]
    assert "[tool.ruff.lint]" in after


def test_ruff_toml_and_legacy_top_level_settings():
    files = {
        "pyproject.toml": PYPROJECT,
        "ruff.toml": 'line-length = 100\nselect = ["E"]\n',
        "app/skills/a.py": SWALLOW,
    }
    result = guard(files)
    assert [c.path for c in result.changes] == ["app/skills/a.py", "ruff.toml"]
    document = tomlkit.parse(changed(result, "ruff.toml").after)
    assert document["extend-select"] == ["BLE001", "S110", "S112"]  # legacy: at top level


def test_noqa_and_excluded_files_need_no_marker():
    config = dedent(PYPROJECT).replace(
        "line-length = 110", 'line-length = 110\nextend-exclude = ["app/vendor"]'
    )
    files = {
        "pyproject.toml": config,
        "app/skills/a.py": SWALLOW.replace("except Exception:", "except Exception:  # noqa"),
        "app/vendor/lib.py": SWALLOW,
    }
    assert [c.path for c in guard(files).changes] == ["pyproject.toml"]


def test_a_project_without_a_config_gets_a_ruff_toml():
    result = guard({"app/a.py": SWALLOW})
    created = changed(result, "ruff.toml")
    assert created.before is None
    assert tomlkit.parse(created.after)["lint"]["extend-select"] == [
        "BLE001",
        "E722",
        "S110",
        "S112",
    ]
    assert "# noqa: BLE001, S110 -- lint-guard debt" in changed(result, "app/a.py").after


def _ruff(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RUFF, "check", "--no-cache", *args, str(root)], capture_output=True, text=True
    )


def test_cli_guard_holds_in_ruff_and_in_the_check(tmp_path):
    (tmp_path / "pyproject.toml").write_text(dedent(PYPROJECT))
    (tmp_path / "app" / "skills").mkdir(parents=True)
    target = tmp_path / "app" / "skills" / "a.py"
    target.write_text(SWALLOW)
    dry = runner.invoke(app, ["migrate", "lint-guard", str(tmp_path)])
    assert dry.exit_code == 1 and "+extend-select" in dry.stdout
    assert "+    except Exception:  # noqa: BLE001, S110 -- lint-guard debt" in dry.stdout
    done = runner.invoke(app, ["migrate", "lint-guard", str(tmp_path), "--write"])
    assert done.exit_code == 0, done.output
    assert _ruff(tmp_path).returncode == 0, _ruff(tmp_path).stdout
    check = runner.invoke(app, ["lint-guard", "check", str(tmp_path)])
    assert check.exit_code == 0, check.output
    assert "no new broad handler; 1 marked as debt in 1 file" in check.stderr
    # A new broad handler in the file that already carries debt fails both.
    target.write_text(
        target.read_text()
        + "\n\ndef g():\n    try:\n        os.remove('y')\n    except Exception:\n        pass\n"
    )
    ruff = _ruff(tmp_path)
    assert ruff.returncode == 1 and "a.py:14" in ruff.stdout, ruff.stdout
    # The check holds even where CI runs ruff with its own selection (guard codes not in it).
    assert _ruff(tmp_path, "--select", "E,F").returncode == 0
    check = runner.invoke(app, ["lint-guard", "check", str(target)])
    assert check.exit_code == 1
    assert check.stdout.startswith(
        "app/skills/a.py:14: BLE001, S110 new broad exception handler (in g)"
    )
    data = json.loads(
        runner.invoke(app, ["lint-guard", "check", "-f", "json", str(tmp_path)]).stdout
    )
    assert data["new"] == [
        {"path": "app/skills/a.py", "line": 14, "codes": ["BLE001", "S110"], "symbol": "g"}
    ]
    assert data["debt"] == 1


def test_check_reports_stale_markers_and_bad_paths(tmp_path):
    (tmp_path / "pyproject.toml").write_text(dedent(PYPROJECT))
    (tmp_path / "a.py").write_text(
        SWALLOW.replace(
            "except Exception:", "except OSError:  # noqa: BLE001 -- lint-guard debt (tier 3)"
        )
    )
    check = runner.invoke(app, ["lint-guard", "check", str(tmp_path)])
    assert check.exit_code == 0, check.output
    assert "a.py:7: stale lint-guard debt marker" in check.stderr
    missing = runner.invoke(app, ["lint-guard", "check", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_pyproject_with_a_bom_and_crlf_is_read_as_it_is(tmp_path):
    text = dedent(PYPROJECT).replace("\n", "\r\n")
    (tmp_path / "pyproject.toml").write_bytes(b"\xef\xbb\xbf" + text.encode())
    (tmp_path / "a.py").write_text("x = 1\n")
    done = runner.invoke(app, ["migrate", "lint-guard", str(tmp_path), "--write"])
    assert done.exit_code == 0, done.output
    data = (tmp_path / "pyproject.toml").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf[project]\r\n") and b"\n" not in data.replace(b"\r\n", b"")
    assert b'extend-select = ["BLE001", "S110", "S112"]' in data
    again = runner.invoke(app, ["migrate", "lint-guard", str(tmp_path)])
    assert again.exit_code == 0, again.output  # nothing more to change


# -- the model of ruff ------------------------------------------------------------------------------------
CORPUS = {
    "shapes.py": """
        import logging
        from logging import getLogger, exception as log_exception
        from app.log import logger as imported_logger
        logger = logging.getLogger(__name__)
        log = _logger = LOG = mylog = Logger = logger

        def a():
            try: f()
            except Exception: pass
        def b():
            try: f()
            except Exception: logger.exception("x")
        def c():
            try: f()
            except Exception: mylog.exception("x")
        def d():
            try: f()
            except Exception: imported_logger.exception("x")
        def e():
            try: f()
            except Exception: logger.error("x", exc_info=True)
        def e2():
            try: f()
            except Exception: logger.error("x", exc_info=False)
        def e3():
            try: f()
            except Exception: logger.fatal("x", exc_info=True)
        def g():
            try: f()
            except Exception as exc: raise ValueError() from exc
        def g2():
            try: f()
            except Exception as exc: raise ValueError() from None
        def g3():
            try: f()
            except Exception as exc: raise other
        def h():
            try: f()
            except: raise
        def h2():
            try: f()
            except:
                if x: raise
        def i():
            for x in y:
                try: f()
                except Exception: continue
        def j():
            try: f()
            except (ValueError, BaseException): pass
        def k():
            try: f()
            except Exception:
                try: g()
                except ValueError: raise
        def k2():
            try: f()
            except Exception:
                with x:
                    if y:
                        raise
        def l():
            try: f()
            except Exception:
                try:
                    logger.exception("x")
                finally:
                    pass
        def m():
            try: f()
            except Exception: getLogger().exception("x")
        def m2():
            try: f()
            except Exception: self.get_logger().exception("x")
        def m3():
            try: f()
            except Exception: log_exception("x")
        def m4():
            try: f()
            except Exception: Logger.exception("x")
        def n():
            try: f()
            except Exception:
                \"\"\"doc\"\"\"
                pass
        def o():
            try: f()
            except Exception: x = logger.exception("x")
        def p():
            try: f()
            except Exception:  # noqa: BLE001
                pass
        def q():
            try: f()
            except* Exception: pass
    """,
    "file_noqa.py": "# ruff: noqa: S110\ntry:\n    f()\nexcept Exception:\n    pass\n",
}


def _ruff_codes(root: Path) -> dict[str, set[tuple[str, int]]]:
    out = subprocess.run(
        [RUFF, "check", "--isolated", "--no-cache", "--select", "BLE001,S110,S112,E722",
         "--output-format", "json", "--exit-zero", str(root)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found: dict[str, set[tuple[str, int]]] = {}
    for item in json.loads(out.stdout):
        found.setdefault(item["filename"], set()).add((item["code"], item["location"]["row"]))
    return found


def _ours(path: Path) -> set[tuple[str, int]]:
    source = path.read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences in old stdlib files
        tree = ast.parse(source)
    return {(c, h.line) for h in ruff_guard_hits(source, tree) for c in h.codes}


def test_model_agrees_with_ruff_on_the_corpus(tmp_path):
    for name, code in CORPUS.items():
        (tmp_path / name).write_text(dedent(code))
    theirs = _ruff_codes(tmp_path)
    for name in CORPUS:
        path = tmp_path / name
        assert _ours(path) == theirs.get(str(path), set()), name


@pytest.mark.slow
def test_model_agrees_with_ruff_on_the_standard_library():
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    theirs = _ruff_codes(stdlib)
    checked = 0
    for path in sorted(stdlib.rglob("*.py")):
        if {"site-packages", "venv", "__pycache__"} & set(path.relative_to(stdlib).parts):
            continue
        if path.stat().st_size > 300_000:
            continue
        try:
            ours = _ours(path)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        assert ours == theirs.get(str(path), set()), path
        checked += 1
    assert checked > 1000
