"""Audit speed and memory on real code bases (issue 9 point 7), each figure next to its target and
to the peer tools measured in the same run, on the same tree:

- cold audit (`--no-cache`, a fresh process and an empty cache folder: the CLI as a user runs it)
  over bare `ast.parse` of the same files (read and parsed in this process): at most 3x;
- cold audit over `bandit -r` of the tree (all its tests): at most 0.3x;
- cached audit (the same command run again on an unchanged tree, `$GATHERING_CONSOLIDATE_CACHE_DIR`
  in a temporary folder: as a pre-commit hook or a CI step runs it) over `ruff check --isolated
  --select DTZ`, cached (bench_audit.py's invocation): at most 5x. Two runs fill the cache
  first: a full audit, then one the run cache answers (runcache.py), which keeps the command
  for a replay (replay.py); the timed runs are replays. The row "run cache only" times that
  second kind of run (`-o FILE`, which is never replayed), for comparison;
- peak RSS of the cold audit: the largest resident set of the audit process or any of its
  workers (`ru_maxrss` of that child alone, from `os.wait4`): under 300 MB; with `--stdlib`, the
  standard library (copied to a temporary folder) under 400 MB.

    python benchmarks/bench_corpus.py [--repeat 3] [--corpus DIR] [--stdlib] [PROJECT ...]

The projects are the corpus archives (`../shared/corpus/*.tar.gz` beside the repository,
unpacked to a temporary folder) or the PROJECT folders given. Every timed figure is shown as the
min and the median of --repeat runs; ratios and verdicts use the medians.

Bytecode: the package is compiled first (`compileall`, into its own `__pycache__` folders, as a
wheel install has them), and the children may write bytecode (`PYTHONDONTWRITEBYTECODE` is
unset for them; the development environment sets it): otherwise every timed run would compile
the package again, and a start-up of ~0.1 s would be measured as several times that.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from gathering_consolidate.config import load_config
from gathering_consolidate.project import discover

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"
MB = 1024 * 1024

COLD_OVER_PARSE = 3.0
COLD_OVER_BANDIT = 0.3
CACHED_OVER_RUFF = 5.0
RSS_MB = 300
STDLIB_RSS_MB = 400


@dataclass
class Runs:
    """Wall times (s), peak RSS (bytes) and exit codes of repeated runs of one command."""

    seconds: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)

    @property
    def min(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def run(command: list[str], *, cwd: Path | None = None, env: dict | None = None) -> tuple:
    """(seconds, peak RSS in bytes, exit code) of one fresh process, output discarded."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, usage.ru_maxrss * 1024, proc.returncode


def repeated(repeat: int, command: list[str], *, before=None, **kwargs) -> Runs:
    runs = Runs()
    for _ in range(repeat):
        extra = before() if before else {}
        seconds, rss, code = run(command, **{**kwargs, **extra})
        runs.seconds.append(seconds)
        runs.rss.append(rss)
        runs.codes.append(code)
    return runs


def audited_files(root: Path) -> list[Path]:
    """The files the audit reads: its own discovery under the project's configuration."""
    config = load_config(root)
    return [full for _, full in discover(root, config) if full.is_file()]


def bare_parse(files: list[Path], repeat: int) -> tuple[Runs, int]:
    """Read and `ast.parse` every file in this process; (runs, files that do not parse)."""
    runs, failed = Runs(), 0
    for _ in range(repeat):
        failed = 0
        start = time.perf_counter()
        for path in files:
            try:
                ast.parse(path.read_bytes(), filename=str(path))
            except (SyntaxError, ValueError):
                failed += 1
        runs.seconds.append(time.perf_counter() - start)
    return runs, failed


def count_lines(files: list[Path]) -> int:
    return sum(path.read_bytes().count(b"\n") for path in files)


def audit_command(root: Path, *extra: str) -> list[str]:
    return [str(BIN / "gathering-consolidate"), "audit", str(root), "-q", *extra]


def cold_audit(root: Path, repeat: int, scratch: Path) -> Runs:
    """`--no-cache` with an empty cache folder per run (nothing from libraries cached either)."""

    def fresh_cache() -> dict:
        folder = Path(tempfile.mkdtemp(prefix="cold-", dir=scratch))
        return {"env": {**os.environ, "GATHERING_CONSOLIDATE_CACHE_DIR": str(folder)}}

    return repeated(repeat, audit_command(root, "--no-cache"), before=fresh_cache)


