"""Scenarios for `narrow-except`: clause shapes, imports, re-raising, refusals, tiers, the CLI."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from typer.testing import CliRunner

from gathering_consolidate.audit.base import dedent
from gathering_consolidate.cli import app
from gathering_consolidate.codemods._exceptions_helpers import add_import_text
from gathering_consolidate.codemods.base import CodemodProject, Refused
from gathering_consolidate.codemods.engine import run_codemod
from gathering_consolidate.codemods.narrow_except import NarrowExcept
from gathering_consolidate.config import load_config
from tests.codemods._exc_support import changed, refusals
from tests.codemods._exc_support import plan as _plan
from tests.conftest import REPO

runner = CliRunner()

JWT_PEEK = """
    import jwt

    def peek(token):
        try:
            return jwt.decode(token, options={"verify_signature": False})
        except CLAUSE:
            BODY
"""


def plan(codemod_cls, files, **options):
    """Every tier unless a test asks: tiers come from what a handler protects (EXC's tier
    model), and these tests are about narrowing."""
    options.setdefault("tier", 0)
    return _plan(codemod_cls, files, **options)


def peek(clause: str = "Exception", body: str = "return {}") -> str:
    return JWT_PEEK.replace("except CLAUSE", f"except {clause}".rstrip()).replace("BODY", body)


def narrow(code: str, path: str = "app/auth/x.py", files=None, **options) -> str:
    result = plan(NarrowExcept, {**(files or {}), path: code}, **options)
    return changed(result, path).after


def test_bare_except_gets_a_type():
    after = narrow(peek(clause=""))
    assert "    except jwt.PyJWTError:\n        return {}\n" in after


def test_base_exception_and_except_star():
    after = narrow(peek("BaseException"))
    assert "except jwt.PyJWTError:" in after
    star = """
        import jwt

        def peek(token):
            try:
                return jwt.decode(token, options={"verify_signature": False})
            except* Exception:
                pass
    """
    assert "except* jwt.PyJWTError:" in narrow(star)


def test_tuple_keeps_its_other_members_and_drops_duplicates():
    code = """
        import json

        def load(raw):
            try:
                return json.loads(raw)
            except (TypeError, Exception, ValueError) as exc:
                return None
    """
    assert "except (TypeError, ValueError) as exc:" in narrow(code)
    single = code.replace("(TypeError, Exception, ValueError)", "(ValueError, Exception)")
    assert "except ValueError as exc:" in narrow(single)


def test_multiple_types_become_a_tuple():
    code = """
        import subprocess

        def status():
            try:
                return subprocess.run(["git", "status"], check=True).stdout
            except Exception:
                return ""
    """
    assert "except (OSError, subprocess.SubprocessError):" in narrow(code)


def test_existing_import_aliases_are_reused():
    code = """
        import psycopg as pg

        def ping(url):
            try:
                pg.connect(url).close()
            except Exception:
                return False
            return True
    """
    after = narrow(code, path="app/db/ping.py")
    assert "except pg.Error:" in after
    assert after.count("import") == 1
    direct = """
        from jwt import PyJWTError, decode

        def peek(token):
            try:
                return decode(token, options={"verify_signature": False})
            except Exception:
                return {}
    """
    assert "except PyJWTError:" in narrow(direct)


def test_missing_library_import_is_added_in_its_section():
    files = {
        "app/db/service.py": """
            import psycopg

            class Database:
                def one(self, sql: str) -> dict:
                    with psycopg.connect("") as conn:
                        return conn.execute(sql).fetchone()
        """,
    }
    code = '''
        """Health checks."""

        import logging

        from app.db.service import Database

        log = logging.getLogger(__name__)

        def healthy(db: Database) -> bool:
            try:
                db.one("SELECT 1")
                return True
            except Exception:
                return False
    '''
    after = narrow(code, path="app/auth/health.py", files=files)
    assert after.startswith(
        '"""Health checks."""\n\nimport logging\n\nimport psycopg\n\nfrom app.db.service import'
    )
    assert "except psycopg.Error:" in after


def test_project_exception_is_imported_from_its_module():
    files = {
        "app/auth/errors.py": "class TokenError(Exception):\n    pass\n",
        "app/auth/tokens.py": """
            from app.auth.errors import TokenError

            def check(token):
                if not token:
                    raise TokenError("empty")
        """,
    }
    code = """
        import logging

        from app.auth import tokens

        log = logging.getLogger(__name__)

        def valid(token):
            try:
                tokens.check(token)
                return True
            except Exception:
                return False
    """
    after = narrow(code, path="app/auth/api.py", files=files)
    assert "from app.auth import tokens\nfrom app.auth.errors import TokenError\n" in after
    assert "except TokenError:" in after


def test_shadowed_builtin_is_spelled_through_builtins():
    code = """
        import json

        ValueError = None

        def load(raw):
            try:
                return json.loads(raw)
            except Exception:
                return None
    """
    after = narrow(code)
    assert "import builtins\nimport json\n" in after
    assert "except builtins.ValueError:" in after


def test_name_clash_is_refused():
    files = {
        "app/db/engine.py": """
            import psycopg

            def fetch(key):
                with psycopg.connect("") as conn:
                    return conn.execute("SELECT v FROM kv WHERE k = %s", (key,)).fetchone()
        """,
        "app/db/cache.py": """
            from app.compat import psycopg
            from app.db.engine import fetch

            def get(key):
                try:
                    return fetch(key)
                except Exception:
                    return None
        """,
    }
    result = plan(NarrowExcept, files)
    assert not result.changes
    assert refusals(result) == [(7, "`psycopg` is bound to something else in this module")]


def test_reraise_option_variants():
    cases = {
        "pass": (["pass  # ignore"], ["raise  # ignore"]),
        "return": (["return {}"], ["raise"]),
        "log": (["log.warning('bad')"], ["log.warning('bad')", "raise"]),
    }
    head = (
        "import json\nimport logging\nlog = logging.getLogger(__name__)\n\n"
        "def load(raw):\n    try:\n        json.loads(raw)\n    except Exception:\n"
    )
    for name, (body, expected) in cases.items():
        code = head + "".join(f"        {line}\n" for line in body)
        after = narrow(code, reraise=True)
        wanted = "    except ValueError:\n" + "".join(f"        {x}\n" for x in expected)
        assert after.endswith(wanted), (name, after)


def test_isolation_boundaries_are_left_to_isolate_handlers():
    """A loop that must survive one item's failure, a wrapper that turns any error into an
    error result, a cleanup, request middleware: catching everything is their purpose."""
    loop = """
        import json
        import logging
        log = logging.getLogger(__name__)

        def load(rows):
            for raw in rows:
                try:
                    json.loads(raw)
                except Exception:
                    log.warning("bad row")
                    continue
    """
    wrapper = """
        import json

        def execute_tool(raw):
            try:
                return json.loads(raw)
            except Exception as exc:
                return {"error": str(exc)}
    """
    middleware = """
        import json

        async def errors(request, call_next):
            try:
                return json.loads(await call_next(request))
            except Exception:
                return None
    """
    for code, words in (
        (loop, "a loop that must survive one item's failure"),
        (wrapper, "a wrapper that turns any error into an error result"),
        (middleware, "request middleware"),
    ):
        result = plan(NarrowExcept, {"app/auth/x.py": code})
        assert not result.changes
        (refused,) = [o for o in result.outcomes if isinstance(o, Refused)]
        assert refused.category == "isolation boundary" and words in refused.reason


def test_test_code_is_left_alone_unless_asked():
    files = {"tests/test_x.py": peek()}
    result = plan(NarrowExcept, files)
    assert not result.changes
    (refused,) = [o for o in result.outcomes if isinstance(o, Refused)]
    assert refused.category == "test code" and "include-tests=true" in refused.reason
    assert plan(NarrowExcept, files, **{"include-tests": True}).changes


def test_reraise_on_a_one_line_handler():
    code = """
        import json
        import logging
        log = logging.getLogger(__name__)

        def load(raw):
            try:
                return json.loads(raw)
            except Exception: log.warning("bad")
    """
    assert 'except ValueError: log.warning("bad"); raise\n' in narrow(code, reraise=True)


def test_reraise_is_only_for_swallowing_handlers():
    code = """
        import json

        def load(raw):
            try:
                return json.loads(raw)
            except Exception as exc:
                raise RuntimeError(raw) from exc
    """
    after = narrow(code, reraise=True)
    assert "except ValueError as exc:\n        raise RuntimeError(raw) from exc\n" in after


def test_cleanup_before_reraise_is_left_alone():
    code = """
        import json

        def load(raw, tmp):
            try:
                return json.loads(raw)
            except BaseException:
                tmp.close()
                raise
    """
    result = plan(NarrowExcept, {"app/auth/x.py": code})
    assert not result.changes
    ((line, reason),) = refusals(result)
    assert line == 6 and "work before re-raising" in reason


def test_too_many_types_is_refused():
    code = """
        import json
        import subprocess

        def run(raw):
            try:
                subprocess.run(json.loads(raw)[0])
            except Exception:
                return None
    """
    result = plan(NarrowExcept, {"app/auth/x.py": code})
    assert "too many to name here" in refusals(result)[0][1]
    assert plan(NarrowExcept, {"app/auth/x.py": code}, **{"max-types": 4}).changes


def test_unknown_calls_are_refused_with_the_call_named():
    code = """
        import json

        def load(raw, hook):
            try:
                hook.before()
                return json.loads(raw)
            except Exception:
                return None
    """
    result = plan(NarrowExcept, {"app/auth/x.py": code})
    assert not result.changes
    (refused,) = [o for o in result.outcomes if isinstance(o, Refused)]
    assert refused.line == 7
    assert refused.reason.startswith("unknown: ")
    assert "hook.before() at app/auth/x.py:5" in refused.reason


def test_an_unmapped_library_call_is_refused_with_the_config_entry_that_resolves_it():
    code = """
        import json

        import dbwrapper

        def load(key):
            try:
                return json.loads(dbwrapper.fetch_one("SELECT data FROM t WHERE k = %s", key))
            except Exception:
                return None
    """
    result = plan(NarrowExcept, {"app/auth/x.py": code})
    assert not result.changes
    (refused,) = [o for o in result.outcomes if isinstance(o, Refused)]
    assert '"dbwrapper.fetch_one" = [...]' in refused.reason
    assert "[tool.gathering-consolidate.checks.EXC.calls]" in refused.reason
    config = load_config(REPO / "tests")
    config = dataclasses.replace(
        config, check_options={"EXC": {"calls": {"dbwrapper.*": ["dbwrapper.Error"]}}}
    )
    project = CodemodProject(Path("/nonexistent"), config, {"app/auth/x.py": dedent(code)})
    mapped = run_codemod(NarrowExcept({"tier": 0}), project)
    assert "except (ValueError, dbwrapper.Error):" in changed(mapped, "app/auth/x.py").after


def test_module_rule_narrowing_is_noted():
    files = {
        "app/db/engine.py": "import psycopg\n",
        "app/db/cache.py": """
            import logging

            def get(key):
                try:
                    logging.info("get %s", key)
                except Exception:
                    return None
        """,
    }
    result = plan(NarrowExcept, files)
    change = changed(result, "app/db/cache.py")
    assert "except psycopg.Error:" in change.after
    assert "import psycopg\n" in change.after
    assert "module rule" in change.warnings[0]


def test_module_rule_never_narrows_an_unknown_call():
    files = {
        "app/db/engine.py": "import psycopg\n",
        "app/db/cache.py": """
            def get(store, key):
                try:
                    return store.get(key)
                except Exception:
                    return None
        """,
    }
    result = plan(NarrowExcept, files)
    assert not result.changes
    (refused,) = [o for o in result.outcomes if isinstance(o, Refused)]
    assert "store.get() at app/db/cache.py:3" in refused.reason
    assert refused.reason.endswith("the module rule for this path suggests psycopg.Error")


def test_tier_option():
    json_load = """
        import json

        def load(raw):
            try:
                return json.loads(raw)
            except Exception:
                return None
    """
    at_import = """
        import json

        try:
            DEFAULTS = json.loads("{}")
        except Exception:
            DEFAULTS = None
    """
    files = {
        "app/misc/a.py": peek(),  # jwt: tier 1 by what it does, whatever the folder
        "app/misc/b.py": json_load,  # app code not proven off a request path: tier 2
        "app/misc/c.py": at_import,  # runs once at import: tier 3
    }
    assert {c.path for c in plan(NarrowExcept, files, tier=1).changes} == {"app/misc/a.py"}
    assert {c.path for c in plan(NarrowExcept, files, tier=2).changes} == {"app/misc/b.py"}
    assert {c.path for c in plan(NarrowExcept, files, tier=3).changes} == {"app/misc/c.py"}
    assert len(plan(NarrowExcept, files, tier=0).changes) == 3


def test_nested_handlers_are_each_matched():
    code = """
        import json
        import jwt

        def both(token, raw):
            try:
                try:
                    return json.loads(raw)
                except Exception:
                    return jwt.decode(token, options={"verify_signature": False})
            except Exception:
                return None
    """
    after = narrow(code)
    assert "except ValueError:\n" in after
    assert "except jwt.PyJWTError:\n        return None" in after


def test_idempotent_and_comments_kept():
    code = """
        import jwt

        def peek(token):
            # peek only
            try:  # no verification
                return jwt.decode(token, options={"verify_signature": False})  # may fail
            # unreadable token: no claims
            except Exception:  # broad on purpose?
                return {}  # empty
    """
    first = narrow(code)
    for comment in (
        "# peek only",
        "# no verification",
        "# may fail",
        "# unreadable token",
        "# broad on purpose?",
        "# empty",
    ):
        assert comment in first
    again = plan(NarrowExcept, {"app/auth/x.py": first})
    assert not again.changes


def test_add_import_text_merges_and_orders():
    source = "import os\nfrom app.errors import A  # noqa\n\nx = 1\n"
    assert add_import_text(source, "app.errors", "B", {"app"}) == (
        "import os\nfrom app.errors import A, B  # noqa\n\nx = 1\n"
    )
    assert add_import_text(source, "os", None, {"app"}) == source


# -- the command line ----------------------------------------------------------------------------------
def _project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "t"\nversion = "0"\n')
    package = tmp_path / "app" / "auth"
    package.mkdir(parents=True)
    (tmp_path / "app" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "tokens.py").write_text(dedent(peek()))
    return tmp_path


def test_cli_diff_write_and_second_run(tmp_path):
    root = _project(tmp_path)
    target = root / "app" / "auth" / "tokens.py"
    before = target.read_text()
    refused = runner.invoke(app, ["migrate", str(root), "--codemod", "narrow-except", "--write"])
    assert refused.exit_code == 2 and "--unsafe-fixes" in refused.output
    assert target.read_text() == before
    dry = runner.invoke(
        app, ["migrate", str(root), "--codemod", "narrow-except", "--tier", "1", "--unsafe-fixes"]
    )
    assert dry.exit_code == 1
    assert "-    except Exception:\n+    except jwt.PyJWTError:" in dry.stdout
    assert target.read_text() == before
    written = runner.invoke(
        app, ["migrate", str(root), "--codemod", "narrow-except", "--unsafe-fixes", "--write"]
    )
    assert written.exit_code == 0, written.output
    assert "except jwt.PyJWTError:" in target.read_text()
    again = runner.invoke(
        app, ["migrate", str(root), "--codemod", "narrow-except", "--unsafe-fixes"]
    )
    assert again.exit_code == 0 and again.stdout == ""


def test_cli_reraise_flag(tmp_path):
    root = _project(tmp_path)
    result = runner.invoke(
        app, ["migrate", "narrow-except", str(root), "--unsafe-fixes", "--reraise", "--write"]
    )
    assert result.exit_code == 0, result.output
    assert "except jwt.PyJWTError:\n        raise\n" in (root / "app/auth/tokens.py").read_text()


def test_reraise_reaches_a_fixpoint_across_callers():
    # `load` swallows; once it re-raises ValueError, `handler` (which calls it) can be
    # narrowed too. One run does both, so a second run changes nothing.
    files = {
        "app/auth/store.py": """
            import json

            def load(raw):
                try:
                    return json.loads(raw)
                except Exception:
                    return None
        """,
        "app/auth/api.py": """
            from app.auth.store import load

            def handler(raw):
                try:
                    return load(raw)
                except Exception:
                    return {}
        """,
    }
    result = plan(NarrowExcept, files, reraise=True)
    assert "except ValueError:\n        raise\n" in changed(result, "app/auth/store.py").after
    api = changed(result, "app/auth/api.py")
    assert api.before == dedent(files["app/auth/api.py"])
    assert "except ValueError:\n        raise\n" in api.after
    again = {path: change.after for path, change in ((c.path, c) for c in result.changes)}
    assert not plan(NarrowExcept, {**files, **again}, reraise=True).changes
    # Without --reraise the caller has nothing to narrow: `load` swallows everything.
    assert {c.path for c in plan(NarrowExcept, files).changes} == {"app/auth/store.py"}


def test_local_classes_cannot_be_named():
    code = """
        def check(value):
            class Invalid(Exception):
                pass

            try:
                raise Invalid(value)
            except Exception:
                return None
    """
    result = plan(NarrowExcept, {"app/auth/x.py": code})
    assert not result.changes
    assert "a class defined inside a function" in refusals(result)[0][1]


# -- a narrowed clause never leaves existing code that can no longer run (issue 10 point 5) ------
def test_a_branch_on_a_class_the_narrowed_clause_misses_is_refused():
    code = """
        import zlib


        def parse(text):
            try:
                return int(text)
            except Exception as e:
                if isinstance(e, zlib.error):  # the tarfile shape
                    raise RuntimeError("corrupt") from e
                return None


        def parse_kind(text):
            try:
                return int(text)
            except Exception as e:
                if type(e) is KeyError:
                    return -1
                return None


        def parse_covered(text):
            try:
                return int(text)
            except Exception as e:
                if isinstance(e, (ValueError, UnicodeDecodeError)):
                    return None
                return -1
    """
    result = plan(NarrowExcept, {"app/m.py": code}, tier=0)
    reasons = dict(refusals(result))
    assert "tests whether `e` is a `zlib.error` (line 8)" in reasons[7]
    assert "could never run" in reasons[7]
    assert "is a `KeyError`" in reasons[16]
    after = changed(result, "app/m.py").after
    # UnicodeDecodeError is a ValueError: that branch stays reachable, so this one narrows.
    assert "    except (TypeError, ValueError) as e:\n        if isinstance(e, (ValueError" in after
    assert after.count("except Exception as e:") == 2


def test_unreachable_after_checks_later_handlers():
    import ast as _ast

    from gathering_consolidate.codemods.narrow_except import unreachable_after

    tree = _ast.parse(
        "try:\n    f()\nexcept BaseException:\n    pass\nexcept KeyboardInterrupt:\n    pass\n"
    )
    try_node = tree.body[0]
    first = try_node.handlers[0]
    assert unreachable_after(first, try_node, ["OSError"]) is None
    # A clause that would take the later handler's class first is refused.
    reason = unreachable_after(first, try_node, ["KeyboardInterrupt"])
    assert reason and "later `except KeyboardInterrupt` at line 5" in reason
