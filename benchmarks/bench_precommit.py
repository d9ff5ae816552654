"""The pre-commit check hook (`audit --changed --quiet FILE...`) on five changed files with a warm
cache, next to full audits of the same tree measured in the same run.

    python benchmarks/bench_precommit.py [--lines 0] [--repeat 5] [--changed 5]

Runs use bytecode (PYTHONDONTWRITEBYTECODE is dropped and a first, unmeasured run writes it),
as an installed tool does. The tree is a copy of the fixture app (`--lines N`: a ~N-line tree made by replicating it,
benchmarks/make_tree.py). Every figure is the median of --repeat runs of the real command line,
process start included, as pre-commit runs it. The cache lives in a temporary folder.

- full audit, cold: `audit -q` with an empty cache (what a first run or CI without a cache pays);
- full audit, 5 files edited: `audit -q` after five files changed since the cache was written
  (what the old whole-project hook paid on such a commit);
- hook, 5 files edited: `audit --changed -q` on those five files, in the same situation (before
  each run five files get a new comment line, so they are cache misses, as staged edits are);
- hook, nothing new: the same five files, unchanged since the last run (a second commit attempt).

Target (issue 17): the hook answers well under a second with a warm cache.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_tree import count_lines, make_tree, python_files

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "fixtures" / "gathering_app"
TOOL = str(Path(sys.executable).parent / "gathering-consolidate")


def run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its workers)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [TOOL, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args)}: exit {done.returncode}\n{done.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def median(
    repeat: int, prepare: Callable[[int], None], measure: Callable[[], tuple[float, float]]
) -> tuple[float, float]:
    samples = []
    for i in range(repeat):
        prepare(i)
        samples.append(measure())
    return (
        statistics.median(s[0] for s in samples),
        statistics.median(s[1] for s in samples),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=0, help="0: the fixture app as it is")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--changed", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gc-bench-precommit-"))
    try:
        tree = work / "app"
        if args.lines:
            make_tree(tree, args.lines)
        else:
            shutil.copytree(FIXTURE, tree)
        files = python_files(tree)
        # The five largest files: the most work a small commit can cause.
        changed = sorted(files, key=lambda p: -p.stat().st_size)[: args.changed]
        rel = [p.relative_to(tree).as_posix() for p in changed]
        cache = work / "cache"
        env = {**os.environ, "GATHERING_CONSOLIDATE_CACHE_DIR": str(cache)}
        # As installed tools run: with bytecode (pip compiles it; an environment that forbids
        # writing it makes every run compile the package from source, ~0.3 s here).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        run(["audit", "-q"], tree, env)  # writes the bytecode, not measured

        def fresh_cache(_: int) -> None:
            shutil.rmtree(cache, ignore_errors=True)

        def edit(i: int) -> None:
            for path in changed:
                with path.open("a", encoding="utf-8") as fh:
                    fh.write(f"# edit {i}\n")

        def edit_and_rewarm(i: int) -> None:
            run(["audit", "-q"], tree, env)  # the cache matches the tree...
            edit(i)  # ...then five files change, as in a commit

        full_cold = median(args.repeat, fresh_cache, lambda: run(["audit", "-q"], tree, env))
        full_edited = median(args.repeat, edit_and_rewarm, lambda: run(["audit", "-q"], tree, env))
        hook_edited = median(
            args.repeat, edit_and_rewarm, lambda: run(["audit", "--changed", "-q", *rel], tree, env)
        )
        hook_again = median(
            args.repeat, lambda i: None, lambda: run(["audit", "--changed", "-q", *rel], tree, env)
        )
        startup = median(args.repeat, lambda i: None, lambda: run(["--version"], tree, env))

        print(
            f"tree: {len(files)} files, {count_lines(tree):,} lines; hook on {len(rel)} files:"
            f" {', '.join(rel)}"
        )
        print(
            f"median of {args.repeat} runs, process start included; wall s (CPU s);"
            f" `--version` alone: {startup[0]:.3f} ({startup[1]:.3f}); load average"
            f" {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )

        def row(label: str, figures: tuple[float, float], ratios: str = "") -> None:
            print(f"  {label:<34} {figures[0]:7.3f} ({figures[1]:6.3f}){ratios}")

        row("full audit, cold cache", full_cold)
        row(f"full audit, {len(rel)} files edited", full_edited)
        row(
            f"hook, {len(rel)} files edited",
            hook_edited,
            f"   ratio to full cold {hook_edited[0] / full_cold[0]:.2f}"
            f" (CPU {hook_edited[1] / full_cold[1]:.2f}), to full after the same edits"
            f" {hook_edited[0] / full_edited[0]:.2f}",
        )
        row(
            "hook, nothing new since last run",
            hook_again,
            f"   ratio to full cold {hook_again[0] / full_cold[0]:.2f}"
            f" (CPU {hook_again[1] / full_cold[1]:.2f})",
        )
        verdict = "under" if hook_edited[0] < 1.0 else "OVER"
        print(
            f"target: the hook with a warm cache well under 1 s: {verdict}"
            f" ({hook_edited[0]:.3f} s wall, {hook_edited[1]:.3f} s CPU)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
