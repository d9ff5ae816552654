"""The classifier agrees with the `# expect-tag:` annotations of the fixture app's tests, says
why, infers the tags from the code (not only from the marks already there), and honours the
reviewed overrides file."""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest

from gathering_consolidate.testsuite import inventory
from gathering_consolidate.testsuite.classify import classify
from gathering_consolidate.testsuite.overrides import OverridesError, load_overrides
from tests.conftest import FIXTURE_APP

_ANNOTATION = re.compile(r"^# expect-tag: (\w+)$")

#: Tests whose tag only their hand-written `@pytest.mark.stub` gives: what they pin (claims of
#: an unverified token, a settings model that accepts any column, a graph stored unvalidated,
#: a deleted schedule left in the scheduler) is no STB or MEM finding.
MARKED_ONLY = {
    "tests/test_auth_unit.py::test_peek_token_claims_reads_unverified_tokens",
    "tests/test_circles.py::test_settings_accept_any_column_name",
    "tests/test_pipelines.py::test_dangling_edges_are_accepted_on_create",
    "tests/test_scheduled_actions.py::test_deleted_actions_stay_in_the_scheduler",
}


def annotations(root: Path) -> dict[str, str]:
    """`path::test` -> the tag annotated on the line before the test's first decorator."""
    found: dict[str, str] = {}
    for path in sorted((root / "tests").glob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for node in ast.parse(text).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                match = _ANNOTATION.match(lines[first - 2]) if first > 1 else None
                if match:
                    found[f"tests/{path.name}::{node.name}"] = match.group(1)
    return found


@pytest.fixture(scope="module")
def fixture_classification():
    return classify(inventory(FIXTURE_APP))


def test_every_fixture_test_is_annotated(fixture_classification):
    annotated = annotations(FIXTURE_APP)
    tests = {v.test for v in fixture_classification.verdicts}
    assert tests == set(annotated)


def test_verdicts_equal_the_annotations(fixture_classification):
    annotated = annotations(FIXTURE_APP)
    wrong = {
        v.test: (v.tag, annotated[v.test])
        for v in fixture_classification.verdicts
        if v.tag != annotated[v.test]
    }
    assert wrong == {}
    assert fixture_classification.by_tag() == {
        "stub": 15, "contract": 77, "integration": 2, "unit": 49,
    }  # fmt: skip


def test_evidence_alone_finds_the_tags(fixture_classification):
    """What the code says, without the marks already there: equal to the annotations but for
    the hand-marked stubs no finding explains; those are listed as disagreements."""
    annotated = annotations(FIXTURE_APP)
    differs = {v.test for v in fixture_classification.verdicts if v.inferred != annotated[v.test]}
    assert differs == MARKED_ONLY
    assert len(fixture_classification.disagreements) == len(MARKED_ONLY)
    # and the classifier found stubs nobody had marked
    found = {
        v.test
        for v in fixture_classification.verdicts
        if v.source == "inferred" and v.tag == "stub"
    }
    assert found == {
        "tests/test_auth_unit.py::test_blacklist_purge_removes_only_expired_entries",
        "tests/test_auth_unit.py::test_blacklisted_token_is_reported",
        "tests/test_pipelines.py::test_run_logs_endpoint_matches_run",
        "tests/test_scheduled_actions.py::test_running_actions_survive_a_restart",
    }


def test_evidence_names_the_finding(fixture_classification):
    by_test = {v.test: v for v in fixture_classification.verdicts}
    patched = by_test["tests/test_auth_contract.py::test_replacing_the_store_forgets_accounts"]
    assert (
        "patches `_users_store`, an in-memory user store, MEM002 at gathering/api/auth.py:39"
        in patched.evidence
    )
    through = by_test["tests/test_auth_unit.py::test_user_ids_are_uuid_strings"]
    assert any("through fixture `isolated_user_store`" in e for e in through.evidence)
    route = by_test["tests/test_pipelines.py::test_pause_is_not_implemented"]
    assert any("STB003 at gathering/api/routers/pipelines.py:" in e for e in route.evidence)
    assert any("expects an error from `POST /pipelines/X/pause`" in e for e in route.evidence)
    instant = by_test[
        "tests/test_scheduled_actions.py::test_trigger_reports_success_but_nothing_runs"
    ]
    assert any("right after `POST /scheduled-actions/X/trigger`" in e for e in instant.evidence)
    # a 404 on the fake route is not its fake answer; a test of the real outcome is no stub
    assert (
        by_test["tests/test_pipelines.py::test_run_unknown_pipeline_is_404"].inferred == "contract"
    )
    assert by_test["tests/test_pipelines.py::test_run_calls_agent_nodes"].inferred == "contract"
    db = by_test["tests/test_skills.py::test_registry_loads_lazily_once"]
    assert db.tag == "integration"
    assert any("`psycopg.connect` at tests/conftest.py" in e for e in db.evidence)


APP = {
    "pyproject.toml": '[project]\nname = "mini"\n\n[tool.pytest.ini_options]\n',
    "mini/__init__.py": "",
    "mini/store.py": """
        from fastapi import APIRouter

        router = APIRouter()
        _users_store: dict[str, dict] = {}


        def create_user(email: str) -> dict:
            _users_store[email] = {"email": email}
            return _users_store[email]


        @router.post("/jobs/{job_id}/run")
        def run_job(job_id: int) -> dict:
            # TODO: actually run the job; simulated for now
            return {"id": job_id, "status": "completed"}
    """,
    "tests/__init__.py": "",
    "tests/test_mini.py": """
        import subprocess

        import httpx
        import psycopg
        import pytest
        from fastapi.testclient import TestClient

        from mini import store


        def test_patches_the_store(monkeypatch):
            monkeypatch.setattr(store, "_users_store", {})
            assert store.create_user("a@b.c")["email"] == "a@b.c"


        def test_reads_the_store():
            store.create_user("x@y.z")
            assert "x@y.z" in store._users_store


        def test_run_is_instant(client):
            body = client.post("/jobs/1/run").json()
            assert body["status"] == "completed"


        def test_contract():
            with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as http:
                assert http.get("/health").status_code == 200


        def test_database():
            with psycopg.connect("dbname=x") as conn:
                assert conn.execute("select 1").fetchone() == (1,)


        def test_subprocess():
            assert subprocess.run(["true"]).returncode == 0


        def test_pure():
            assert sorted([2, 1]) == [1, 2]


        @pytest.fixture
        def client():
            from fastapi import FastAPI

            app = FastAPI()
            app.include_router(store.router)
            return TestClient(app)
    """,
}


def write_app(root: Path, extra: dict[str, str] | None = None) -> Path:
    for name, text in {**APP, **(extra or {})}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def test_each_kind_of_evidence(tmp_path):
    root = write_app(tmp_path)
    verdicts = {v.name: v for v in classify(inventory(root)).verdicts}
    assert {name: v.tag for name, v in verdicts.items()} == {
        "test_patches_the_store": "stub",
        "test_reads_the_store": "stub",
        "test_run_is_instant": "stub",
        "test_contract": "contract",
        "test_database": "integration",
        "test_subprocess": "integration",
        "test_pure": "unit",
    }
    assert (
        verdicts["test_patches_the_store"]
        .evidence[0]
        .startswith("patches `_users_store`, an in-memory user store, MEM002 at mini/store.py:5")
    )
    assert verdicts["test_reads_the_store"].evidence[0].startswith("reads `_users_store`")
    assert any("STB001" in e for e in verdicts["test_run_is_instant"].evidence)
    assert all(v.source == "inferred" for v in verdicts.values())


def test_overrides_win_and_say_why(tmp_path):
    root = write_app(
        tmp_path,
        {
            "test-tags.toml": """
                [[override]]
                test = "tests/test_mini.py::test_pure"
                tag = "stub"
                reason = "pins the sort order until #12"

                [[override]]
                test = "tests/test_gone.py"
                tag = "unit"
                reason = "file removed since"
            """
        },
    )
    result = classify(inventory(root))
    pure = next(v for v in result.verdicts if v.name == "test_pure")
    assert (pure.tag, pure.source, pure.inferred) == ("stub", "override", "unit")
    assert pure.evidence[0] == "override in test-tags.toml: pins the sort order until #12"
    assert result.unused_overrides == ["tests/test_gone.py"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[override]]\ntest = "t.py::x"\ntag = "slow"\nreason = "r"\n', "`tag` must be one of"),
        ('[[override]]\ntest = "t.py::x"\ntag = "unit"\n', "`reason` is required"),
        ("[[override]]\ntag = 'unit'\nreason = 'r'\n", "`test`"),
        ("override = 3\n", "array of tables"),
        ("[[override]\n", "not valid TOML"),
        ('[[override]]\ntest = "t"\ntag = "unit"\nreason = "r"\nwho = 1\n', "unknown key"),
    ],
)
def test_bad_overrides_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "test-tags.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(OverridesError, match=re.escape(message)):
        load_overrides(path)


