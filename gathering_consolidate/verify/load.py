"""Load with locust's own engine, as a subprocess verify owns: headless, bounded in users, time
and (optionally) requests per user, with a fixed seed; the stats come back from locust's CSV.

`run_load(plan)` runs one locust process, or with `plan.workers = N` a master and N local worker
processes (`--master --expect-workers N --expect-workers-max-wait`), the mode locust uses to
spread users over several machines. The master waits at most `expect_workers_wait` (30) seconds
for its workers and the check fails with a clear message when they do not all connect.

Workers on other hosts: by default the master listens on 127.0.0.1 only. To add M remote workers
to a `verify --workers N` run, start verify with

    GC_LOCUST_MASTER_BIND=0.0.0.0 GC_LOCUST_MASTER_PORT=5557 GC_LOCUST_REMOTE_WORKERS=M \
        gathering-consolidate verify ... --workers N

(open that port to the workers' hosts only), and on each other host, within the wait, with the
plan verify prints in its progress line (`GC_LOCUST_PLAN=...`, the endpoints, headers and seed):

    GC_LOCUST_PLAN='<that JSON>' locust -f gathering_consolidate/verify/locustfile.py \
        --worker --master-host <verify's host> --master-port 5557

A worker needs only locust and `locustfile.py` (it imports nothing else of the toolkit); the
master counts the users' requests from every worker into one result. The app under test
listens on 127.0.0.1 of verify's host, so remote workers load it only through a tunnel or a
proxy there: the distributed mode exists to test the load generator's own limits and apps
reached by URL.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gathering_consolidate.verify.runtime import free_port, spawn, stop_process

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


class LoadError(RuntimeError):
    """Locust did not run or did not report; the message says why."""


@dataclass
class LoadPlan:
    base_url: str
    endpoints: list[dict[str, Any]]
    users: int = 20
    spawn_rate: float = 20.0
    run_time: float = 8.0
    headers: dict[str, str] = field(default_factory=dict)
    workers: int = 0
    seed: int = 1
    max_requests_per_user: int = 0
    expect_workers_wait: int = 30
    remote_workers: int = 0  # workers started by hand on other hosts (see the module docstring)

    @property
    def deadline_s(self) -> float:
        """How long the whole locust run may take before verify stops it."""
        return (
            self.run_time + self.users / max(self.spawn_rate, 0.1) + self.expect_workers_wait + 30
        )


@dataclass
class EndpointStats:
    name: str
    method: str
    requests: int
    failures: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    rps: float

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class LoadResult:
    endpoints: list[EndpointStats]
    total: EndpointStats
    workers: int
    wall_s: float
    master_port: int | None = None


def _float(row: dict[str, str], key: str) -> float:
    try:
        return float(row.get(key) or 0)
    except ValueError:
        return 0.0


def read_stats(path: Path) -> tuple[list[EndpointStats], EndpointStats]:
    rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    stats = [
        EndpointStats(
            name=row["Name"],
            method=row.get("Type") or "",
            requests=int(_float(row, "Request Count")),
            failures=int(_float(row, "Failure Count")),
            p50_ms=_float(row, "50%"),
            p95_ms=_float(row, "95%"),
            p99_ms=_float(row, "99%"),
            rps=_float(row, "Requests/s"),
        )
        for row in rows
    ]
    total = next((s for s in stats if s.name == "Aggregated"), None)
    if total is None:
        raise LoadError(f"locust's {path.name} has no Aggregated row")
    return [s for s in stats if s.name != "Aggregated"], total


def start_load(plan: LoadPlan) -> LoadRun:
    return LoadRun(plan).start()


class LoadRun:
    """One locust run (master + workers when asked); `wait()` reads the result; `stop()` always
    stops every process (use as a context manager)."""

    def __init__(self, plan: LoadPlan) -> None:
        self.plan = plan
        self.tmp = Path(tempfile.mkdtemp(prefix="gc-verify-locust-"))
        self.procs: list[Any] = []
        self.master_port: int | None = None
        self.started = 0.0

    def _env(self) -> dict[str, str]:
        plan = {
            "endpoints": self.plan.endpoints,
            "headers": self.plan.headers,
            "seed": self.plan.seed,
        }
        return {
            **os.environ,
            "GC_LOCUST_PLAN": json.dumps(plan),
            "GC_LOCUST_MAX_REQUESTS": str(self.plan.max_requests_per_user),
            "PYTHONUNBUFFERED": "1",
        }

    def start(self) -> LoadRun:
        plan = self.plan
        base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
        argv = [
            *base,
            "--headless", "-u", str(plan.users), "-r", str(plan.spawn_rate),
            "--run-time", f"{max(1, round(plan.run_time))}s", "--host", plan.base_url,
            "--csv", str(self.tmp / "stats"), "--only-summary", "--stop-timeout", "2",
            "--exit-code-on-error", "0", "--loglevel", "WARNING",
        ]  # fmt: skip
        expected = plan.workers + plan.remote_workers
        if expected > 0:
            self.master_port = int(os.environ.get("GC_LOCUST_MASTER_PORT") or 0) or free_port()
            bind = os.environ.get("GC_LOCUST_MASTER_BIND", "127.0.0.1")
            argv += [
                "--master", "--master-bind-host", bind, "--master-bind-port", str(self.master_port),
                "--expect-workers", str(expected),
                "--expect-workers-max-wait", str(plan.expect_workers_wait),
            ]  # fmt: skip
        env = self._env()
        self.started = time.monotonic()
        with open(self.tmp / "master.log", "wb") as master_log:
            self.procs.append(spawn(argv, cwd=self.tmp, env=env, stdout=master_log))
        for index in range(plan.workers):
            worker_argv = [
                *base,
                "--worker", "--master-host", "127.0.0.1", "--master-port", str(self.master_port),
                "--loglevel", "WARNING",
            ]  # fmt: skip
            with open(self.tmp / f"worker-{index}.log", "wb") as log:
                self.procs.append(spawn(worker_argv, cwd=self.tmp, env=env, stdout=log))
        return self

    def log_tail(self, lines: int = 8) -> str:
        path = self.tmp / "master.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def wait(self) -> LoadResult:
        master = self.procs[0]
        try:
            code = master.wait(timeout=self.plan.deadline_s)
        except subprocess.TimeoutExpired as exc:
            self.stop()
            raise LoadError(
                f"locust did not finish within {self.plan.deadline_s:.0f} s; stopped it. "
                f"{self.log_tail()}"
            ) from exc
        wall = time.monotonic() - self.started
        stats = self.tmp / "stats_stats.csv"
        tail = self.log_tail()
        expected = self.plan.workers + self.plan.remote_workers
        if expected and "gave up waiting for workers" in tail.lower():
            raise LoadError(
                f"not all of the {expected} locust workers connected to the master within "
                f"{self.plan.expect_workers_wait} s (locust: gave up waiting for workers)"
            )
        if not stats.exists():
            raise LoadError(f"locust exited with {code} and wrote no stats: {tail}")
        endpoints, total = read_stats(stats)
        if total.requests == 0:
            raise LoadError(f"locust sent no request (exit code {code}): {tail}")
        return LoadResult(endpoints, total, self.plan.workers, wall, self.master_port)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc, timeout=5)
        self.procs.clear()

    def cleanup(self) -> None:
        import shutil

        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> LoadRun:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()


def run_load(plan: LoadPlan) -> LoadResult:
    """Run locust to the end and return its stats (every process stopped afterwards)."""
    with LoadRun(plan) as run:
        run.start()
        return run.wait()
