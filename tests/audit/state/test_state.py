"""Scenarios for the MEM family: containers across files, process-wide instances, bounds."""

from __future__ import annotations

import json

from gathering_consolidate import audit
from gathering_consolidate.audit.base import dedent
from tests.audit._support import audit_files, found
from tests.conftest import FIXTURE_APP


def _lines(result, rule):
    return [(f.location.path, f.location.line) for f in found(result, rule)]


def test_a_store_filled_through_a_from_import_is_one_container():
    result = audit_files(
        {
            "app/store.py": "_sessions = {}\n",
            "app/api.py": """
                from app.store import _sessions

                def login(session_id, user):
                    _sessions[session_id] = user
            """,
        },
        ["MEM"],
    )
    assert _lines(result, "MEM001") == [("app/store.py", 1)]
    (critical,) = found(result, "MEM002")
    assert critical.evidence["state"] == "sessions"
    assert critical.symbol == "app.store"
    json.dumps(critical.evidence)


def test_a_local_that_shadows_the_store_is_not_the_store():
    result = audit_files(
        {
            "app/store.py": """
                _users = {}

                def build(rows):
                    _users = {}
                    for row in rows:
                        _users[row.id] = row
                    return _users
            """
        },
        ["MEM"],
    )
    assert result.findings == ()


def test_instances_count_only_when_process_wide():
    code = dedent("""
        class TokenBlacklist:
            def __init__(self):
                self._tokens = set()

            def revoke(self, token):
                self._tokens.add(token)
    """)
    assert audit_files({"app/auth.py": code}, ["MEM"]).findings == ()
    for wiring in (
        "blacklist = TokenBlacklist()",
        "def lifespan(app):\n    app.state.blacklist = TokenBlacklist()",
        "import functools\n@functools.lru_cache\ndef get_blacklist():\n    return TokenBlacklist()",
    ):
        result = audit_files({"app/auth.py": code + "\n" + wiring + "\n"}, ["MEM"])
        assert _lines(result, "MEM001") == [("app/auth.py", 3)], wiring
        assert found(result, "MEM002")[0].evidence["state"] == "tokens"


def test_a_singleton_created_in_another_module():
    result = audit_files(
        {
            "app/scheduler.py": """
                class Scheduler:
                    def __init__(self):
                        self._jobs = {}

                    def add(self, job):
                        self._jobs[job.id] = job
            """,
            "app/main.py": """
                from app.scheduler import Scheduler
                scheduler = Scheduler()
            """,
        },
        ["MEM"],
    )
    assert _lines(result, "MEM001") == [("app/scheduler.py", 3)]
    assert found(result, "MEM002")[0].evidence["state"] == "running jobs"


def test_entries_released_in_finally_are_bounded_but_still_critical():
    result = audit_files(
        {
            "app/runner.py": """
                _running: set[int] = set()

                async def run(job_id, execute):
                    _running.add(job_id)
                    try:
                        await execute(job_id)
                    finally:
                        _running.discard(job_id)
            """
        },
        ["MEM"],
    )
    assert found(result, "MEM001") == []
    (critical,) = found(result, "MEM002")
    assert critical.evidence["bounded"] is True
    assert critical.evidence["state"] == "running jobs"


def test_release_without_finally_does_not_bound():
    result = audit_files(
        {
            "app/runner.py": """
                _running = set()

                async def run(job_id, execute):
                    _running.add(job_id)
                    await execute(job_id)
                    _running.discard(job_id)
            """
        },
        ["MEM"],
    )
    assert len(found(result, "MEM001")) == 1


def test_decorator_registries_hold_code():
    result = audit_files(
        {
            "app/plugins.py": """
                _plugins = {}
                _converters = {}

                def plugin(name):
                    def register(fn):
                        _plugins[name] = fn
                        return fn
                    return register

                def converter(kind):
                    _converters[kind.__name__] = kind
                    return kind

                @converter
                class Upper:
                    pass
            """
        },
        ["MEM"],
    )
    assert result.findings == ()


def test_only_mutated_at_import_time_is_a_constant():
    result = audit_files(
        {
            "app/routes.py": """
                ROUTES = {}
                ROUTES["health"] = "/health"
                ROUTES.update({"docs": "/docs"})

                def route(name):
                    return ROUTES[name]
            """
        },
        ["MEM"],
    )
    assert result.findings == ()


def test_test_scaffolding_is_not_app_state():
    result = audit_files(
        {
            "tests/conftest.py": """
                _created_users = []

                def make_user(name):
                    _created_users.append(name)
            """
        },
        ["MEM"],
    )
    assert result.findings == ()


def test_fixture_stores_carry_their_evidence():
    result = audit(FIXTURE_APP, select=["MEM"], cache=False)
    by_name = {(f.rule, f.evidence["container"]): f for f in result.findings}
    users = by_name[("MEM001", "_users_store")]
    assert users.evidence["bounded"] is False
    assert users.evidence["kind"] == "dict"
    assert by_name[("MEM002", "_users_store")].evidence["state"] == "users"
    assert by_name[("MEM002", "_token_blacklist")].evidence["state"] == "tokens"
    assert by_name[("MEM002", "_running_actions")].evidence["state"] == "running jobs"
    assert by_name[("MEM002", "_actions")].evidence["state"] == "schedules"
    assert ("MEM001", "_history") in by_name
    assert ("MEM002", "_history") not in by_name
    assert ("MEM001", "_subscribers") not in by_name
