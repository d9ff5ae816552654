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


def test_guard_rules_and_debt_ignores():
    files = {
        "pyproject.toml": PYPROJECT,
        "app/skills/a.py": SWALLOW,
        "app/pipelines/b.py": "import os\n\nfor x in []:\n    try:\n        os.remove(x)\n    except:\n        continue\n",
        "app/skills/logged.py": LOGGED,
        "tests/test_x.py": SWALLOW,
    }
    result = guard(files)
    after = config_after(result)
    document = tomlkit.parse(after)
    lint = document["tool"]["ruff"]["lint"]
    assert lint["select"] == ["E", "F", "B"]  # "B" is bugbear, not blind-except
    assert lint["extend-select"] == ["BLE001", "S110", "S112"]  # E722 comes with "E"
    assert lint["ignore"] == ["E501"]
    assert dict(lint["extend-per-file-ignores"]) == {
        "app/pipelines/b.py": ["E722", "S112"],
        "app/skills/a.py": ["BLE001", "S110"],
        "tests/test_x.py": ["BLE001"],  # S110 is already ignored there by the project
    }
    for kept in ("# keep in sync with CI", "# The base set.", "# Tests assert freely."):
        assert kept in after
    assert after.index("[tool.ruff.lint.extend-per-file-ignores]") < after.index(
        "[tool.pytest.ini_options]"
    )
    assert any(
        "removed BLE001 from `ignore`" in n for n in changed(result, "pyproject.toml").warnings
    )


def test_current_phase_handlers_are_listed_not_ignored():
    files = {
        "pyproject.toml": PYPROJECT,
        "app/db/store.py": DB_WRITE,
        "app/auth/tokens.py": DB_WRITE.replace(
            "except Exception:", "except Exception:  # consolidate: fixme[EXC001] GH-12"
        ),
    }
    result = guard(files)
    lint = tomlkit.parse(config_after(result))["tool"]["ruff"]["lint"]
    assert dict(lint["extend-per-file-ignores"]) == {"app/auth/tokens.py": ["BLE001", "S110"]}
    ((line, reason),) = refusals(result)
    assert line == 7 and "ruff will report BLE001, S110 here" in reason
    # In phase 2, tier-2 files are the current work; tier 1 stays uncovered.
    result = guard({**files, "app/pipelines/p.py": SWALLOW}, tier=2)
    lint = tomlkit.parse(config_after(result))["tool"]["ruff"]["lint"]
    assert "app/pipelines/p.py" not in lint["extend-per-file-ignores"]


def test_shrinks_after_fixes_and_is_idempotent():
    files = {
        "pyproject.toml": PYPROJECT,
        "app/skills/a.py": SWALLOW,
        "app/skills/b.py": SWALLOW,
    }
    first = config_after(guard(files))
    files["pyproject.toml"] = first
    assert not guard(files).changes  # a second run changes nothing
    files["app/skills/b.py"] = SWALLOW.replace("Exception", "ValueError")
    second = config_after(guard(files))
    lint = tomlkit.parse(second)["tool"]["ruff"]["lint"]
    assert dict(lint["extend-per-file-ignores"]) == {"app/skills/a.py": ["BLE001", "S110"]}
    files["app/skills/a.py"] = "x = 1\n"
    files["pyproject.toml"] = second
    third = config_after(guard(files))
    assert "extend-per-file-ignores" not in tomlkit.parse(third)["tool"]["ruff"]["lint"]
    assert "# Tests assert freely." in third


def test_other_codes_in_the_managed_table_are_kept():
    config = dedent(PYPROJECT).replace('[tool.pytest.ini_options]\naddopts = "-ra"\n', "")
    config += '\n[tool.ruff.lint.extend-per-file-ignores]\n"app/x.py" = ["T201"]\n'
    files = {"pyproject.toml": config, "app/x.py": SWALLOW}
    after = config_after(guard(files))
    table = tomlkit.parse(after)["tool"]["ruff"]["lint"]["extend-per-file-ignores"]
    assert list(table["app/x.py"]) == ["T201", "BLE001", "S110"]
    files.update({"pyproject.toml": after, "app/x.py": "x = 1\n"})
    table = tomlkit.parse(config_after(guard(files)))["tool"]["ruff"]["lint"]
    assert dict(table["extend-per-file-ignores"]) == {"app/x.py": ["T201"]}


def test_project_without_ruff_config_gets_one():
    result = guard({"pyproject.toml": '[project]\nname = "app"\n', "app/skills/a.py": SWALLOW})
    after = config_after(result)
    assert after.startswith('[project]\nname = "app"\n')
    lint = tomlkit.parse(after)["tool"]["ruff"]["lint"]
    assert lint["extend-select"] == ["BLE001", "E722", "S110", "S112"]
    assert "[tool.ruff.lint]" in after


def test_ruff_toml_and_legacy_top_level_settings(tmp_path):
    files = {
        "pyproject.toml": PYPROJECT,
        "ruff.toml": 'line-length = 100\nselect = ["E"]\n',
        "app/skills/a.py": SWALLOW,
    }
    result = guard(files)
    assert [c.path for c in result.changes] == ["ruff.toml"]
    document = tomlkit.parse(changed(result, "ruff.toml").after)
    assert document["extend-select"] == ["BLE001", "S110", "S112"]  # legacy: at top level
    assert dict(document["extend-per-file-ignores"]) == {"app/skills/a.py": ["BLE001", "S110"]}


def test_noqa_and_excluded_files_need_no_ignore():
    config = dedent(PYPROJECT).replace(
        "line-length = 110", 'line-length = 110\nextend-exclude = ["app/vendor"]'
    )
    files = {
        "pyproject.toml": config,
        "app/skills/a.py": SWALLOW.replace(
            "except Exception:", "except Exception:  # noqa: BLE001"
        ).replace("pass\n", "pass\n"),
        "app/vendor/lib.py": SWALLOW,
    }
    lint = tomlkit.parse(config_after(guard(files)))["tool"]["ruff"]["lint"]
    assert dict(lint["extend-per-file-ignores"]) == {"app/skills/a.py": ["S110"]}


def test_refuses_without_a_config():
    result = guard({"app/a.py": SWALLOW})
    assert "no pyproject.toml" in refusals(result)[0][1]


def test_cli_writes_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text(dedent(PYPROJECT))
    (tmp_path / "app" / "skills").mkdir(parents=True)
    (tmp_path / "app" / "skills" / "a.py").write_text(SWALLOW)
    dry = runner.invoke(app, ["migrate", "lint-guard", str(tmp_path)])
    assert dry.exit_code == 1 and "+extend-select" in dry.stdout
    done = runner.invoke(app, ["migrate", "lint-guard", str(tmp_path), "--write"])
    assert done.exit_code == 0, done.output
    ruff = subprocess.run(
        [RUFF, "check", "--no-cache", str(tmp_path)], capture_output=True, text=True
    )
    assert ruff.returncode == 0, ruff.stdout
    (tmp_path / "app" / "skills" / "new.py").write_text(SWALLOW)
    ruff = subprocess.run(
        [RUFF, "check", "--no-cache", str(tmp_path)], capture_output=True, text=True
    )
    assert ruff.returncode == 1 and "new.py" in ruff.stdout


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
