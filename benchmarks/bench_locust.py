"""Locust's sustained requests per second on this machine, with 1 and then 2 worker processes,
as `verify --workers N` runs it (a master and N workers, all local).

    python benchmarks/bench_locust.py [--users 40] [--run-time 10] [--repeat 1]

The target is a minimal ASGI app (a constant JSON answer) under uvicorn on 127.0.0.1, so the
figure is the load generator's ceiling here, not an app's; prints the requests/s with each
worker count and the ratio (2 workers / 1 worker). On a machine with 2 cores shared with the app,
the ratio stays well below 2: the workers, the master and uvicorn compete for the same cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gathering_consolidate.verify.load import LoadPlan, run_load
from gathering_consolidate.verify.runtime import AppProcess

APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b'{"ok":true}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--run-time", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gc-bench-locust-") as tmp:
        (Path(tmp) / "bench_asgi.py").write_text(APP)
        with AppProcess("bench_asgi:app", Path(tmp), health_path="/") as server:
            print(
                f"{'round':<6} {'workers':>7} {'requests':>9} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7}"
            )
            for round_ in range(1, args.repeat + 1):
                rps = {}
                for workers in (1, 2):
                    plan = LoadPlan(
                        base_url=server.base_url,
                        endpoints=[{"name": "root", "method": "GET", "path": "/"}],
                        users=args.users, spawn_rate=args.users, run_time=args.run_time,
                        workers=workers,
                    )  # fmt: skip
                    total = run_load(plan).total
                    rps[workers] = total.rps
                    print(f"{round_:<6} {workers:>7} {total.requests:>9} {total.rps:>8.1f} "
                          f"{total.p50_ms:>7.0f} {total.p95_ms:>7.0f}")  # fmt: skip
                print(f"{round_:<6} ratio 2 workers / 1 worker: {rps[2] / rps[1]:.2f}")


if __name__ == "__main__":
    main()
