"""The effect that matters at run time, on a real PostgreSQL: while 20 slow DB requests are in
flight, `/health` of the unmigrated fixture app waits for the blocked event loop (many times its
idle latency); after `async-to-def` or `async-db` it does not.

The apps are compared with each other, measured one after the other in the same run on the same
machine, never with absolute bounds (those failed on a busy machine): the unmigrated app's
`/health` under load is at least 5x its own idle latency, and each migrated app's is at most 1/5
of the unmigrated app's under the same load. The absolute figures (idle and loaded p50/p95,
before and after) are printed by `benchmarks/bench_event_loop.py`, which uses the helpers here.

Each app is a copy of the fixture served under uvicorn on 127.0.0.1 (stopped in a `finally`, also
on failure), on one fresh database with the schema applied by the app's own script. The DB
connection pools are sized for the load in every run (30 connections), so what is measured is
the event loop, not pool exhaustion. The load is bounded (20 requests of 0.4 s, 7 health probes)
and every request has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gathering_consolidate.codemods.engine import apply, plan_migration
from gathering_consolidate.verify.runtime import AppProcess
from tests.conftest import FIXTURE_APP

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SLOW_REQUESTS = 20
SLOW_SECONDS = 0.4
PROBES = 7
POOL = 30
CODEMODS = ("async-to-def", "async-db")
#: The unmigrated app's /health under load, over its own idle /health: the loop is blocked.
BLOCKED_OVER_IDLE = 5
#: A migrated app's /health under load, over the unmigrated app's under the same load.
MIGRATED_OVER_UNMIGRATED = 1 / 5


@dataclass(frozen=True)
class Latency:
    """`/health` latencies in seconds: idle, and while the slow DB requests are in flight."""

    idle: list[float]
    loaded: list[float]

    @staticmethod
    def p50(samples: list[float]) -> float:
        return statistics.median(samples)

    @staticmethod
    def p95(samples: list[float]) -> float:
        ordered = sorted(samples)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]

    def summary(self) -> str:
        ms = 1000
        return (
            f"idle p50 {self.p50(self.idle) * ms:.1f} ms p95 {self.p95(self.idle) * ms:.1f} ms, "
            f"loaded p50 {self.p50(self.loaded) * ms:.1f} ms p95 {self.p95(self.loaded) * ms:.1f} ms"
        )


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A new, empty database on the server of `admin_url`; dropped afterwards."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"gc_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(admin_url)
    params["dbname"] = name
    try:
        yield make_conninfo(**params)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare(workdir: Path, database_url: str, codemod: str | None, *, schema: bool = True) -> Path:
    """A copy of the fixture app in `workdir`, migrated by `codemod` (None: as it is); applies
    the schema to `database_url` unless `schema` is False (already applied)."""
    app = workdir / (codemod or "unmigrated")
    shutil.copytree(FIXTURE_APP, app, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    if codemod is not None:
        plan = plan_migration(app, codemod, unsafe_fixes=True)
        assert plan.changes and not plan.failures, plan.outcomes
        apply(plan)
    if schema:
        subprocess.run(
            [sys.executable, "-m", "gathering.db.apply_schema"],
            cwd=app, env={**os.environ, "DATABASE_URL": database_url, "PYTHONDONTWRITEBYTECODE": "1"},
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    return app


async def _timed(client: httpx.AsyncClient, path: str, delay: float = 0.0) -> float:
    await asyncio.sleep(delay)
    started = time.perf_counter()
    response = await client.get(path)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed


async def _measure(base_url: str) -> Latency:
    limits = httpx.Limits(max_connections=SLOW_REQUESTS + PROBES + 5)
    timeout = httpx.Timeout(SLOW_REQUESTS * SLOW_SECONDS + 30)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:
        # Warm up as a running server is: HTTP connections, DB connections in the pools (as many
        # as the measured load needs), first-request work.
        for _ in range(3):
            await _timed(client, "/health")
        await asyncio.gather(
            *(_timed(client, "/health/db?sleep=0.05") for _ in range(SLOW_REQUESTS + PROBES))
        )
        idle = [await _timed(client, "/health") for _ in range(15)]
        slow = [
            asyncio.create_task(_timed(client, f"/health/db?sleep={SLOW_SECONDS}"))
            for _ in range(SLOW_REQUESTS)
        ]
        await asyncio.sleep(0.05)  # the slow requests are in flight
        probes = [
            asyncio.create_task(_timed(client, "/health", delay=0.02 * i)) for i in range(PROBES)
        ]
        loaded = await asyncio.gather(*probes)
        await asyncio.gather(*slow)
    return Latency(idle, list(loaded))


def measure(app: Path, database_url: str) -> Latency:
    """Serve `app` under uvicorn and measure its `/health` idle and under the slow requests."""
    env = {
        "DATABASE_URL": database_url,
        "DATABASE_POOL_MIN_SIZE": str(SLOW_REQUESTS + 2),
        "DATABASE_POOL_MAX_SIZE": str(POOL),
        "GATHERING_SCHEDULER_INTERVAL": "3600",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    server = AppProcess("gathering.api.main:app", app, env=env)
    try:
        server.start()
        return asyncio.run(_measure(server.base_url))
    finally:
        server.stop()


def measure_all(workdir: Path, database_url: str) -> dict[str | None, Latency]:
    """The unmigrated app (key None), then each codemod's, one after the other on one database."""
    results: dict[str | None, Latency] = {}
    for codemod in (None, *CODEMODS):
        app = prepare(workdir, database_url, codemod, schema=codemod is None)
        results[codemod] = measure(app, database_url)
    return results


@pytest.fixture(scope="module")
def latencies(pg_admin_url, tmp_path_factory) -> dict[str | None, Latency]:
    with scratch_database(pg_admin_url) as url:
        results = measure_all(tmp_path_factory.mktemp("latency"), url)
    for codemod, latency in results.items():
        print(f"{codemod or 'unmigrated'}: {latency.summary()}")
    return results


def test_unmigrated_app_health_waits_for_the_blocked_loop(latencies):
    before = latencies[None]
    idle, loaded = Latency.p50(before.idle), Latency.p50(before.loaded)
    assert loaded >= BLOCKED_OVER_IDLE * idle, before.summary()
    assert loaded >= SLOW_SECONDS * 0.9, before.summary()  # a slow handler held the loop


@pytest.mark.parametrize("codemod", CODEMODS)
def test_after_the_codemod_health_is_a_fraction_of_the_unmigrated_app(latencies, codemod):
    before, after = latencies[None], latencies[codemod]
    ratio = Latency.p50(after.loaded) / Latency.p50(before.loaded)
    assert ratio <= MIGRATED_OVER_UNMIGRATED, (
        f"{codemod}: loaded p50 is {ratio:.2f} of the unmigrated app's "
        f"(at most {MIGRATED_OVER_UNMIGRATED:.2f}); "
        f"before: {before.summary()}; after: {after.summary()}"
    )