def fill_audit_cache(root: Path, scratch: Path) -> dict[str, str]:
    """Run the audit twice with the cache on (a full run, then a run-cache hit that keeps the
    command for a replay); the environment whose runs then hit the cache."""
    env = {**os.environ, "GATHERING_CONSOLIDATE_CACHE_DIR": str(scratch / "cache")}
    run(audit_command(root), env=env)
    run(audit_command(root), env=env)
    return env


def cached_audit(root: Path, repeat: int, env: dict[str, str]) -> Runs:
    return repeated(repeat, audit_command(root), env=env)


def run_cache_audit(root: Path, repeat: int, env: dict[str, str], scratch: Path) -> Runs:
    """Answered by the run cache, not replayed: `-o FILE` (a command that writes is not kept)."""
    return repeated(repeat, audit_command(root, "-o", str(scratch / "report.txt")), env=env)


def bandit_command(root: Path) -> list[str]:
    return [str(BIN / "bandit"), "-r", str(root), "-q", "-f", "json"]


def bandit(root: Path, repeat: int) -> Runs | None:
    if shutil.which("bandit", path=str(BIN)) is None:
        return None
    return repeated(repeat, bandit_command(root), cwd=root)


def ruff_cached(root: Path, repeat: int, scratch: Path) -> Runs:
    command = [str(BIN / "ruff"), "check", "--isolated", "--select", "DTZ"]
    command += ["--cache-dir", str(scratch / "ruff-cache"), str(root)]
    run(command, cwd=root)  # the first run fills the cache
    return repeated(repeat, command, cwd=root)


@dataclass
class Row:
    label: str
    runs: Runs | None
    note: str = ""


def verdict(value: float, limit: float) -> str:
    return "met" if value <= limit else "MISSED"


def report(name: str, files: list[Path], rows: list[Row], checks: list[tuple]) -> None:
    print(f"\n== {name}: {len(files)} files, {count_lines(files):,} lines")
    print(f"{'':<44} {'min s':>8} {'median s':>9}   peak RSS")
    for row in rows:
        if row.runs is None:
            print(f"{row.label:<44} {'-':>8} {'-':>9}   {row.note}")
            continue
        rss = f"{max(row.runs.rss) / MB:6.0f} MB" if row.runs.rss else ""
        codes = sorted(set(row.runs.codes))
        note = f"exit {codes}" if codes and codes != [0] and codes != [1] else ""
        line = f"{row.label:<44} {row.runs.min:8.3f} {row.runs.median:9.3f}   {rss}"
        print(f"{line}  {note} {row.note}".rstrip())
    print(f"{'target':<44} {'figure':>18}   {'limit':>9}   verdict")
    for label, value, limit, unit in checks:
        bound = f"{limit:g}{unit}"
        if value is None:
            print(f"{label:<44} {'-':>18}   {bound:>9}   not measured")
            continue
        figure = f"{value:.2f}{unit}"
        print(f"{label:<44} {figure:>18}   {bound:>9}   {verdict(value, limit)}")


def bench_project(name: str, root: Path, repeat: int, scratch: Path) -> None:
    scratch.mkdir(parents=True)
    files = audited_files(root)
    parse, failed = bare_parse(files, repeat)  # also reads the tree into the OS page cache
    cold = cold_audit(root, repeat, scratch)
    bandit_runs = bandit(root, repeat)
    # Filled just before it is read: the cache key includes the tool's own code, so an edit of
    # the package in between (a working tree) would make the "cached" runs full runs.
    filled = fill_audit_cache(root, scratch)
    cached = cached_audit(root, repeat, filled)
    run_cache_only = run_cache_audit(root, repeat, filled, scratch)
    ruff = ruff_cached(root, repeat, scratch)
    rows = [
        Row(
            "ast.parse, same files (in-process)", parse, f"{failed} do not parse" if failed else ""
        ),
        Row("audit --no-cache (cold, fresh process)", cold),
        Row("bandit -r (all tests)", bandit_runs, "" if bandit_runs else "pip install bandit"),
        Row("audit, cached (a repeated command)", cached),
        Row("audit, cached (run cache only, -o FILE)", run_cache_only),
        Row("ruff check --select DTZ, cached", ruff),
    ]
    rss_mb = statistics.median(cold.rss) / MB
    checks = [
        ("cold audit / ast.parse", cold.median / parse.median, COLD_OVER_PARSE, "x"),
        (
            "cold audit / bandit",
            cold.median / bandit_runs.median if bandit_runs else None,
            COLD_OVER_BANDIT,
            "x",
        ),
        ("cached audit / ruff cached", cached.median / ruff.median, CACHED_OVER_RUFF, "x"),
        ("peak RSS, cold audit (median)", rss_mb, RSS_MB, " MB"),
    ]
    report(name, files, rows, checks)
    warn_failed(cold, cached, run_cache_only)


