"""EXC audit speed next to ruff's and pylint's broad-except rules, on the same ~60,000-line tree
(the fixture replicated by benchmarks/make_tree.py), in one run.

    python benchmarks/bench_exceptions.py [--lines 60000] [--repeat 3] [--pylint-repeat 1]

Compared (each the median of its repeats, as the command line runs it, process start included):

* `gathering-consolidate audit TREE --select EXC --no-cache` (cold) and with its cache (warm);
* `ruff check --isolated --select BLE,S110,S112,E722 --no-cache`;
* `pylint --disable=all --enable=W0718,W0702` (broad-exception-caught, bare-except);
* bare `ast.parse` of every file, in-process: the yardstick of the 3x cold-audit target.

The counts show what each tool reports: ruff and pylint flag a handler's shape; the EXC audit also
reports the handlers ruff lets through (those that log or re-raise, as EXC002 or
`log_continue`), with tier, behaviour and what the try body raises.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_tree import count_lines, make_tree, python_files

BIN = Path(sys.executable).parent


def timed(command: list[str], repeat: int, before=None) -> tuple[float, str]:
    """Median wall time of `repeat` runs, and the output of the last one."""
    samples = []
    output = ""
    for _ in range(max(1, repeat)):
        if before:
            before()
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        samples.append(time.perf_counter() - start)
        output = done.stdout
    return statistics.median(samples), output


def bare_parse(root: Path, repeat: int) -> float:
    files = python_files(root)
    samples = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        for path in files:
            ast.parse(path.read_bytes(), filename=str(path))
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pylint-repeat", type=int, default=1, help="pylint is slow")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gc-bench-exc-"))
    try:
        tree = make_tree(work / "tree", args.lines)
        cache = tree / ".gathering_consolidate_cache"
        ours = [
            str(BIN / "gathering-consolidate"), "audit", str(tree), "--select", "EXC",
            "-f", "json", "-j", str(args.jobs),
        ]  # fmt: skip
        ruff = [
            str(BIN / "ruff"), "check", "--isolated", "--no-cache", "--select",
            "BLE,S110,S112,E722", "--output-format", "json", "--exit-zero", str(tree),
        ]  # fmt: skip
        pylint = [
            str(BIN / "pylint"), "--disable=all", "--enable=W0718,W0702", "--score=n",
            "--output-format=json", f"--jobs={args.jobs}", "--recursive=y", str(tree),
        ]  # fmt: skip
        empty = work / "empty"
        empty.mkdir()
        (empty / "pyproject.toml").write_text('[project]\nname = "empty"\nversion = "0"\n')
        n_files, n_lines = len(python_files(tree)), count_lines(tree)
        parse = bare_parse(tree, args.repeat)
        startup, _ = timed([*ours[:2], str(empty), *ours[3:], "--no-cache"], args.repeat)
        cold, out = timed([*ours, "--no-cache"], args.repeat)
        ours_count = len(json.loads(out)["findings"]) if out.strip() else -1
        subprocess.run(ours, capture_output=True, check=False)  # fill the cache
        warm, _ = timed(ours, args.repeat)
        ruff_time, out = timed(ruff, args.repeat)
        ruff_count = len(json.loads(out)) if out.strip() else -1
        if shutil.which(pylint[0]) or Path(pylint[0]).exists():
            pylint_time, out = timed(pylint, args.pylint_repeat)
            pylint_count = len(json.loads(out)) if out.strip().startswith("[") else -1
        else:
            pylint_time, pylint_count = float("nan"), -1
        shutil.rmtree(cache, ignore_errors=True)

        print(f"tree: {n_files} files, {n_lines:,} lines (replicated fixture); jobs={args.jobs}")
        rows = [
            ("bare ast.parse (in-process)", parse, None),
            ("gathering-consolidate, empty project", startup, None),
            ("gathering-consolidate --select EXC, cold", cold, ours_count),
            ("gathering-consolidate --select EXC, warm", warm, ours_count),
            ("ruff --select BLE,S110,S112,E722", ruff_time, ruff_count),
            ("pylint --enable=W0718,W0702", pylint_time, pylint_count),
        ]
        print(f"{'':<44} {'time':>8}  {'x parse':>7}  {'x ruff':>7}  {'findings':>8}")
        for label, seconds, count in rows:
            shown = "" if count is None else str(count)
            print(
                f"{label:<44} {seconds:7.3f}s  {seconds / parse:7.2f}  {seconds / ruff_time:7.2f}"
                f"  {shown:>8}"
            )
        print(
            f"cold EXC audit / bare parse: {cold / parse:.2f}; without the process start and"
            f" imports measured on an empty project: {(cold - startup) / parse:.2f}"
            " (target: within 3x for all families)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    # Keep the tools' own caches and config out of the measurement.
    os.environ.setdefault("RUFF_NO_CACHE", "true")
    main()
