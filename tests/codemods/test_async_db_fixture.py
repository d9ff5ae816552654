"""`async-db --write` on a copy of the fixture app: its own suite still passes on a real
PostgreSQL and no route handler calls the sync service any more."""

from __future__ import annotations

import pytest

from gathering_consolidate.audit.blocking.helpers import analysis_of_sources
from gathering_consolidate.codemods.engine import apply, plan_migration
from tests.codemods.test_async_to_def_fixture import copy_fixture, run_fixture_suite

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SERVICE = "gathering.api.dependencies.DatabaseService"


def test_async_db_keeps_the_fixture_suite_green(tmp_path, fresh_database):
    app = copy_fixture(tmp_path / "app")
    plan = plan_migration(app, "async-db", unsafe_fixes=True)
    assert not plan.failures and not plan.refusals, plan.outcomes
    apply(plan)
    assert not plan_migration(app, "async-db", unsafe_fixes=True).changes  # idempotent

    files = {
        p.relative_to(app).as_posix(): p.read_text()
        for p in app.rglob("*.py")
        if "__pycache__" not in p.parts
    }
    index = analysis_of_sources(files).index
    assert index.routes
    for handler in index.routes:
        function = index.functions[handler]
        for target in index.targets[handler]:
            assert target is None or not target.name.startswith(SERVICE + "."), handler
        for param in function.params:
            entity = index.evaluate(param.value)
            assert entity != ("inst", SERVICE), (handler, param.name)

    assert run_fixture_suite(app, fresh_database) == set()
