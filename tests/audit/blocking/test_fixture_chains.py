"""What the issue asks of the fixture app beyond the annotations: a transitive chain through a
helper to the DB service, and a handler `async-to-def` must refuse because it awaits."""

from __future__ import annotations

import pytest

from gathering_consolidate import audit
from gathering_consolidate.audit.blocking.helpers import analysis_of_sources
from gathering_consolidate.audit.blocking.strategies import plan_async_db, plan_async_to_def
from tests.conftest import FIXTURE_APP


@pytest.fixture(scope="module")
def findings():
    return audit(FIXTURE_APP, select=["ASY"], cache=False).findings


@pytest.fixture(scope="module")
def analysis():
    files = {
        p.relative_to(FIXTURE_APP).as_posix(): p.read_text()
        for p in sorted(FIXTURE_APP.rglob("*.py"))
        if "__pycache__" not in p.parts
    }
    return analysis_of_sources(files)


def test_a_handler_reaches_the_db_service_through_helpers(findings):
    chains = [
        f.evidence["chain"]
        for f in findings
        if f.rule == "ASY001"
        and f.evidence["route"]
        and ".DatabaseService." in f.evidence["chain"][-1]
        and ".DatabaseService." not in f.evidence["chain"][1]
    ]
    # handler -> module helper(s) -> DatabaseService.execute*, across modules and within one.
    assert [
        "gathering.api.routers.pipelines.get_run_logs",
        "gathering.db.reporting.run_logs",
        "gathering.api.dependencies.DatabaseService.execute",
    ] in chains
    assert [
        "gathering.api.routers.circles.circle_summary",
        "gathering.api.routers.circles._build_circle_summary",
        "gathering.api.routers.circles._fetch_member_rows",
        "gathering.api.dependencies.DatabaseService.execute",
    ] in chains


def test_every_route_finding_names_a_strategy(findings):
    routed = [
        f for f in findings if f.rule in ("ASY001", "ASY002", "ASY005") and f.evidence["route"]
    ]
    assert routed
    assert {f.evidence["strategy"] for f in routed} <= {"A", "B", "both", "none"}
    assert all(f.evidence["strategy_reason"] for f in routed)


def test_async_to_def_refuses_a_handler_that_awaits(analysis):
    plan = plan_async_to_def(analysis)
    awaiting = {q: why for q, why in plan.refused.items() if why.startswith("awaits")}
    assert "gathering.api.routers.scheduled_actions.update_action" in awaiting
    assert (
        "scheduler.reload_action"
        in awaiting["gathering.api.routers.scheduled_actions.update_action"]
    )
    # `return await get_pipeline(...)`: the awaited handler converts, its call site is rewritten.
    assert "gathering.api.routers.pipelines.get_pipeline" in plan.convertible
    rewritten = {caller for caller, _ in plan.rewrites}
    assert "gathering.api.routers.pipelines.update_pipeline" in rewritten


def test_async_db_converts_the_request_path_and_leaves_background_code(analysis):
    plan = plan_async_db(analysis)
    assert plan.possible, plan.blockers
    assert plan.service == "gathering.api.dependencies.DatabaseService"
    assert "gathering.db.reporting.run_logs" in plan.to_async
    assert "gathering.orchestration.scheduler.Scheduler._execute_action" in plan.left
