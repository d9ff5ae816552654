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


# -- the dispatch idioms of real event buses (issue 10 point 4) --------------------------------
IDIOMS = """
    import asyncio
    import inspect
    import logging

    logger = logging.getLogger(__name__)


    class EventBus:
        def __init__(self, loop=None):
            self._subscribers = {}
            self._loop = loop

        async def _safe_invoke(self, handler, event):
            try:
                result = handler(event)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                logger.exception("subscriber %s failed", handler)

        async def publish(self, event):
            for handler in self._subscribers.get(event.type, []):
                handler(event)

        async def broadcast(self, event):
            try:
                await asyncio.gather(*(h(event) for h in self._subscribers[event.type]))
            except Exception:
                logger.exception("broadcast failed")

        async def fanout(self, event, handlers):
            await asyncio.gather(*(h(event) for h in handlers), return_exceptions=True)

        def schedule(self, event):
            for sub in self._subscribers.get(event.type, []):
                asyncio.create_task(sub.callback(event))
                self._loop.call_soon(sub.on_sync, event)

        async def notify(self, listeners, event):
            for listener in listeners:
                try:
                    value = listener.on_event(event)
                    if inspect.isawaitable(value):
                        value = await value
                except Exception:
                    pass
"""


def test_every_idiom_is_recognised_and_bare_loops_need_the_option():
    files = {"app/__init__.py": "", "app/bus.py": IDIOMS}
    result = plan(IsolateHandlers, files)
    after = changed(result, "app/bus.py").after
    assert "except Exception" not in after
    assert "        result = safe_handler(\n            handler," in after
    assert "        if asyncio.iscoroutine(result):\n            await result\n" in after
    assert (
        "        await asyncio.gather(\n            *(\n"
        '                safe_handler(h, logger=logger, message="broadcast failed")(event)\n'
        "                for h in self._subscribers[event.type]\n            ),\n        )\n"
    ) in after  # laid out as a formatter would, within the line length
    assert "gather(*(safe_handler(h)(event) for h in handlers), return_exceptions=True)" in after
    assert "asyncio.create_task(safe_handler(sub.callback)(event))" in after
    assert "self._loop.call_soon(safe_handler(sub.on_sync), event)" in after
    assert "value = safe_handler(listener.on_event)(event)" in after
    assert "            handler(event)\n" in after  # the bare loop: listed, not changed
    ((line, reason),) = refusals(result)
    assert line == 23 and "calls each subscriber directly in publish" in reason
    assert any("gather's try is gone" in w for w in changed(result, "app/bus.py").warnings)
    bare = plan(IsolateHandlers, files, **{"bare-loops": True})
    assert "            safe_handler(handler)(event)\n" in changed(bare, "app/bus.py").after
    assert not refusals(bare)
    again = {
        **files,
        "app/bus.py": changed(bare, "app/bus.py").after,
        "app/isolation.py": HELPER_SOURCE,
    }
    assert not plan(IsolateHandlers, again, **{"bare-loops": True}).changes  # idempotent


def test_migrated_bus_isolates_each_subscriber_at_run_time(tmp_path):
    files = {"app/__init__.py": "", "app/bus.py": IDIOMS}
    result = plan(IsolateHandlers, files, **{"bare-loops": True})
    (tmp_path / "app").mkdir()
    for change in result.changes:
        (tmp_path / change.path).write_text(change.after)
    (tmp_path / "app" / "__init__.py").write_text("")
    script = dedent("""
        import asyncio, logging, types
        from app.bus import EventBus
        failures = []
        class Count(logging.Handler):
            def emit(self, record):
                failures.append(record.exc_info[1].args[0])
        logging.getLogger().addHandler(Count())
        logging.getLogger().setLevel(logging.ERROR)
        calls = []
        async def bad(e): raise RuntimeError("async")
        def bad_sync(e): raise RuntimeError("sync")
        async def good(e): calls.append("a")
        def good_sync(e): calls.append("s")
        class Sub:
            def __init__(self, f): self.callback = self.on_event = f; self.on_sync = good_sync
        async def main():
            bus = EventBus(asyncio.get_running_loop())
            e = types.SimpleNamespace(type="t")
            for h in (bad, bad_sync, good):
                await bus._safe_invoke(h, e)
            bus._subscribers = {"t": [bad_sync, good_sync]}
            await bus.publish(e)
            bus._subscribers = {"t": [bad, good, bad]}
            await bus.broadcast(e)
            await bus.fanout(e, [bad, good])
            await bus.notify([Sub(bad), Sub(bad_sync), Sub(good)], e)
            bus._subscribers = {"t": [Sub(bad), Sub(good)]}
            bus.schedule(e)
            await asyncio.sleep(0.05)
        asyncio.run(main())
        print(sorted(calls), sorted(failures))
    """)
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    # Every good subscriber ran; every failure was logged once, none escaped.
    good, failed = out.stdout.strip().split("] [")
    assert good == "['a', 'a', 'a', 'a', 'a', 's', 's', 's'"
    assert failed == ", ".join(["'async'"] * 6 + ["'sync'"] * 3) + "]"


def test_a_method_of_a_received_object_is_not_a_dispatch():
    code = """
        import logging
        logger = logging.getLogger(__name__)

        async def health(db, rows):
            try:
                db.execute_one("SELECT 1")
            except Exception:
                logger.exception("db down")
            for row in rows:
                try:
                    row.save()
                except Exception:
                    logger.exception("save failed")
    """
    result = plan(IsolateHandlers, {"app/__init__.py": "", "app/health.py": code})
    assert not result.changes and not refusals(result)
