"""Scenarios for the EXC family: what counts as broad, the behaviour of a handler, what its try
body raises (across files), isolation sites, options, tiers, the summary tables."""

from __future__ import annotations

import ast
import textwrap

import pytest

from gathering_consolidate import audit
from gathering_consolidate.audit import registry
from gathering_consolidate.audit.base import dedent
from gathering_consolidate.audit.exceptions import summarize
from gathering_consolidate.audit.exceptions.helpers import behaviour, is_mixed, logs_traceback
from gathering_consolidate.config import Config, load_config
from gathering_consolidate.harness import load_annotations, score
from gathering_consolidate.project import audit_sources, sources_from_mapping
from tests.conftest import FIXTURE_APP, REPO


def run(files: dict[str, str], **options):
    base = load_config(REPO / "tests")
    config = Config(
        root=base.root,
        tiers=base.tiers,
        default_tier=base.default_tier,
        check_options={"EXC": options} if options else {},
    )
    checks = [c for c in registry() if c.id.startswith("EXC")]
    result = audit_sources(
        sources_from_mapping({p: dedent(c) for p, c in files.items()}), config, checks
    )
    assert not result.errors, result.errors
    return result


def only(files: dict[str, str], **options):
    findings = run(files, **options).findings
    assert len(findings) == 1, [(f.location.line, f.rule, f.message) for f in findings]
    return findings[0]


def handler_of(code: str) -> ast.ExceptHandler:
    tree = ast.parse(textwrap.dedent(code))
    return next(n for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler))


# -- behaviour ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("raise", "reraise"),
        ("log.exception('x')\n    raise", "reraise"),
        ("raise exc", "reraise"),
        ("raise AppError() from exc", "wrap_raise"),
        ("raise AppError(str(exc))", "wrap_raise"),
        ("if retry:\n        raise\n    else:\n        raise Other() from exc", "wrap_raise"),
        ("pass", "pass"),
        ("...", "pass"),
        ("continue", "pass"),
        ("return None", "return_default"),
        ("return", "return_default"),
        ("return []", "return_default"),
        ("return {}", "return_default"),
        ("return {'items': [], 'total': 0}", "return_default"),
        ("return False", "return_default"),
        ("return -1", "return_default"),
        ("return set()", "return_default"),
        ("return self.default", "return_default"),
        ("log.warning('x')\n    return None", "return_default"),
        ("return {'error': str(exc)}", "return_error"),
        ("return {'success': False, 'message': 'failed'}", "return_error"),
        ("return Result(success=False)", "return_error"),
        ("response['error'] = str(exc)", "return_error"),
        ("log.warning('x')\n    error = str(exc)", "log_continue"),
        ("response = JSONResponse(status_code=500)", "return_error"),
        ("sys.exit(1)", "exit"),
        ("log.error('x')\n    os._exit(2)", "exit"),
        ("raise exc from None", "reraise"),
        ("pytest.fail('boom')", "wrap_raise"),
        ("traceback.print_exc()", "log_continue"),
        ("return 'not found'", "return_default"),
        ("return JSONResponse(status_code=500)", "return_error"),
        ("logger.warning('failed')", "log_continue"),
        ("logger.error('failed: %s', exc)\n    continue", "log_continue"),
        ("print('failed')\n    break", "log_continue"),
        ("failed = True", "other"),
        ("if fatal:\n        raise\n    return None", "return_default"),
    ],
)
def test_behaviour(body, expected):
    code = f"try:\n    work()\nexcept Exception as exc:\n    {body}\n"
    assert behaviour(handler_of(code)) == expected


def test_mixed_handlers_are_flagged():
    code = "try:\n    work()\nexcept Exception as exc:\n    if fatal:\n        raise\n    return None\n"
    assert is_mixed(handler_of(code))
    assert not is_mixed(handler_of("try:\n    work()\nexcept Exception:\n    raise\n"))


