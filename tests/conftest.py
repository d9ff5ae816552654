from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# The suite never writes to the real ~/.cache: the audit cache (and its key) go to a temporary
# folder, inherited by the CLI subprocesses the tests start.
_CACHE = tempfile.mkdtemp(prefix="gc-test-cache-")
os.environ["GATHERING_CONSOLIDATE_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
FIXTURE_APP = REPO / "fixtures" / "gathering_app"
ADMIN_URL = os.environ.get(
    "GATHERING_CONSOLIDATE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _server_reachable() -> bool:
    import psycopg

    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    if not _server_reachable():
        pytest.fail(
            f"PostgreSQL is not reachable at {ADMIN_URL} (set GATHERING_CONSOLIDATE_TEST_DATABASE_URL)"
        )
    return ADMIN_URL


@pytest.fixture
def fresh_database(pg_admin_url: str) -> Iterator[str]:
    """A new, empty database on the test server; dropped afterwards."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"gc_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(pg_admin_url)
    params["dbname"] = name
    url = make_conninfo(**params)
    try:
        yield url
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
