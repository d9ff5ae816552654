"""VFY002 event-loop: the health endpoint stays responsive while 20+ users load the app's
DB-heavy endpoints.

What: measures the health endpoint idle (sequential requests), then runs locust (a subprocess,
headless, a fixed seed, bounded in users, time and requests; `--workers N`: a master and N worker
processes) on the profile's `[load] endpoints` while a probe thread requests the health endpoint
every `probe_interval_ms` (open loop: each probe in its own thread, so a blocked server does
not slow the probing down). Passes when the health p95 under load is below `max_health_p95_ms`
(500) and within `max_over_idle` (10) times its idle p95 (an idle p95 below `idle_floor_ms`, 25,
counts as that floor, so that a 2 ms idle does not make 20 ms a failure), and the load itself
mostly succeeded (`max_failure_ratio`, 5 %). Reports p50/p95/p99 of the probe, idle p50/p95,
throughput and per-endpoint p50/p95/p99, requests/s and failures.

With `--detect-blocking` the app is first restarted under blockbuster (the target's environment
needs the `blockbuster` package): each load endpoint and the health endpoint are requested once,
every blocking call made on the event loop from the target's code is recorded with its stack
(the call still runs), the sites are listed with the audit's ASY finding on the same line, and
the app is restarted normally for the load.

Why: one synchronous database call in an `async def` handler stops every other request of the
process while it waits; under load the health check (and every user) waits seconds.

Fix: `gathering-consolidate migrate async-db` (an async pool awaited in async handlers) or
`async-to-def` (plain `def` handlers run in the thread pool); see the ASY findings.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import threading
import time

import httpx

from gathering_consolidate.verify.checks import Outcome
from gathering_consolidate.verify.context import CheckFailed, NotApplicable, VerifyContext, short

ID = "VFY002"
NAME = "event-loop"
SECTION = "load"  # the profile section it reads
PROBE_TIMEOUT_S = 10.0


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def _timed_get(client: httpx.Client, url: str) -> tuple[float, int | None]:
    started = time.perf_counter()
    try:
        status = client.get(url).status_code
    except httpx.HTTPError:
        status = None
    return (time.perf_counter() - started) * 1000, status


class Probe(threading.Thread):
    """Open-loop probe: starts a request to `url` every `interval_s`, each in its own thread,
    whether or not the previous ones answered (a blocked server must not slow the probe down and
    so hide its own latency); latencies in ms. At most `MAX_IN_FLIGHT` probes wait at once (the
    ones skipped past that are counted)."""

    MAX_IN_FLIGHT = 50

    def __init__(self, url: str, interval_s: float) -> None:
        super().__init__(name="gc-verify-health-probe", daemon=True)
        self.url, self.interval_s = url, interval_s
        self.samples: list[float] = []
        self.errors = 0
        self.skipped = 0
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.MAX_IN_FLIGHT)
        self._threads: list[threading.Thread] = []

    def _one(self, client: httpx.Client) -> None:
        try:
            latency, status = _timed_get(client, self.url)
            with self._lock:
                self.samples.append(latency)
                if status is None or status >= 500:
                    self.errors += 1
        finally:
            self._slots.release()

    def run(self) -> None:
        limits = httpx.Limits(max_connections=self.MAX_IN_FLIGHT + 5)
        with httpx.Client(timeout=PROBE_TIMEOUT_S, limits=limits) as client:
            while not self._stop_event.is_set():
                if self._slots.acquire(blocking=False):
                    thread = threading.Thread(target=self._one, args=(client,), daemon=True)
                    thread.start()
                    self._threads.append(thread)
                else:
                    self.skipped += 1
                self._stop_event.wait(self.interval_s)
            for thread in self._threads:  # the client closes after the last answer
                thread.join(PROBE_TIMEOUT_S + 1)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(PROBE_TIMEOUT_S + 5)


def run(ctx: VerifyContext, out: Outcome):
    from gathering_consolidate.verify.load import LoadError, LoadPlan, LoadRun

    load = ctx.profile.section("load")
    endpoints = [dict(e) for e in load.get("endpoints", [])]
    if not endpoints:
        raise NotApplicable("the profile's [load] names no DB-heavy endpoints to load")
    users = int(load.get("users", 20))
    run_time = float(load.get("run_time", 8))
    max_p95 = float(load.get("max_health_p95_ms", 500))
    over_idle = float(load.get("max_over_idle", 10))
    floor = float(load.get("idle_floor_ms", 25))
    max_failures = float(load.get("max_failure_ratio", 0.05))
    interval = float(load.get("probe_interval_ms", 100)) / 1000
    headers = ctx.auth_headers() if any(e.get("auth") for e in endpoints) else {}
    plan_endpoints = []
    for index, endpoint in enumerate(endpoints):
        path = str(ctx.fill(endpoint["path"]))
        method = str(endpoint.get("method", "GET")).upper()
        ctx.require_route(method, path, f"load endpoint {endpoint.get('name') or path}")
        plan_endpoints.append({
            "name": str(endpoint.get("name") or f"{method} {path}"), "method": method,
            "path": path, "weight": float(endpoint.get("weight", 1)),
            "json": ctx.fill(endpoint["json"]) if "json" in endpoint else None,
        })  # fmt: skip
        first = ctx.request(method, path, headers=headers, json=plan_endpoints[-1]["json"])
        if first.status_code >= 400:
            raise CheckFailed(
                f"load endpoint {method} {path} answered {first.status_code}: {short(first.text)}"
            )
        del index

    if ctx.detect_blocking:
        from gathering_consolidate.verify.blocking import detect_blocking

        detect_blocking(ctx, out, plan_endpoints, headers)

    health = ctx.url(ctx.profile.health_path)
    with httpx.Client(timeout=PROBE_TIMEOUT_S) as client:
        for _ in range(5):
            _timed_get(client, health)
        idle = [_timed_get(client, health)[0] for _ in range(30)]
    idle_p50, idle_p95 = statistics.median(idle), percentile(idle, 95)

    plan = LoadPlan(
        base_url=ctx.app.base_url, endpoints=plan_endpoints, users=users,
        spawn_rate=float(load.get("spawn_rate", users)), run_time=run_time, headers=headers,
        workers=ctx.workers, seed=int(load.get("seed", 1)),
        remote_workers=int(os.environ.get("GC_LOCUST_REMOTE_WORKERS") or 0),
    )  # fmt: skip
    if plan.remote_workers:
        ctx.say(
            "event-loop: GC_LOCUST_PLAN="
            + json.dumps({"endpoints": plan.endpoints, "headers": plan.headers, "seed": plan.seed})
        )
    ctx.say(
        f"event-loop: locust, {users} users for {run_time:.0f} s"
        + (f" on {ctx.workers} workers" if ctx.workers else "")
    )
    probe = Probe(health, interval)
    with LoadRun(plan) as locust:
        locust.start()
        ramp = users / max(plan.spawn_rate, 0.1) + 1.0 + (3.0 if ctx.workers else 0.0)
        time.sleep(min(ramp, run_time / 2))
        probe.start()
        end = locust.started + ramp + run_time - 1.5
        while time.monotonic() < end and locust.procs and locust.procs[0].poll() is None:
            ctx.app.ensure_alive()
            time.sleep(0.2)
        probe.stop()
        try:
            result = locust.wait()
        except LoadError as exc:
            raise CheckFailed(f"the load did not run: {exc}") from None
    if not probe.samples:
        raise CheckFailed("the health probe took no sample during the load")

    p50, p95, p99 = (percentile(probe.samples, q) for q in (50, 95, 99))
    limit = min(max_p95, max(idle_p95, floor) * over_idle)
    out.metrics.update({
        "health_p50_ms": round(p50, 1), "health_p95_ms": round(p95, 1),
        "health_p99_ms": round(p99, 1), "idle_p50_ms": round(idle_p50, 1),
        "idle_p95_ms": round(idle_p95, 1), "health_limit_ms": round(limit, 1),
        "health_samples": len(probe.samples), "rps": round(result.total.rps, 1),
        "requests": result.total.requests, "failures": result.total.failures,
        "users": users, "workers": result.workers,
    })  # fmt: skip
    for stats in result.endpoints:
        key = stats.name
        out.metrics.update({
            f"{key}_p50_ms": stats.p50_ms, f"{key}_p95_ms": stats.p95_ms,
            f"{key}_p99_ms": stats.p99_ms, f"{key}_rps": round(stats.rps, 1),
            f"{key}_requests": stats.requests, f"{key}_failures": stats.failures,
        })  # fmt: skip
        out.note(
            f"{stats.method} {key}: {stats.requests} requests, {stats.failures} failed, "
            f"p50 {stats.p50_ms:.0f} / p95 {stats.p95_ms:.0f} / p99 {stats.p99_ms:.0f} ms, "
            f"{stats.rps:.1f} req/s"
        )
    out.note(
        f"health idle p50 {idle_p50:.1f} / p95 {idle_p95:.1f} ms; under load p50 {p50:.1f} / "
        f"p95 {p95:.1f} / p99 {p99:.1f} ms over {len(probe.samples)} probes "
        f"(limit {limit:.0f} ms = min({max_p95:.0f}, {over_idle:g} x max(idle p95, {floor:g})))"
    )
    if probe.errors:
        out.problem(f"{probe.errors} of {len(probe.samples)} health probes failed or timed out")
    if probe.skipped:
        out.note(f"{probe.skipped} probes not sent: {Probe.MAX_IN_FLIGHT} were already waiting")
    ratio = result.total.failures / max(result.total.requests, 1)
    if ratio > max_failures:
        out.problem(
            f"{result.total.failures} of {result.total.requests} load requests failed "
            f"({ratio:.0%} > {max_failures:.0%})"
        )
    if p95 >= limit:
        out.problem(
            f"health p95 {p95:.0f} ms under load (idle p95 {idle_p95:.1f} ms) exceeds "
            f"{limit:.0f} ms: the event loop is blocked"
        )
    return out.verdict(
        f"health p95 {p95:.0f} ms under {users} users ({result.total.rps:.0f} req/s), "
        f"idle p95 {idle_p95:.1f} ms"
    )