def test_look_alikes_from_the_corpus_stay_unit(tmp_path):
    """Seen in superagi: a `requests` Response built by hand, an unbound `Session()` handed to
    patched code, a synchronous executor that returns its status: none is I/O or a stub."""
    root = write_app(
        tmp_path,
        {
            "tests/test_mini.py": """
                from unittest.mock import patch

                import requests
                from sqlalchemy.orm import Session


                def test_response_double():
                    response = requests.models.Response()
                    response.status_code = 200
                    assert response.ok


                @patch("sqlalchemy.orm.Session.query")
                def test_unbound_session(query):
                    assert Session() is not None


                def test_sync_executor():
                    class Executor:
                        def execute(self):
                            return type("R", (), {"status": "SUCCESS"})()

                    res = Executor().execute()
                    assert res.status == "SUCCESS"
            """,
            "tests/conftest.py": """
                import pytest
                from sqlalchemy_utils import database_exists, drop_database


                @pytest.fixture
                def db():
                    if database_exists("postgresql://x/y"):
                        drop_database("postgresql://x/y")
                    yield


                def test_in_conftest_is_not_collected(db):
                    pass
            """,
            "tests/test_db.py": "def test_uses_db(db):\n    pass\n",
        },
    )
    verdicts = {v.name: v for v in classify(inventory(root)).verdicts}
    assert {n: v.tag for n, v in verdicts.items()} == {
        "test_uses_db": "integration",
        "test_response_double": "unit",
        "test_unbound_session": "unit",
        "test_sync_executor": "unit",
    }
    assert (
        "`sqlalchemy_utils.database_exists` at tests/conftest.py:8"
        in (verdicts["test_uses_db"].evidence[0])
    )


def test_a_module_level_client_drives_http(tmp_path):
    """superagi's controller tests: `client = TestClient(app)` at module level."""
    root = write_app(
        tmp_path,
        {
            "tests/test_mini.py": """
                from fastapi import FastAPI
                from fastapi.testclient import TestClient

                client = TestClient(FastAPI())


                def test_list():
                    response = client.get("/items")
                    assert response.status_code == 404
            """
        },
    )
    (verdict,) = classify(inventory(root)).verdicts
    assert (verdict.tag, verdict.evidence) == (
        "contract", ["drives GET /items through an HTTP test client"],
    )  # fmt: skip