def test_a_handler_ending_in_a_function_that_exits_is_exit():
    findings = run(
        {
            "app/cli.py": """
                import sys

                def cleanup(proc):
                    proc.terminate()
                    sys.exit(1)

                def fail(message):
                    raise RuntimeError(message)

                def main(proc):
                    try:
                        proc.wait()
                    except Exception:
                        cleanup(proc)

                def other(proc):
                    try:
                        proc.wait()
                    except Exception as exc:
                        fail(str(exc))
            """
        }
    ).findings
    assert {(f.location.line, f.rule, f.evidence["behaviour"]) for f in findings} == {
        (13, "EXC002", "exit"),
        (19, "EXC002", "wrap_raise"),
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("logger.exception('x')", True),
        ("self.log.exception('x')", True),
        ("logging.getLogger(__name__).exception('x')", True),
        ("logger.error('x', exc_info=True)", True),
        ("logger.warning('x', exc_info=exc)", True),
        ("traceback.print_exc()", True),
        ("logger.error('x', exc_info=False)", False),
        ("logger.error('x: %s', exc)", False),
        ("task.exception()", False),
        ("def later():\n        logger.exception('x')", False),
    ],
)
def test_logs_traceback(body, expected):
    code = f"import traceback\ntry:\n    work()\nexcept Exception as exc:\n    {body}\n"
    resolve = {"traceback.print_exc": "traceback.print_exc"}.get

    def qualify(expr):
        parts = []
        while isinstance(expr, ast.Attribute):
            parts.append(expr.attr)
            expr = expr.value
        return resolve(".".join([getattr(expr, "id", "?"), *reversed(parts)]))

    assert logs_traceback(handler_of(code), qualify) is expected


# -- what is broad -------------------------------------------------------------------------------
def test_tuple_bare_base_exception_and_except_star_are_broad():
    result = run(
        {
            "app/x.py": """
                def a():
                    try:
                        work()
                    except (KeyError, BaseException):
                        pass

                def b():
                    try:
                        work()
                    except:
                        pass

                def c():
                    try:
                        work()
                    except* Exception:
                        pass

                def d():
                    try:
                        work()
                    except (KeyError, ValueError):
                        pass
            """
        }
    )
    assert [(f.location.line, f.evidence["catches"]) for f in result.findings] == [
        (4, "(KeyError, BaseException)"),
        (10, "bare"),
        (16, "Exception"),
    ]


def test_an_imported_exception_named_exception_is_not_broad():
    assert not run(
        {
            "app/x.py": """
                from app.errors import Error as Exception

                def load():
                    try:
                        work()
                    except Exception:
                        return None
            """
        }
    ).findings


# -- isolation and dispatch ------------------------------------------------------------------------
def test_safe_handler_that_logs_is_intentional_but_one_that_swallows_is_not():
    result = run(
        {
            "app/isolation.py": """
                import logging
                log = logging.getLogger(__name__)

                def safe_handler(func):
                    def run(*args):
                        try:
                            return func(*args)
                        except Exception:
                            log.exception("handler failed")
                    return run
            """,
            "app/quiet.py": """
                def safe_handler(func):
                    def run(*args):
                        try:
                            return func(*args)
                        except Exception:
                            return None
                    return run
            """,
        }
    )
    assert [f.location.path for f in result.findings] == ["app/quiet.py"]


def test_dispatch_to_a_loop_variable_or_parameter():
    result = run(
        {
            "app/bus.py": """
                import logging
                log = logging.getLogger(__name__)

                def publish(listeners, event):
                    for listener in listeners:
                        try:
                            listener(event)
                        except Exception:
                            log.exception("listener failed")

                def notify(event):
                    try:
                        send_mail(event)
                    except Exception:
                        log.exception("mail failed")
            """
        }
    )
    dispatch = {f.location.line: f.evidence["dispatch"] for f in result.findings}
    assert dispatch == {8: True, 14: False}
    assert result.findings[0].fix.codemod == "isolate-handlers"
    assert result.findings[1].fix.codemod == "narrow-except"


