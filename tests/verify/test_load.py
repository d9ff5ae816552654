"""Locust as verify runs it: a real locust subprocess (and, with workers, a master and worker
processes) against a small HTTP server in the test; the stats come back from its CSV, every
process is stopped, and a master whose workers never connect gives up within its bounded wait
with a clear message."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import pytest

from gathering_consolidate.verify.load import LoadError, LoadPlan, LoadRun, run_load

pytestmark = pytest.mark.slow


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _locusts() -> set[int]:
    found = set()
    for proc in psutil.process_iter(["cmdline", "ppid"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "verify/locustfile.py" in cmd and proc.info["ppid"] == psutil.Process().pid:
            found.add(proc.pid)
    return found


@pytest.mark.parametrize("workers", [0, 1])
def test_locust_reports_per_endpoint_stats_and_stops(server, workers):
    plan = LoadPlan(
        base_url=server, endpoints=[{"name": "a", "method": "GET", "path": "/a"},
                                    {"name": "b", "method": "GET", "path": "/b", "weight": 2}],
        users=4, spawn_rate=4, run_time=2, workers=workers, max_requests_per_user=25,
    )  # fmt: skip
    result = run_load(plan)
    names = {e.name: e for e in result.endpoints}
    assert set(names) == {"a", "b"}
    assert result.total.requests == names["a"].requests + names["b"].requests
    assert result.total.requests <= 4 * 25  # bounded per user
    assert result.total.failures == 0 and result.total.rps > 0
    assert result.workers == workers
    assert _locusts() == set()


def test_master_gives_up_on_workers_that_never_connect(server):
    plan = LoadPlan(
        base_url=server, endpoints=[{"name": "a", "method": "GET", "path": "/a"}], users=1,
        spawn_rate=1, run_time=1, remote_workers=1, expect_workers_wait=2,
    )  # fmt: skip
    with LoadRun(plan) as run:
        run.start()
        with pytest.raises(LoadError, match="not all of the 1 locust workers connected"):
            run.wait()
    assert _locusts() == set()
