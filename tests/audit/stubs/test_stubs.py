"""Scenarios for the STB family: route evidence across files, markers, and `stub_symbols`."""

from __future__ import annotations

import json

import pytest

from gathering_consolidate import audit
from gathering_consolidate.audit.astutil import words
from gathering_consolidate.audit.stubs import stub_symbols
from gathering_consolidate.audit.stubs.helpers import promises_action
from tests.audit._support import audit_files, found
from tests.conftest import FIXTURE_APP

SERVICE = """
    import logging
    logger = logging.getLogger(__name__)

    class PipelineService:
        def start_run(self, pipeline_id):
            # TODO: actually run the graph; simulated for now
            self.store.update(pipeline_id, status="completed")
"""


def test_route_reaches_a_method_through_a_unique_name():
    result = audit_files(
        {
            "app/services/pipelines.py": SERVICE,
            "app/api/pipelines.py": """
                from fastapi import APIRouter, Depends
                from app.services.pipelines import PipelineService
                router = APIRouter(prefix="/pipelines")

                @router.post("/{pipeline_id}/run")
                def run(pipeline_id: int, service: PipelineService = Depends()):
                    return service.start_run(pipeline_id)
            """,
        },
        ["STB"],
    )
    (finding,) = found(result, "STB001")
    assert finding.symbol == "app.services.pipelines.PipelineService.start_run"
    assert finding.evidence["route"] == "POST /pipelines/{pipeline_id}/run"
    assert finding.evidence["chain"] == [
        "app.api.pipelines.run",
        "app.services.pipelines.PipelineService.start_run",
    ]
    json.dumps(finding.evidence)  # evidence is plain data


def test_ambiguous_method_names_do_not_invent_a_route():
    result = audit_files(
        {
            "app/services/pipelines.py": SERVICE,
            "app/services/other.py": """
                class Other:
                    def start_run(self):
                        return 1
            """,
            "app/api/pipelines.py": """
                from fastapi import APIRouter
                router = APIRouter()

                @router.post("/run")
                def run(service):
                    return service.start_run(1)
            """,
        },
        ["STB"],
    )
    (finding,) = found(result, "STB001")
    assert finding.evidence["route"] is None


def test_a_route_reaches_a_function_through_a_package_reexport():
    """`services.start_run` names `app.services.start_run`, which the package re-exports from
    its `pipelines` module: followed through the re-export, not guessed by a name two modules
    define."""
    result = audit_files(
        {
            "app/services/__init__.py": "from .pipelines import start_run\n",
            "app/services/pipelines.py": """
                def start_run(store, pipeline_id):
                    # TODO: actually run the graph; simulated for now
                    store.update(pipeline_id, status="completed")
            """,
            "app/services/other.py": """
                def start_run():
                    return 1
            """,
            "app/api/pipelines.py": """
                from fastapi import APIRouter
                from app import services
                router = APIRouter(prefix="/pipelines")

                @router.post("/{pipeline_id}/run")
                def run(pipeline_id: int, store=None):
                    return services.start_run(store, pipeline_id)
            """,
        },
        ["STB"],
    )
    (finding,) = found(result, "STB001")
    assert finding.symbol == "app.services.pipelines.start_run"
    assert finding.evidence["route"] == "POST /pipelines/{pipeline_id}/run"
    assert finding.evidence["chain"] == [
        "app.api.pipelines.run",
        "app.services.pipelines.start_run",
    ]


def test_background_task_callbacks_count_as_calls():
    result = audit_files(
        {
            "app/jobs.py": """
                def send_report(report_id):
                    # placeholder until the mailer exists
                    return {"status": "sent"}
            """,
            "app/api.py": """
                from fastapi import APIRouter, BackgroundTasks
                from app.jobs import send_report
                router = APIRouter()

                @router.post("/reports/{report_id}/send")
                def queue_report(report_id: int, tasks: BackgroundTasks):
                    tasks.add_task(send_report, report_id)
                    return {"queued": True}
            """,
        },
        ["STB"],
    )
    (finding,) = found(result, "STB001")
    assert finding.evidence["route"] == "POST /reports/{report_id}/send"
    assert finding.evidence["status"] == "sent"