# -- what the try body raises ----------------------------------------------------------------------
def test_inner_handlers_and_earlier_clauses_remove_what_they_catch():
    finding = only(
        {
            "app/auth/tokens.py": """
                import json
                import jwt

                def claims(token, raw):
                    try:
                        try:
                            extra = json.loads(raw)
                        except ValueError:
                            extra = {}
                        return jwt.decode(token, "k", algorithms=["HS256"]) | extra
                    except jwt.ExpiredSignatureError:
                        return None
                    except Exception:
                        return None
            """
        }
    )
    assert finding.evidence["narrow_to"] == ["jwt.PyJWTError"]
    # The json error is handled inside; ExpiredSignatureError is not PyJWTError itself, so
    # PyJWTError still reaches the broad handler.
    assert [r["type"] for r in finding.evidence["raises"]] == ["jwt.PyJWTError"]


def test_a_reraising_inner_handler_does_not_stop_the_error():
    finding = only(
        {
            "app/db/io.py": """
                import logging
                log = logging.getLogger(__name__)

                def read(path):
                    try:
                        try:
                            return open(path).read()
                        except OSError:
                            log.warning("cannot read %s", path)
                            raise
                    except Exception:
                        return ""
            """
        }
    )
    assert finding.evidence["narrow_to"] == ["OSError"]


def test_project_exception_hierarchy_and_subsumption():
    finding = only(
        {
            "app/skills/errors.py": """
                class SkillError(Exception):
                    pass

                class SkillNotFound(SkillError):
                    pass
            """,
            "app/skills/registry.py": """
                from app.skills.errors import SkillError, SkillNotFound

                def find(name, table):
                    if name not in table:
                        raise SkillNotFound(name)
                    return table[name]

                def check(skill):
                    if not skill:
                        raise SkillError("empty")
            """,
            "app/skills/api.py": """
                from app.skills import registry

                def load(name, table):
                    try:
                        skill = registry.find(name, table)
                        registry.check(skill)
                        return skill
                    except Exception:
                        return None
            """,
        }
    )
    assert finding.location.path == "app/skills/api.py"
    assert {r["type"] for r in finding.evidence["raises"]} == {
        "app.skills.errors.SkillError",
        "app.skills.errors.SkillNotFound",
    }
    assert finding.evidence["narrow_to"] == ["app.skills.errors.SkillError"]


def test_typed_containers_context_managers_and_aliases():
    finding = only(
        {
            "app/db/pool.py": """
                import queue
                from collections.abc import Iterator
                from contextlib import contextmanager

                import psycopg

                Connection = psycopg.Connection[dict]

                class Pool:
                    def __init__(self) -> None:
                        self._idle: queue.LifoQueue[Connection] = queue.LifoQueue()

                    @contextmanager
                    def borrow(self) -> Iterator[Connection]:
                        yield self._idle.get_nowait()
            """,
            "app/api/health.py": """
                from app.db.pool import Pool

                pool = Pool()

                def ping() -> bool:
                    try:
                        with pool.borrow() as conn:
                            conn.execute("SELECT 1")
                        return True
                    except Exception:
                        return False
            """,
        }
    )
    assert finding.evidence["unresolved_calls"] == [], finding.evidence
    # `borrow()` runs `get_nowait()` on entering the `with`: an empty pool raises queue.Empty.
    assert finding.evidence["narrow_to"] == ["psycopg.Error", "queue.Empty"]
    via = {r["type"]: r["via"] for r in finding.evidence["raises"]}
    assert via["psycopg.Error"].startswith("conn.execute() at app/api/health.py:8")
    assert via["queue.Empty"].startswith("pool.borrow() at app/api/health.py:7")


def test_inherited_methods_and_re_exports():
    finding = only(
        {
            "app/clients/__init__.py": "from .base import Client\n",
            "app/clients/base.py": """
                import httpx

                class Base:
                    def get(self, url):
                        return httpx.get(url)

                class Client(Base):
                    pass
            """,
            "app/api/fetch.py": """
                from app.clients import Client

                def fetch(url):
                    try:
                        return Client().get(url)
                    except Exception:
                        return None
            """,
        }
    )
    assert finding.evidence["narrow_to"] == ["httpx.HTTPError"]