def warn_failed(*audits: Runs) -> None:
    codes = sorted({code for runs in audits for code in runs.codes} - {0, 1})
    if codes:
        print(f"!! the audit exited with {codes} (an error): its figures above are not valid")


def bench_stdlib(repeat: int, scratch: Path) -> None:
    """The standard library, copied: cold audit time (over ast.parse) and peak RSS only."""
    source = Path(sysconfig.get_paths()["stdlib"])
    scratch.mkdir(parents=True)
    root = scratch / "stdlib"
    shutil.copytree(
        source,
        root,
        ignore=shutil.ignore_patterns("site-packages", "dist-packages", "__pycache__"),
        symlinks=True,
    )
    files = audited_files(root)
    parse, failed = bare_parse(files, repeat)
    cold = cold_audit(root, repeat, scratch)
    rows = [
        Row(
            "ast.parse, same files (in-process)", parse, f"{failed} do not parse" if failed else ""
        ),
        Row("audit --no-cache (cold, fresh process)", cold),
    ]
    checks = [
        ("cold audit / ast.parse", cold.median / parse.median, COLD_OVER_PARSE, "x"),
        ("peak RSS, cold audit (median)", statistics.median(cold.rss) / MB, STDLIB_RSS_MB, " MB"),
    ]
    report(f"stdlib ({source})", files, rows, checks)
    warn_failed(cold)


def isolate(scratch: Path) -> None:
    """The package compiled to bytecode (as an installed tool has it; without it every run
    compiles the package again), children allowed to write bytecode, the audit cache in a folder
    of `scratch`, never the user's; then each tool runs once, untimed, on a tiny project."""
    import compileall

    import gathering_consolidate

    package = Path(gathering_consolidate.__file__).parent
    if not compileall.compile_dir(package, quiet=1):
        raise SystemExit(f"{package}: compileall failed")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["GATHERING_CONSOLIDATE_CACHE_DIR"] = str(scratch / "cache")
    tiny = scratch / "warm-up"
    tiny.mkdir()
    (tiny / "app.py").write_text(
        "import subprocess\n\n\nasync def f():\n    subprocess.run('ls')\n"
    )
    for command in (audit_command(tiny, "--no-cache"), bandit_command(tiny)):
        run(command, cwd=tiny)


def unpack_corpus(corpus: Path, into: Path) -> list[Path]:
    archives = sorted(corpus.glob("*.tar.gz"))
    if not archives:
        raise SystemExit(f"no *.tar.gz under {corpus} (--corpus DIR, or name PROJECT folders)")
    for archive in archives:
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="data")
    return sorted(path for path in into.iterdir() if path.is_dir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("projects", nargs="*", type=Path, help="project folders (default: corpus)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="folder of *.tar.gz projects")
    parser.add_argument("--stdlib", action="store_true", help="also the standard library (slow)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="gc-bench-corpus-"))
    try:
        projects = [p.resolve() for p in args.projects] or unpack_corpus(
            args.corpus, scratch / "corpus"
        )
        isolate(scratch)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(
            f"{args.repeat} runs of each command, ratios of medians; {os.cpu_count()} CPUs, load {load}"
        )
        for root in projects:
            bench_project(root.name, root, args.repeat, scratch / root.name)
        if args.stdlib:
            bench_stdlib(args.repeat, scratch / "stdlib-run")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
