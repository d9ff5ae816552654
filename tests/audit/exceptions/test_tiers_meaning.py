"""Tiers from meaning (issue 11, precision on the labelled corpus): settings that name a secret,
names that say "write to a store", untyped receivers of a database, agent tools and skills,
overrides run through their base class, and methods an untyped receiver may run."""

from __future__ import annotations

import pytest

from gathering_consolidate.audit import registry
from gathering_consolidate.audit.base import dedent
from gathering_consolidate.config import Config, load_config
from gathering_consolidate.project import audit_sources, sources_from_mapping
from tests.conftest import REPO


def tiers(files: dict[str, str]) -> dict[str, tuple[int, str]]:
    """Enclosing symbol -> (tier, reason) of every EXC finding."""
    base = load_config(REPO / "tests")
    config = Config(root=base.root, tiers=base.tiers, default_tier=base.default_tier)
    checks = [c for c in registry() if c.id.startswith("EXC")]
    result = audit_sources(
        sources_from_mapping({p: dedent(c) for p, c in files.items()}), config, checks
    )
    assert not result.errors, result.errors
    return {
        f.symbol.rpartition(".")[2]: (f.tier, dict(f.evidence)["tier_reason"])
        for f in result.findings
    }


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ('get_config("GITHUB_ACCESS_TOKEN")', 1),
        ('os.getenv("AWS_SECRET_ACCESS_KEY")', 1),
        ('get_config("BUCKET_NAME")', 2),
        ('os.getenv("MAX_TOKENS")', 2),  # a count of LLM tokens, not a credential
        ('get_config("github_access_token")', 2),  # not a setting's name as written
    ],
)
def test_a_setting_named_as_a_secret_read_in_the_try_body_is_tier_1(call, expected):
    found = tiers(
        {
            "app/x.py": f"""
                import os
                from app.settings import get_config

                def fetch():
                    try:
                        return {call}
                    except Exception:
                        return None
            """
        }
    )
    assert found["fetch"][0] == expected, found


def test_a_setting_read_by_a_helper_is_not_the_handlers_secret():
    found = tiers(
        {
            "app/x.py": """
                from app.settings import load

                def fetch():
                    try:
                        return load()
                    except Exception:
                        return None
            """,
            "app/settings.py": """
                import os

                def load():
                    return os.getenv("API_TOKEN")
            """,
        }
    )
    assert found["fetch"][0] == 2, found


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("store.delete_embeddings_from_vector_db(ids)", 1),
        ("store.save_records(rows)", 1),
        ("store.get_vector_store_type(name)", 2),  # "store" is a noun here
        ("store.delete_file(name)", 2),  # a file is not a database
        ("request.state.db.rollback()", 1),  # a namespace attribute named as a session
    ],
)
def test_names_that_say_they_write_to_a_store(body, expected):
    found = tiers(
        {
            "app/x.py": f"""
                from fastapi import Request

                def handle(request: Request, store, ids, rows, name):
                    try:
                        {body}
                    except Exception:
                        return None
            """
        }
    )
    assert found["handle"][0] == expected, found


TOOLS = {
    "app/tools/base.py": """
        from abc import ABC, abstractmethod

        class BaseTool(ABC):
            def execute(self, text):
                return self._execute(text)

            @abstractmethod
            def _execute(self, text): ...
    """,
    "app/tools/scrape.py": """
        import logging
        from app.tools.base import BaseTool
        from app.helpers import Extractor, Storage

        log = logging.getLogger(__name__)

        class ScrapeTool(BaseTool):
            def _execute(self, url):
                try:
                    return Extractor().text(url) + Storage().put(url)
                except Exception as err:
                    return f"Error: {err}"
    """,
    "app/helpers.py": """
        import logging
        import urllib.request

        log = logging.getLogger(__name__)

        class Extractor:
            def text(self, url):
                try:
                    return urllib.request.urlopen(url).read().decode()
                except Exception:
                    log.warning("cannot fetch %s", url)
                    return ""

        class Storage:
            def put(self, name):
                try:
                    return open(name).read()
                except Exception:
                    return ""

            def get(self, name):
                return name
    """,
    "app/api.py": """
        from fastapi import APIRouter
        from app.helpers import Storage

        router = APIRouter()

        @router.get("/files/{name}")
        def read(name: str):
            return Storage().get(name)
    """,
}


def test_agent_tools_and_what_only_they_reach_are_tier_3():
    found = tiers(TOOLS)
    assert found["_execute"] == (3, "in an agent tool (ScrapeTool)"), found
    assert found["text"] == (3, "in an agent tool (ScrapeTool)"), found
    # a helper whose class also serves a request is request-path code
    assert found["put"][0] == 2, found


def test_a_tool_a_request_runs_through_its_base_class_is_on_the_request_path():
    found = tiers(
        {
            **TOOLS,
            "app/run.py": """
                from fastapi import APIRouter
                from app.tools.base import BaseTool

                router = APIRouter()

                @router.post("/tools/{name}")
                def run_tool(name: str, text: str):
                    tool: BaseTool = pick(name)
                    return tool.execute(text)
            """,
        }
    )
    assert found["_execute"][0] == 2, found
    assert found["_execute"][1].startswith("on the request path of POST /tools/"), found


def test_a_method_an_untyped_receiver_may_run_counts_for_tier_1():
    found = tiers(
        {
            "app/flows.py": """
                import logging

                log = logging.getLogger(__name__)

                def consume_all(plugins, db_session):
                    for plugin in plugins:
                        try:
                            plugin.instance.consume_signals(db_session=db_session)
                        except Exception:
                            log.warning("consumer failed")
            """,
            "app/plugins.py": """
                class SignalConsumer:
                    def consume_signals(self, db_session):
                        db_session.add(object())
                        db_session.commit()
            """,
        }
    )
    tier, why = found["consume_all"]
    assert tier == 1, found
    assert "may run app.plugins.SignalConsumer.consume_signals" in why


def test_a_method_nothing_calls_is_tier_3_unless_a_framework_may_call_it():
    found = tiers(
        {
            "app/extract.py": """
                import logging
                from pydantic import BaseModel

                log = logging.getLogger(__name__)

                class Extractor:
                    def unused(self, url):
                        try:
                            return url.strip()
                        except Exception:
                            log.warning("no")
                            return ""

                    @property
                    def model(self):
                        try:
                            return self.load()
                        except Exception:
                            return None

                    def load(self):
                        return 1

                class Settings(BaseModel):
                    def hook(self):
                        try:
                            return self.load()
                        except Exception:
                            return None
            """
        }
    )
    assert found["unused"] == (3, "nothing in the project calls it"), found
    assert found["model"][0] == 2, found  # a property is read, not called
    assert found["hook"][0] == 2, found  # a library base class may call it