def test_lookups_in_the_body_itself_count():
    finding = only(
        {
            "app/api/seed.py": """
                import json

                def first_email(raw):
                    try:
                        return json.loads(raw)[0]["email"]
                    except Exception:
                        return None
            """
        }
    )
    assert finding.evidence["narrow_to"] == ["IndexError", "KeyError", "ValueError"]


def test_raising_exception_itself_cannot_be_narrowed():
    finding = only(
        {
            "app/api/x.py": """
                def check(value):
                    try:
                        if not value:
                            raise Exception("empty")
                        return value
                    except Exception:
                        return None
            """
        }
    )
    assert finding.evidence["narrow_to"] is None
    assert "raises `Exception` itself" in finding.evidence["narrow_reason"]


def test_unknown_calls_are_listed():
    finding = only(
        {
            "app/api/x.py": """
                def run(job):
                    try:
                        job.start()
                    except Exception:
                        pass
            """
        }
    )
    assert finding.evidence["unresolved_calls"] == [
        "job.start() at app/api/x.py:3: the callee is not resolved"
    ]
    assert finding.evidence["narrow_reason"].startswith("unknown: ")
    assert finding.evidence["narrow_to"] is None


def test_an_unknown_call_next_to_known_ones_makes_the_answer_unknown():
    """A DB call through an uncatalogued wrapper beside a mapped call: never narrowed to the
    mapped call's errors alone (the real app's tests went from 0 to 23 failures that way)."""
    finding = only(
        {
            "app/api/x.py": """
                import json

                import dbwrapper

                def load(raw, key):
                    try:
                        row = dbwrapper.fetch_one("SELECT data FROM t WHERE k = %s", key)
                        return json.loads(row)
                    except Exception:
                        return None
            """
        }
    )
    assert [r["type"] for r in finding.evidence["raises"]] == ["ValueError"]
    assert finding.evidence["narrow_to"] is None
    (unknown,) = finding.evidence["unresolved_calls"]
    assert "`dbwrapper.fetch_one` has no exception mapping" in unknown
    assert '"dbwrapper.fetch_one" = [...]' in unknown
    assert "[tool.gathering-consolidate.checks.EXC.calls]" in unknown


def test_unknown_calls_deep_in_a_callee_are_unknown_at_the_handler():
    finding = only(
        {
            "app/api/x.py": """
                import json

                from app.store import save

                def handle(raw):
                    try:
                        save(json.loads(raw))
                    except Exception:
                        return False
            """,
            "app/store.py": """
                def save(row):
                    _write(row)

                def _write(row):
                    row.client.put(row)
            """,
        }
    )
    assert finding.evidence["narrow_to"] is None
    (unknown,) = finding.evidence["unresolved_calls"]
    assert unknown.startswith("save() at app/api/x.py:7 -> _write() at app/store.py:2 ->")
    assert "row.client.put() at app/store.py:5" in unknown


def test_an_unknown_call_a_callee_swallows_is_not_unknown():
    findings = run(
        {
            "app/api/x.py": """
                import json

                def save(row):
                    try:
                        row.client.put(row)
                    except Exception:
                        pass

                def handle(raw):
                    try:
                        save(json.loads(raw))
                    except Exception:
                        return False
            """,
        }
    ).findings
    (finding,) = [f for f in findings if f.location.line == 12]
    assert finding.evidence["unresolved_calls"] == []
    assert finding.evidence["narrow_to"] == ["ValueError"]


def test_recursion_terminates():
    finding = only(
        {
            "app/api/x.py": """
                import json

                def walk(node):
                    for child in node:
                        walk(child)
                    return json.loads(node)

                def safe(node):
                    try:
                        return walk(node)
                    except Exception:
                        return None
            """
        }
    )
    assert finding.evidence["narrow_to"] == ["ValueError"]


# -- options and rule data --------------------------------------------------------------------------
def test_calls_option_extends_the_map():
    files = {
        "app/agents/llm.py": """
            from app.vendor import client

            def ask(prompt):
                try:
                    return client.complete(prompt)
                except Exception:
                    return ""
        """
    }
    assert only(files).evidence["narrow_to"] is None
    extended = only(files, calls={"app.vendor.client.*": ["app.vendor.VendorError"]})
    assert extended.evidence["narrow_to"] == ["app.vendor.VendorError"]


