"""Event-loop latency of the fixture app on a real PostgreSQL, before and after `async-to-def`
and `async-db`: `/health` p50/p95, idle and while 20 slow DB requests (0.4 s) are in flight.

    python benchmarks/bench_event_loop.py [--repeat 3]

The absolute figures for what tests/runtime/test_event_loop_latency.py checks as ratios measured
in the same run (the migrated app's loaded p50 at most 1/5 of the unmigrated app's), with the
same helpers: each round serves the unmigrated app, then each migrated copy, under uvicorn on
127.0.0.1 against one scratch database on the server of
`$GATHERING_CONSOLIDATE_TEST_DATABASE_URL` (default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.conftest import ADMIN_URL
from tests.runtime.test_event_loop_latency import (
    MIGRATED_OVER_UNMIGRATED,
    Latency,
    measure_all,
    scratch_database,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds (every app once per round)")
    args = parser.parse_args()
    ms = 1000
    print(f"{'round':<6} {'app':<13} {'idle p50':>9} {'idle p95':>9} {'load p50':>9} "
          f"{'load p95':>9}  loaded p50 / unmigrated (limit {MIGRATED_OVER_UNMIGRATED:.2f})")  # fmt: skip
    for round_ in range(1, args.repeat + 1):
        work = Path(tempfile.mkdtemp(prefix="gc-bench-loop-"))
        try:
            with scratch_database(ADMIN_URL) as url:
                results = measure_all(work, url)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        before = Latency.p50(results[None].loaded)
        for codemod, latency in results.items():
            loaded = Latency.p50(latency.loaded)
            ratio = "" if codemod is None else f"{loaded / before:.3f}"
            print(
                f"{round_:<6} {codemod or 'unmigrated':<13} "
                f"{Latency.p50(latency.idle) * ms:7.1f}ms {Latency.p95(latency.idle) * ms:7.1f}ms "
                f"{loaded * ms:7.1f}ms {Latency.p95(latency.loaded) * ms:7.1f}ms  {ratio}"
            )


if __name__ == "__main__":
    main()
