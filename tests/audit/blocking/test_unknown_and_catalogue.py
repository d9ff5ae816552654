"""Unknown is an answer (ASY003 is claimed only over a known call tree; findings name the calls
that stayed unknown), services typed the way real apps hold them, and the catalogue of sync
third-party clients in rules/blocking.toml."""

from __future__ import annotations

import pytest

from gathering_consolidate.audit import registry
from gathering_consolidate.audit.base import dedent
from gathering_consolidate.config import Config, load_config
from gathering_consolidate.model import Severity
from gathering_consolidate.project import audit_sources, sources_from_mapping
from tests.audit._support import audit_files, found
from tests.conftest import REPO

WRAPPER_HANDLER = """
    from fastapi import APIRouter
    import vendor_db  # a third-party sync DB wrapper no catalogue lists

    router = APIRouter()

    def count(table):
        return vendor_db.Client().count(table)

    @router.get("/users/count")
    async def users_count():
        return {"count": count("users")}
"""


def asy_with(files: dict[str, str], options: dict) -> list:
    base = load_config(REPO / "tests")
    config = Config(
        root=base.root,
        tiers=base.tiers,
        default_tier=base.default_tier,
        check_options={"ASY": options},
    )
    checks = [c for c in registry() if c.id.startswith("ASY")]
    result = audit_sources(
        sources_from_mapping({p: dedent(c) for p, c in files.items()}), config, checks
    )
    assert not result.errors, result.errors
    return result.findings


def test_an_unresolved_call_suppresses_the_asy003_claim_and_is_named():
    result = audit_files({"app/api.py": WRAPPER_HANDLER}, ["ASY"])
    (finding,) = found(result, "ASY003")
    assert finding.severity is Severity.INFO
    assert "could not tell" in finding.message
    assert "reaches no blocking call" not in finding.message
    assert "`vendor_db.Client().count()` (app/api.py:7)" in finding.message
    unknown = finding.evidence["unknown_calls"]
    assert [(u["call"], u["resolved"], u["path"], u["line"], u["function"]) for u in unknown] == [
        ("vendor_db.Client", "vendor_db.Client", "app/api.py", 7, "app.api.count"),
        (
            "vendor_db.Client().count",
            "vendor_db.Client.count",
            "app/api.py",
            7,
            "app.api.count",
        ),
    ]


def test_a_call_on_an_untyped_value_is_unknown_too():
    code = """
        async def render(template):
            return template.render()
    """
    (finding,) = found(audit_files({"app/view.py": code}, ["ASY"]), "ASY003")
    assert finding.severity is Severity.INFO
    assert finding.evidence["unknown_calls"][0]["resolved"] is None


def test_known_calls_keep_the_asy003_claim():
    code = """
        import json
        import logging

        log = logging.getLogger(__name__)
        USERS = {}

        async def user_json(user_id: str):
            log.info("lookup %s", user_id.strip().lower())
            return json.dumps(USERS.get(user_id) or {})
    """
    (finding,) = found(audit_files({"app/users.py": code}, ["ASY"]), "ASY003")
    assert finding.severity is Severity.LOW
    assert finding.evidence["unknown_calls"] == []
    assert "reaches no blocking call" in finding.message


def test_config_settles_an_unknown_call_either_way():
    files = {"app/api.py": WRAPPER_HANDLER}
    known = asy_with(files, {"known-modules": ["vendor_db"]})
    assert [(f.rule, f.severity) for f in known] == [("ASY003", Severity.LOW)]
    blocking = asy_with(files, {"blocking-calls": ["vendor_db.Client.count -> vendor_db.aio"]})
    (finding,) = [f for f in blocking if f.rule == "ASY001"]
    assert finding.evidence["chain"] == [
        "app.api.users_count",
        "app.api.count",
        "vendor_db.Client.count",
    ]
    assert finding.evidence["source"] == "project"
    assert finding.evidence["root_source"] == "config"
    assert not [f for f in blocking if f.rule == "ASY003"]


def test_blocking_findings_list_the_other_calls_that_stayed_unknown():
    code = """
        import time
        import vendor_cache

        async def refresh():
            vendor_cache.touch("k")
            time.sleep(1)
    """
    (finding,) = found(audit_files({"app/jobs.py": code}, ["ASY"]), "ASY001")
    assert finding.evidence["source"] == "catalogue"
    assert [u["call"] for u in finding.evidence["unknown_calls"]] == ["vendor_cache.touch"]