def test_modules_option_applies_when_calls_tell_nothing():
    files = {
        "app/storage/blobs.py": """
            def save(store, blob):
                try:
                    store.put(blob)
                except Exception:
                    return False
        """
    }
    assert only(files).evidence["narrow_to"] is None
    ruled = only(files, modules=[{"paths": ["app/storage/**"], "types": ["OSError"]}])
    # `store.put` is unknown: a module rule is a hint in the reason, never a narrowing.
    assert ruled.evidence["narrow_to"] is None
    assert ruled.evidence["narrow_reason"].endswith(
        "the module rule for this path suggests OSError"
    )
    files["app/storage/blobs.py"] = """
        def save(blob):
            try:
                print(blob)
            except Exception:
                return False
    """
    ruled = only(files, modules=[{"paths": ["app/storage/**"], "types": ["OSError"]}])
    assert (ruled.evidence["narrow_to"], ruled.evidence["narrow_source"]) == (["OSError"], "module")


def test_module_rule_needs_its_package_in_the_project():
    files = {
        "app/db/cache.py": """
            def get(store, key):
                try:
                    return store.get(key)
                except Exception:
                    return None
        """
    }
    assert "module rule" not in only(files).evidence["narrow_reason"]  # nobody imports psycopg
    files["app/db/engine.py"] = "import psycopg\n"
    assert (
        only(files)
        .evidence["narrow_reason"]
        .endswith("module rule for this path suggests psycopg.Error")
    )


def test_bad_option_is_reported_as_an_error():
    base = load_config(REPO / "tests")
    config = Config(
        root=base.root, tiers=base.tiers, check_options={"EXC": {"calls": {"x.*": "ValueError"}}}
    )
    checks = [c for c in registry() if c.id.startswith("EXC")]
    files = {"app/x.py": "try:\n    f()\nexcept Exception:\n    pass\n"}
    result = audit_sources(sources_from_mapping(files), config, checks)
    assert result.errors and "must be a list of type names" in result.errors[0]


# -- findings: severity, tier, fingerprint ----------------------------------------------------------
def test_reraising_is_less_severe_than_swallowing():
    result = run(
        {
            "app/db/x.py": """
                def a():
                    try:
                        work()
                    except Exception:
                        raise

                def b():
                    try:
                        work()
                    except Exception:
                        return None
            """
        }
    )
    reraised, swallowed = result.findings
    assert (reraised.rule, swallowed.rule) == ("EXC002", "EXC001")
    assert reraised.severity < swallowed.severity
    assert (
        reraised.tier == swallowed.tier == 2
    )  # `work()` is unknown: not proven off a request path


def test_tiers_follow_the_target_configuration(tmp_path):
    # A tier set in the target replaces that tier's default globs.
    (tmp_path / "pyproject.toml").write_text(
        '[tool.gathering-consolidate.tiers]\n1 = ["core/**"]\n'
    )
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "x.py").write_text("try:\n    f()\nexcept Exception:\n    pass\n")
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "y.py").write_text("try:\n    f()\nexcept Exception:\n    pass\n")
    result = audit(tmp_path, select=["EXC"], cache=False)
    assert {f.location.path: f.tier for f in result.findings} == {"core/x.py": 1, "db/y.py": 3}


def test_fingerprint_survives_edits_elsewhere():
    code = """
        def a():
            try:
                work()
            except Exception:
                pass
    """
    before = only({"app/x.py": code})
    after = only({"app/x.py": "import os\n\n\n" + textwrap.dedent(code)})
    assert before.location.line != after.location.line
    assert before.fingerprint == after.fingerprint


def test_suppression_is_respected():
    result = run(
        {
            "app/x.py": """
                try:
                    f()
                except Exception:  # consolidate: ignore[EXC001] shutdown path, errors are moot
                    pass
            """
        }
    )
    assert not [f for f in result.findings if f.rule == "EXC001"]
    assert [s.finding.rule for s in result.suppressed] == ["EXC001"]


