"""Audit speed, cold and warm, next to bare `ast.parse` and `ruff check --select DTZ`, on a
~60,000-line tree made by replicating the fixture (benchmarks/make_tree.py), in one run.

    python benchmarks/bench_audit.py [--lines 60000] [--repeat 3] [--select DTZ]

Targets (issue 2): cold audit within 3x the bare ast.parse time of the tree; warm (cached) close
to ruff. Each figure is the median of --repeat runs of the real command line (process start
included, as a pre-commit hook or CI step sees it).
"""

from __future__ import annotations

import argparse
import ast
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


def timed(command: list[str], repeat: int, cwd: Path | None = None) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(
            command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
        )
        samples.append(time.perf_counter() - start)
        if done.returncode not in (0, 1):
            print(f"!! {' '.join(command)}: exit {done.returncode}, its time is not valid")
    return statistics.median(samples)


def bare_parse(root: Path, repeat: int) -> float:
    files = python_files(root)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for path in files:
            ast.parse(path.read_bytes(), filename=str(path))
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--select", default=None, help="rules for our audit (default: all)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gc-bench-"))
    # The audit cache in a scratch folder (not the user's); bytecode written as an installed tool
    # has it, else every run compiles the package again.
    os.environ["GATHERING_CONSOLIDATE_CACHE_DIR"] = str(work / "cache")
    os.environ["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        tree = make_tree(work / "tree", args.lines)
        ours = [str(BIN / "gathering-consolidate"), "audit", str(tree), "-q"]
        if args.select:
            ours += ["--select", args.select]
        ruff = [
            str(BIN / "ruff"),
            "check",
            "--isolated",
            "--select",
            "DTZ",
            "--no-cache",
            str(tree),
        ]
        ruff_warm = [str(BIN / "ruff"), "check", "--isolated", "--select", "DTZ", str(tree)]
        n_files, n_lines = len(python_files(tree)), count_lines(tree)
        parse = bare_parse(tree, args.repeat)
        subprocess.run([*ours, "--no-cache"], stdout=subprocess.DEVNULL, check=False)  # bytecode
        cold = timed([*ours, "--no-cache"], args.repeat)
        subprocess.run(ours, stdout=subprocess.DEVNULL, check=False)  # fill the cache
        warm = timed(ours, args.repeat)
        ruff_cold = timed(ruff, args.repeat)
        subprocess.run(ruff_warm, cwd=tree, stdout=subprocess.DEVNULL, check=False)
        ruff_cached = timed(ruff_warm, args.repeat, cwd=tree)  # its cache is under the cwd
        print(f"tree: {n_files} files, {n_lines:,} lines (replicated fixture)")
        print(f"{'bare ast.parse (in-process)':<38} {parse:7.3f} s")
        print(
            f"{'gathering-consolidate audit, cold':<38} {cold:7.3f} s   {cold / parse:5.2f}x ast.parse"
        )
        print(
            f"{'gathering-consolidate audit, warm':<38} {warm:7.3f} s   {warm / ruff_cached:5.2f}x ruff (cached)"
        )
        print(f"{'ruff check --select DTZ --no-cache':<38} {ruff_cold:7.3f} s")
        print(f"{'ruff check --select DTZ (cached)':<38} {ruff_cached:7.3f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