def test_markers_of_a_nested_function_stay_with_it():
    result = audit_files(
        {
            "app/runner.py": """
                def run_all(jobs, execute):
                    def fallback(job):
                        # TODO: not implemented
                        return None
                    for job in jobs:
                        execute(job)
                    return {"status": "completed"}
            """
        },
        ["STB"],
    )
    assert found(result, "STB001") == []


def test_tool_comments_are_not_markers():
    result = audit_files(
        {
            "app/runner.py": """
                def finish(job, store):
                    store.save(job)
                    # consolidate: ignore[EXC001] not a stub, the job is saved above
                    job.status = "completed"  # noqa: stub-like but fine
            """
        },
        ["STB"],
    )
    assert found(result, "STB001") == []


def test_multiline_comment_is_one_marker():
    result = audit_files(
        {
            "app/runner.py": """
                def execute(run, db):
                    db.insert(run)
                    # TODO: hand the run to the worker. Until then the
                    # run is simulated and marked completed right away.
                    db.execute("UPDATE runs SET status = 'completed' WHERE id = %s", (run.id,))
            """
        },
        ["STB"],
    )
    (finding,) = found(result, "STB001")
    assert finding.evidence["marker"].startswith("TODO: hand the run to the worker. Until then")
    assert finding.evidence["status"] == "completed"


def test_websocket_and_app_routes_are_routes():
    result = audit_files(
        {
            "app/main.py": """
                from fastapi import FastAPI
                app = FastAPI()

                @app.websocket("/ws")
                async def stream(ws):
                    ...
            """
        },
        ["STB"],
    )
    (finding,) = found(result, "STB003")
    assert finding.evidence["route"] == "WEBSOCKET /ws"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("run_now", True),
        ("execute", True),
        ("send_welcome_email", True),
        ("trigger_action", True),
        ("_execute_action", True),
        ("get_run_status", False),
        ("on_send", False),
        ("emit_event", False),
        ("list_runs", False),
        ("validate", False),
    ],
)
def test_action_names(name, expected):
    assert promises_action(name) is expected


def test_words_split_snake_and_camel_case():
    assert words("_runScheduleNow") == ["run", "schedule", "now"]


def test_stub_symbols_map_symbols_to_findings():
    result = audit_files(
        {
            "app/api.py": """
                import logging
                from fastapi import APIRouter
                logger = logging.getLogger(__name__)
                router = APIRouter()

                @router.post("/a")
                # consolidate: fixme[STB003] GH-7 pausing lands next sprint
                def pause():
                    raise NotImplementedError

                @router.post("/b")
                # consolidate: ignore[STB003] reviewed: the gateway answers this route
                def resume():
                    pass

                @router.post("/c/run-now")
                def run_now():
                    logger.info("run requested")
                    return {"status": "triggered"}
            """
        },
        ["STB"],
    )
    symbols = stub_symbols(result)
    assert sorted(symbols) == ["app.api.pause", "app.api.run_now"]
    assert [f.rule for f in symbols["app.api.run_now"]] == ["STB002"]
    assert [f.rule for f in symbols["app.api.pause"]] == ["STB003"]


def test_stub_symbols_on_the_fixture():
    result = audit(FIXTURE_APP, select=["STB"], cache=False)
    symbols = stub_symbols(result)
    assert {
        "gathering.api.routers.pipelines.run_pipeline": ["STB001"],
        "gathering.api.routers.pipelines.pause_pipeline": ["STB003"],
        "gathering.api.routers.scheduled_actions.run_now": ["STB002"],
    }.items() <= {k: [f.rule for f in v] for k, v in symbols.items()}.items()
    (run,) = symbols["gathering.api.routers.pipelines.run_pipeline"]
    assert run.evidence["status"] == "completed"
    assert run.evidence["route"] == "POST /pipelines/{pipeline_id}/run"
    assert "Simulated" in run.evidence["marker"]