# -- the summary -------------------------------------------------------------------------------------
def test_summary_tables():
    result = run(
        {
            "app/store/a.py": """
                def save(db_session, row):
                    try:
                        db_session.add(row)
                    except Exception:
                        pass
                    try:
                        db_session.commit()
                    except Exception:
                        raise
            """,
            "app/skills/b.py": """
                try:
                    f()
                except Exception:
                    return_value = None
            """,
        }
    )
    by_tier, by_file = summarize(list(result.findings))
    assert by_tier.columns[0] == "Tier" and by_tier.columns[-1] == "Total"
    rows = {row[0]: dict(zip(by_tier.columns, row, strict=True)) for row in by_tier.rows}
    assert rows[1]["pass"] == 1 and rows[1]["reraise"] == 1 and rows[1]["Total"] == 2
    assert rows[3]["other"] == 1
    assert rows["all"]["Total"] == 3
    assert by_file.rows == (("app/skills/b.py", 3, 1, 0, 1), ("app/store/a.py", 1, 1, 1, 2))
    assert summarize([]) == []


# -- the fixture ---------------------------------------------------------------------------------------
def test_fixture_scores_with_tier_and_behaviour_on_every_handler():
    result = audit(FIXTURE_APP, select=["EXC"], cache=False)
    expectations = [e for e in load_annotations(FIXTURE_APP) if e.family == "EXC"]
    assert all(
        {k for k, _ in e.attrs} >= {"tier", "behaviour"} for e in expectations if e.kind == "expect"
    )
    scores = score(result.findings, expectations, ["EXC"])["EXC"]
    assert (scores.precision, scores.recall) == (1.0, 1.0), scores.report()


def test_every_tier1_handler_of_the_fixture_has_a_narrowing_or_names_what_is_unknown():
    result = audit(FIXTURE_APP, select=["EXC"], cache=False)
    tier1 = [f for f in result.findings if f.tier == 1]
    assert tier1
    for f in tier1:
        evidence = f.evidence
        assert evidence["tier_reason"], f
        if not evidence["narrow_to"] and evidence["narrow_reason"].startswith("unknown: "):
            assert evidence["unresolved_calls"], f
    assert sum(bool(f.evidence["narrow_to"]) for f in tier1) >= 5


# -- tiers from meaning ------------------------------------------------------------------------------
def _tier(code: str, path: str = "app/any/x.py", **files: str) -> tuple[int, str]:
    findings = run({path: code, **files}).findings
    (finding,) = [f for f in findings if f.location.path == path]
    return finding.tier, finding.evidence["tier_reason"]


def test_tier_1_through_a_database_write_deep_in_the_call_graph():
    tier, why = _tier(
        """
        from app.repo import save

        def handle(db_session, row):
            try:
                save(db_session, row)
            except Exception:
                return None
        """,
        **{
            "app/repo.py": """
                def save(session, row):
                    _write(session, row)

                def _write(session, row):
                    session.commit()
            """
        },
    )
    assert tier == 1
    assert why.startswith("save() at app/any/x.py:5 -> _write() at app/repo.py:2 ->")
    assert why.endswith("a database write")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('db.execute("UPDATE t SET a = 1")', 1),
        ('db.execute_one("INSERT INTO t VALUES (1)")', 1),
        ('db.execute("SELECT 1")', 2),
        ("cursor.execute(sql)", 1),  # a query runner: the statement may write
        ("verify_password(raw, hashed)", 1),
        ("count_tokens(text)", 2),  # LLM tokens, not credentials
        ("settings.api_key.get_secret_value()", 1),
        ("charge_customer(order)", 2),  # no money word the rules name: "charge" is too broad
        ("refund_payment(order)", 1),
    ],
)
def test_tier_1_vocabulary(body, expected):
    code = f"def f(db, cursor, sql, raw, hashed, text, settings, order):\n    try:\n        {body}\n    except Exception:\n        return None\n"
    assert _tier(code)[0] == expected


