"""The effect that matters at run time, on a real PostgreSQL: while 20 slow DB requests are in
flight, `/health` of the unmigrated fixture app waits for the blocked event loop (many times its
idle latency); after `async-to-def` or `async-db` it stays near idle.

Each test serves a copy of the fixture app under uvicorn on 127.0.0.1 (stopped in a `finally`,
also on failure), on a fresh database with the schema applied by the app's own script. The DB
connection pools are sized for the load in every run (30 connections), so what is measured is
the event loop, not pool exhaustion. Latencies are medians; the load is bounded (20 requests of
0.4 s, 7 health probes) and every request has a timeout. Thresholds: before, at least 5x
idle; after, at most 3x idle + 80 ms.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
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


def prepare(tmp_path: Path, database_url: str, codemod: str | None) -> Path:
    app = tmp_path / "app"
    shutil.copytree(FIXTURE_APP, app, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    if codemod is not None:
        plan = plan_migration(app, codemod, unsafe_fixes=True)
        assert plan.changes and not plan.failures, plan.outcomes
        apply(plan)
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


async def _measure(base_url: str) -> tuple[float, float]:
    """(median idle /health latency, median /health latency under the slow requests)."""
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
    return statistics.median(idle), statistics.median(loaded)


def measure(app: Path, database_url: str) -> tuple[float, float]:
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


def test_unmigrated_app_health_waits_for_the_blocked_loop(tmp_path, fresh_database):
    idle, loaded = measure(prepare(tmp_path, fresh_database, None), fresh_database)
    print(f"unmigrated: idle {idle * 1000:.1f} ms, under load {loaded * 1000:.1f} ms")
    assert loaded >= 5 * idle, (idle, loaded)
    assert loaded >= SLOW_SECONDS * 0.9  # at least one slow handler held the loop


@pytest.mark.parametrize("codemod", ["async-to-def", "async-db"])
def test_after_the_codemod_health_stays_near_idle(tmp_path, fresh_database, codemod):
    idle, loaded = measure(prepare(tmp_path, fresh_database, codemod), fresh_database)
    print(f"{codemod}: idle {idle * 1000:.1f} ms, under load {loaded * 1000:.1f} ms")
    assert loaded <= 3 * idle + 0.08, (idle, loaded)