def test_unknown_calls_are_followed_into_sync_helpers_with_a_visited_set():
    code = """
        import vendor

        def ping(n):
            if n:
                pong(n - 1)
            vendor.poke()

        def pong(n):
            ping(n)

        async def handler():
            return ping(3)
    """
    (finding,) = found(audit_files({"app/loop.py": code}, ["ASY"]), "ASY003")
    assert [(u["call"], u["function"]) for u in finding.evidence["unknown_calls"]] == [
        ("vendor.poke", "app.loop.ping")
    ]


# -- services held the way real apps hold them ---------------------------------------------------
# `Store` is a wrapper class (not a catalogued DB service): its method calls psycopg.
DB = """
    import psycopg

    class Store:
        def execute(self, sql, params=None):
            with psycopg.connect("") as conn:
                return conn.execute(sql, params).fetchall()

    def get_db():
        return Store()

    db = Store()
"""


@pytest.mark.parametrize(
    ("setup", "imports"),
    [
        ("self.db = Store()", "Store"),
        ("self.db: Any = Store()", "Store"),
        ("self.db = get_db()", "get_db"),
        ("self.db = db", "db"),
    ],
)
def test_service_in_an_attribute_is_followed(setup, imports):
    code = f"""
        from typing import Any
        from app.db import {imports}

        class Items:
            def __init__(self):
                {setup}

            def load(self):
                return self.db.execute("SELECT * FROM items")

        async def list_items():
            return Items().load()
    """
    (finding,) = found(audit_files({"app/db.py": DB, "app/items.py": code}, ["ASY"]), "ASY001")
    assert finding.evidence["chain"] == [
        "app.items.list_items",
        "app.items.Items.load",
        "app.db.Store.execute",
        "psycopg.connect",
    ]
    assert finding.evidence["source"] == "project"


def test_parameter_typed_from_the_callers_and_a_wrapper_class():
    code = """
        from app.db import Store

        class Audit:  # a wrapper class: its method calls the blocking service
            def __init__(self, db):
                self.db = db

            def record(self, event):
                self.db.execute("INSERT INTO audit VALUES (%s)", (event,))

        def log_event(audit, event):
            audit.record(event)

        def make():
            return Audit(Store())

        async def login(user: str):
            log_event(make(), f"login {user}")
    """
    (finding,) = found(audit_files({"app/db.py": DB, "app/audit.py": code}, ["ASY"]), "ASY001")
    assert finding.evidence["chain"] == [
        "app.audit.login",
        "app.audit.log_event",
        "app.audit.Audit.record",
        "app.db.Store.execute",
        "psycopg.connect",
    ]


def test_callers_that_disagree_give_a_union_and_either_member_blocks():
    code = """
        import time

        class Slow:
            def run(self):
                time.sleep(1)

        class Fast:
            def run(self):
                return 1

        def go(job):
            return job.run()

        def warm():
            go(Fast())

        async def handler():
            go(Slow())
    """
    (finding,) = found(audit_files({"app/jobs.py": code}, ["ASY"]), "ASY001")
    assert finding.evidence["root"] == "time.sleep"