def test_a_secret_read_by_a_helper_does_not_make_tier_1():
    tier, _ = _tier(
        """
        from app.clients import make_client

        def fetch(config):
            try:
                return make_client(config).get("/x")
            except Exception:
                return None
        """,
        **{
            "app/clients.py": """
                import httpx

                def make_client(config):
                    return httpx.Client(headers={"Authorization": config.key.get_secret_value()})
            """
        },
    )
    assert tier == 2


def test_tier_2_in_background_work_and_3_at_import_and_in_scripts():
    code = """
        import asyncio

        async def loop(queue):
            while True:
                try:
                    await queue.get()
                except Exception:
                    pass

        def start(queue):
            return asyncio.create_task(loop(queue))
    """
    assert _tier(code) == (2, "in background work (handed to a thread or task queue)")
    script = """
        def main():
            try:
                run()
            except Exception:
                pass

        if __name__ == "__main__":
            main()
    """
    assert _tier(script) == (3, "a command-line script")
    assert (
        _tier("try:\n    import x\nexcept Exception:\n    x = None\n")[1] == "runs once, at import"
    )
    assert (
        _tier(
            "def t():\n    try:\n        db.commit()\n    except Exception:\n        pass\n",
            path="tests/test_x.py",
        )[0]
        == 3
    )


def test_the_projects_own_tiers_override_meaning(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.gathering-consolidate.tiers]\n3 = ["app/**"]\n')
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "x.py").write_text(
        "def f(db):\n    try:\n        db.commit()\n    except Exception:\n        pass\n"
    )
    (finding,) = audit(tmp_path, select=["EXC001"], cache=False).findings
    assert (finding.tier, finding.evidence["tier_reason"]) == (
        3,
        "the project's tier for this path",
    )


def test_tier_one_from_the_function_name_and_from_vector_store_writes():
    """A handler in a function whose name says what it guards (`verify_access_key`) and one whose
    try body upserts rows (`self.index.upsert(...)`, receiver type unknown) or writes through a
    vector database client are tier 1; `fetch_model_tokens` counts LLM tokens, not credentials."""
    result = run(
        {
            "svc/llm.py": """\
                import logging
                from qdrant_client import QdrantClient

                log = logging.getLogger(__name__)


                class Store:
                    def __init__(self, index, client: QdrantClient):
                        self.index = index
                        self.client = client

                    def verify_access_key(self, key):
                        try:
                            return bool(self.index.describe(key))
                        except Exception:
                            return False

                    def add(self, vectors):
                        try:
                            self.index.upsert(vectors=vectors)
                        except Exception:
                            log.warning("upsert failed")

                    def fetch_model_tokens(self, name):
                        try:
                            return self.index.describe(name)["tokens"]
                        except Exception:
                            return 0
            """
        }
    )
    tiers = {f.symbol.rpartition(".")[2]: f.tier for f in result.findings}
    reasons = {
        f.symbol.rpartition(".")[2]: dict(f.evidence)["tier_reason"] for f in result.findings
    }
    # nothing in these files calls fetch_model_tokens: tier 3, and never 1 for LLM tokens
    assert tiers == {"verify_access_key": 1, "add": 1, "fetch_model_tokens": 3}, reasons
    assert "apikey" in reasons["verify_access_key"] or "accesskey" in reasons["verify_access_key"]
    assert "upsert" in reasons["add"]


def test_calls_that_need_a_running_loop_or_data_raise_what_they_raise():
    """`asyncio.create_task` outside a running loop raises RuntimeError, `min([])` ValueError:
    a narrowed handler keeps them (the before app's event bus emit was narrowed to
    StopIteration alone, and a sync caller then crashed on RuntimeError)."""
    finding = only(
        {
            "svc/bus.py": """\
                import asyncio
                import logging

                log = logging.getLogger(__name__)


                async def work():
                    return 1


                def publish(values):
                    try:
                        asyncio.create_task(work())
                        return min(values)
                    except Exception:
                        log.warning("publish failed")
            """
        }
    )
    assert set(dict(finding.evidence)["narrow_to"]) == {"RuntimeError", "ValueError"}
