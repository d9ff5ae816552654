"""Scenarios for `isolate-handlers`: the rewrite, where the helper goes, refusals, and what the
written `safe_handler` does at run time (it is the migrated app's code, not ours)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import types

import pytest

from gathering_consolidate.audit.base import dedent
from gathering_consolidate.codemods.isolate_handlers import HELPER_SOURCE, IsolateHandlers
from gathering_consolidate.codemods.narrow_except import NarrowExcept
from tests.codemods._exc_support import changed, plan, refusals
from tests.conftest import REPO

BUS = """
    import logging

    logger = logging.getLogger(__name__)


    class Bus:
        async def _invoke(self, handler, event):
            try:
                await handler(event)
            except Exception:
                logger.exception("handler %s failed", handler)
"""


def test_helper_is_written_once_for_several_sites():
    files = {
        "app/__init__.py": "",
        "app/events.py": BUS,
        "app/hooks.py": """
            import logging
            log = logging.getLogger(__name__)

            def run(hooks, payload):
                for hook in hooks:
                    try:
                        hook(payload)
                    except Exception:
                        pass
        """,
    }
    result = plan(IsolateHandlers, files)
    assert {c.path for c in result.changes} == {"app/events.py", "app/hooks.py", "app/isolation.py"}
    helper = changed(result, "app/isolation.py")
    assert helper.before is None and helper.after == HELPER_SOURCE
    hooks = changed(result, "app/hooks.py").after
    assert "        safe_handler(hook)(payload)\n" in hooks  # `pass`: the default message
    assert "from app.isolation import safe_handler\n" in hooks


def test_existing_helper_is_reused_and_a_foreign_one_refused():
    files = {"app/__init__.py": "", "app/events.py": BUS, "app/isolation.py": HELPER_SOURCE}
    result = plan(IsolateHandlers, files)
    assert {c.path for c in result.changes} == {"app/events.py"}
    files["app/isolation.py"] = "def something_else():\n    pass\n"
    result = plan(IsolateHandlers, files)
    assert not result.changes
    assert "exists and does not define safe_handler" in refusals(result)[0][1]


def test_helper_option_and_files_outside_a_package():
    result = plan(IsolateHandlers, {"events.py": BUS})
    assert not result.changes
    assert "not inside a package" in refusals(result)[0][1]
    result = plan(IsolateHandlers, {"events.py": BUS}, helper="support/isolation.py")
    assert "support/isolation.py" in {c.path for c in result.changes}
    assert "from support.isolation import safe_handler" in changed(result, "events.py").after


def test_name_clash_is_refused():
    files = {
        "app/__init__.py": "",
        "app/events.py": "from other import safe_handler\n" + dedent(BUS),
    }
    result = plan(IsolateHandlers, files)
    assert not result.changes
    assert "already means something else" in refusals(result)[0][1]


def test_warning_level_logging_is_refused():
    code = BUS.replace('logger.exception("handler %s failed", handler)', 'logger.warning("x")')
    result = plan(IsolateHandlers, {"app/__init__.py": "", "app/events.py": code})
    assert not result.changes
    assert "does not log the error with its traceback" in refusals(result)[0][1]


def test_narrow_except_leaves_dispatch_sites_to_this_codemod():
    files = {"app/__init__.py": "", "app/orchestration/events.py": BUS}
    result = plan(NarrowExcept, files, tier=0)
    assert not result.changes
    assert "run isolate-handlers" in refusals(result)[0][1]


def test_migrated_code_audits_clean_and_passes_the_lint_guard(tmp_path):
    files = {"app/__init__.py": "", "app/events.py": BUS}
    result = plan(IsolateHandlers, files)
    from tests.audit.exceptions.test_exceptions import run

    migrated = {**files, **{c.path: c.after for c in result.changes}}
    assert run(migrated).findings == ()
    (tmp_path / "isolation.py").write_text(HELPER_SOURCE)
    ruff = subprocess.run(
        [str(REPO / ".venv/bin/ruff"), "check", "--isolated", "--select", "BLE,S110,S112,E722,E,F,B,UP,I",
         "--target-version", "py311", str(tmp_path / "isolation.py")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert ruff.returncode == 0, ruff.stdout


# -- the written helper, at run time --------------------------------------------------------------------
@pytest.fixture
def safe_handler():
    module = types.ModuleType("isolation_under_test")
    exec(compile(HELPER_SOURCE, "isolation.py", "exec"), module.__dict__)
    return module.safe_handler


def test_async_handler_failure_is_logged_and_swallowed(safe_handler, caplog):
    calls = []

    async def handler(event):
        calls.append(event)
        raise RuntimeError("boom")

    log = logging.getLogger("bus")
    wrapped = safe_handler(handler, logger=log, message="handler %s failed for %s", args=("h", 7))
    with caplog.at_level(logging.ERROR, logger="bus"):
        assert asyncio.run(wrapped(7)) is None
    assert calls == [7]
    (record,) = caplog.records
    assert record.getMessage() == "handler h failed for 7"
    assert record.exc_info and record.exc_info[0] is RuntimeError


def test_sync_handler_and_decorator_use(safe_handler, caplog):
    @safe_handler
    def handler(event):
        return event * 2

    assert handler(4) == 8
    assert handler.__name__ == "handler"

    def broken(event):
        raise ValueError(event)

    with caplog.at_level(logging.ERROR):
        assert safe_handler(broken)(1) is None
    assert "broken failed" in caplog.records[0].getMessage()


def test_callable_returning_a_coroutine_is_guarded(safe_handler, caplog):
    async def fail(event):
        raise KeyError(event)

    class Handler:
        def __call__(self, event):
            return fail(event)

    with caplog.at_level(logging.ERROR):
        assert asyncio.run(safe_handler(Handler())(3)) is None
    assert caplog.records[0].exc_info[0] is KeyError


def test_async_callable_object_gets_an_async_wrapper(safe_handler):
    class Handler:
        async def __call__(self, event):
            return event + 1

    wrapped = safe_handler(Handler())
    assert asyncio.iscoroutinefunction(wrapped)
    assert asyncio.run(wrapped(1)) == 2


def test_base_exceptions_still_propagate(safe_handler):
    async def cancelled(event):
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(safe_handler(cancelled)(1))


def test_helper_does_not_import_this_tool():
    assert "gathering_consolidate" not in HELPER_SOURCE.replace("gathering-consolidate", "")
    assert sys.modules.get("isolation_under_test") is None