# -- the catalogue of sync third-party clients ---------------------------------------------------
@pytest.mark.parametrize(
    ("code", "root"),
    [
        (
            """
            from psycopg_pool import ConnectionPool
            pool = ConnectionPool("postgresql://")
            async def handler():
                with pool.connection() as conn:
                    conn.execute("SELECT 1")
            """,
            "psycopg_pool.ConnectionPool.connection",
        ),
        (
            """
            import psycopg2
            async def handler():
                conn = psycopg2.connect("dbname=test")
            """,
            "psycopg2.connect",
        ),
        (
            """
            import pymysql
            async def handler():
                pymysql.connect(host="db")
            """,
            "pymysql.connect",
        ),
        (
            """
            from sqlmodel import Session, select
            async def handler(session: Session):
                return session.exec(select(1)).all()
            """,
            "sqlmodel.Session.exec",
        ),
        (
            """
            from sqlalchemy.orm import sessionmaker
            SessionLocal = sessionmaker()
            async def handler():
                session = SessionLocal()
                return session.query(object).filter_by(id=1).first()
            """,
            "sqlalchemy.orm.Query.first",
        ),
        (
            """
            from sqlalchemy import Engine
            async def handler(engine: Engine):
                with engine.connect() as conn:
                    conn.execute("SELECT 1")
            """,
            "sqlalchemy.Engine.connect",
        ),
        (
            """
            from fastapi_sqlalchemy import db
            async def handler():
                db.session.commit()
            """,
            "fastapi_sqlalchemy.db.session.commit",
        ),
        (
            """
            from pymongo import MongoClient
            client = MongoClient()
            async def handler():
                return client.app.users.find_one({"id": 1})
            """,
            "pymongo.MongoClient.app.users.find_one",
        ),
        (
            """
            import requests
            session = requests.Session()
            async def handler():
                return session.get("https://example.com")
            """,
            "requests.Session.get",
        ),
        (
            """
            import httpx
            async def handler():
                with httpx.Client() as client:
                    return client.stream("GET", "https://example.com")
            """,
            "httpx.Client.stream",
        ),
        (
            """
            import boto3
            s3 = boto3.client("s3")
            async def handler(data: bytes):
                s3.put_object(Bucket="b", Key="k", Body=data)
            """,
            "botocore.client.BaseClient.put_object",
        ),
        (
            """
            import smtplib
            async def handler():
                smtplib.SMTP("localhost").sendmail("a@x", ["b@x"], "hi")
            """,
            "smtplib.SMTP",
        ),
        (
            """
            import jedi
            async def handler(code: str):
                return jedi.Script(code).complete(1, 1)
            """,
            "jedi.Script",
        ),
        (
            """
            import subprocess
            async def handler():
                subprocess.Popen(["ls"]).communicate()
            """,
            "subprocess.Popen.communicate",
        ),
        (
            """
            import openai
            async def handler():
                return openai.ChatCompletion.create(model="gpt-4", messages=[])
            """,
            "openai.ChatCompletion.create",
        ),
        (
            """
            from openai import OpenAI
            client = OpenAI()
            async def handler():
                return client.chat.completions.create(model="gpt-4o", messages=[])
            """,
            "openai.OpenAI.chat.completions.create",
        ),
        (
            """
            import shutil
            async def handler(src, dst):
                shutil.copyfileobj(src, dst)
            """,
            "shutil.copyfileobj",
        ),
    ],
)
def test_catalogued_sync_clients_block(code, root):
    findings = found(audit_files({"app/handler.py": code}, ["ASY"]), "ASY001")
    assert findings, root
    assert findings[0].evidence["root"] == root
    assert findings[0].evidence["source"] == "catalogue"


def test_non_blocking_entries_win_over_the_class_pattern():
    code = """
        import boto3
        import redis

        s3 = boto3.client("s3")
        cache = redis.Redis()

        async def link(key: str):
            pipe = cache.pipeline()
            return s3.generate_presigned_url("get_object", Params={"Key": key}), pipe
    """
    result = audit_files({"app/links.py": code}, ["ASY"])
    assert found(result, "ASY001") == []
    (finding,) = found(result, "ASY003")
    assert finding.severity is Severity.LOW  # boto3 and redis are known packages


def test_a_body_too_deep_to_walk_is_unknown_not_a_crash():
    deep = " + ".join(["f()"] * 1500)  # ast.parse accepts it; walking it recursively cannot
    code = f"def f():\n    return 1\n\n\nasync def total():\n    return {deep}\n"
    result = audit_files({"app/deep.py": code}, ["ASY"])
    (finding,) = found(result, "ASY003")
    assert finding.severity is Severity.INFO
    (entry,) = finding.evidence["unknown_calls"]
    assert entry["reason"] == "body nested too deeply to read every call"


def test_a_parameter_some_callers_pass_unknown_values_keeps_its_calls_unknown():
    code = """
        class Fast:
            def run(self):
                return 1

        def go(job):
            return job.run()

        def elsewhere(factory):
            go(factory.build())

        async def handler():
            return go(Fast())
    """
    (finding,) = found(audit_files({"app/jobs.py": code}, ["ASY"]), "ASY003")
    assert finding.severity is Severity.INFO
    (entry,) = [u for u in finding.evidence["unknown_calls"] if u["call"] == "job.run"]
    assert entry["resolved"] == "app.jobs.Fast.run"
    assert entry["reason"] == "some callers pass `job` something unknown"


def test_the_async_openai_client_is_not_a_blocking_call():
    code = """
        import asyncio
        from openai import AsyncOpenAI

        client = AsyncOpenAI()

        async def both():
            one = client.chat.completions.create(model="m", messages=[])
            two = client.chat.completions.create(model="m", messages=[])
            return await asyncio.gather(one, two)
    """
    assert found(audit_files({"app/llm.py": code}, ["ASY"]), "ASY001") == []
