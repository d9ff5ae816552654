"""Event-loop blocking on a ~60,000-line tree (the fixture replicated by make_tree.py): our call
graph + ASY audit next to `ruff check --select ASYNC` and flake8-async, timed in the same run,
and how many of the truly blocking route handlers each one finds.

    python benchmarks/bench_blocking.py [--lines 60000] [--repeat 3]

"Truly blocking handlers" come from the fixture's annotations, not from our analysis: an
`async def` decorated as a route (`@<router>.get/post/...(`) with an `# expect: ASY001` or
`# expect: ASY005` line inside it. A tool finds a handler when it reports a line inside it.
Times are medians of --repeat runs of each command line, process start included; the
in-process breakdown of ours (parse, facts, graph, analysis) is printed too.
"""

from __future__ import annotations

import argparse
import ast
import bisect
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_tree import count_lines, make_tree, python_files

BIN = Path(sys.executable).parent
_ROUTE = re.compile(r"\.(get|post|put|patch|delete|websocket|api_route)$")
_EXPECT = re.compile(r"#\s*expect:.*\b(ASY001|ASY005)\b")


def run(command: list[str], repeat: int, before=None) -> tuple[float, str]:
    samples, output = [], ""
    for _ in range(repeat):
        if before:
            before()
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        samples.append(time.perf_counter() - start)
        output = proc.stdout
    return statistics.median(samples), output


class Handlers:
    """Where the async route handlers of the tree are, and which of them truly block."""

    def __init__(self, root: Path):
        self.spans: dict[str, tuple[list[int], list[tuple[int, int, str]]]] = {}
        self.truth: set[tuple[str, str]] = set()
        for path in python_files(root):
            rel = path.relative_to(root).as_posix()
            text = path.read_text(encoding="utf-8")
            tree = ast.parse(text)
            spans = []
            for node in ast.walk(tree):
                if isinstance(node, ast.AsyncFunctionDef) and any(
                    isinstance(d, ast.Call)
                    and isinstance(d.func, ast.Attribute)
                    and _ROUTE.search("." + d.func.attr)
                    for d in node.decorator_list
                ):
                    spans.append((node.lineno, node.end_lineno or node.lineno, node.name))
            spans.sort()
            self.spans[rel] = ([s[0] for s in spans], spans)
            lines = text.splitlines()
            for number, line in enumerate(lines, start=1):
                if _EXPECT.search(line):
                    target = next(
                        (n for n in range(number + 1, len(lines) + 1)
                         if lines[n - 1].strip() and not lines[n - 1].strip().startswith("#")),
                        None,
                    )  # fmt: skip
                    handler = self.handler_at(rel, target) if target else None
                    if handler:
                        self.truth.add((rel, handler))

    def handler_at(self, path: str, line: int) -> str | None:
        starts, spans = self.spans.get(path, ([], []))
        for i in range(bisect.bisect_right(starts, line) - 1, -1, -1):
            start, end, name = spans[i]
            if start <= line <= end:
                return name
        return None

    def found(self, hits: list[tuple[str, int]]) -> tuple[int, int]:
        """(true blocking handlers among the hits, other handlers hit)."""
        handlers = {(p, h) for p, line in hits if (h := self.handler_at(p, line))}
        return len(handlers & self.truth), len(handlers - self.truth)


def relative(path: str, root: Path) -> str:
    p = Path(path)
    return (p.relative_to(root) if p.is_absolute() else p).as_posix()


def in_process(tree: Path) -> dict[str, float]:
    from gathering_consolidate.audit.base import FileContext
    from gathering_consolidate.audit.blocking.helpers import _reach, load_rules
    from gathering_consolidate.audit.blocking.strategies import plan_async_db, plan_async_to_def
    from gathering_consolidate.index import build_index, collect_module

    files = [(p.relative_to(tree).as_posix(), p.read_text()) for p in python_files(tree)]
    t0 = time.perf_counter()
    parsed = [(r, s, ast.parse(s)) for r, s in files]
    t1 = time.perf_counter()
    facts = [collect_module(FileContext(r, s, t)) for r, s, t in parsed]
    t2 = time.perf_counter()
    rules = load_rules()
    index = build_index(facts, rules.returns)
    t3 = time.perf_counter()
    from gathering_consolidate.audit.blocking.helpers import analyse

    analysis = analyse({f.path: f for f in facts}, rules)
    plan_async_to_def(analysis)
    plan_async_db(analysis)
    t4 = time.perf_counter()
    del _reach
    return {
        "ast.parse": t1 - t0,
        "facts (per file)": t2 - t1,
        "call graph": t3 - t2,
        "analysis + plans": t4 - t3 - (t3 - t2),  # analyse() builds its own index
        "functions": float(len(index.functions)),
        "edges": float(index.graph.number_of_edges()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--flake8-repeat", type=int, default=1, help="flake8 takes minutes on this tree"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gc-bench-blocking-"))
    try:
        tree = make_tree(work / "tree", args.lines)
        handlers = Handlers(tree)
        cache = tree / ".gathering_consolidate_cache"
        ours = [str(BIN / "gathering-consolidate"), "audit", str(tree), "--select", "ASY",
                "-f", "json", "-q"]  # fmt: skip
        cold, out = run(ours, args.repeat, before=lambda: shutil.rmtree(cache, ignore_errors=True))
        warm, _ = run(ours, args.repeat)
        findings = json.loads(out)["findings"]
        blocking = [f for f in findings if f["rule"] in ("ASY001", "ASY005")]
        our_hits = [(f["path"], f["line"]) for f in blocking]

        ruff_cmd = [str(BIN / "ruff"), "check", "--isolated", "--no-cache", "--select", "ASYNC",
                    "--output-format", "json", "--exit-zero", str(tree)]  # fmt: skip
        ruff_time, out = run(ruff_cmd, args.repeat)
        ruff = json.loads(out or "[]")
        ruff_hits = [(relative(f["filename"], tree), f["location"]["row"]) for f in ruff]

        # flake8-async's blocking-call rules (ASYNC2xx); its ASYNC9xx "missing checkpoint"
        # rules flag every async function without an await, blocking or not.
        flake = [str(BIN / "flake8"), "--isolated", "--select", "ASYNC2", "--enable", "ASYNC2",
                 "--exit-zero", str(tree)]  # fmt: skip
        flake_time, out = run(flake, args.flake8_repeat)
        pattern = re.compile(r"^(.+?):(\d+):\d+: (ASYNC\d+)")
        flake_hits = [
            (relative(m[1], tree), int(m[2])) for m in map(pattern.match, out.splitlines()) if m
        ]
        configured = [*flake[:-1], "--async200-blocking-calls",
                      "*.execute->await the async service,*.execute_one->await the async service",
                      str(tree)]  # fmt: skip
        conf_time, out = run(configured, args.flake8_repeat)
        conf_hits = [
            (relative(m[1], tree), int(m[2])) for m in map(pattern.match, out.splitlines()) if m
        ]

        breakdown = in_process(tree)
        total = len(handlers.truth)
        print(
            f"tree: {len(python_files(tree))} files, {count_lines(tree):,} lines (replicated fixture)"
        )
        print(f"bare ast.parse of the tree (in-process): {breakdown['ast.parse']:.2f} s")
        print(f"truly blocking async route handlers (from the annotations): {total}")
        print()
        print(
            f"{'tool':<52} {'time':>8} {'findings':>9} {'blocking handlers found':>24} {'other handlers':>15}"
        )
        rows = [
            ("gathering-consolidate audit --select ASY (cold)", cold, len(blocking), our_hits),
            (
                "gathering-consolidate audit --select ASY (warm cache)",
                warm,
                len(blocking),
                our_hits,
            ),
            ("ruff check --select ASYNC", ruff_time, len(ruff), ruff_hits),
            ("flake8-async (flake8 --select ASYNC2)", flake_time, len(flake_hits), flake_hits),
            ("flake8-async + async200 '*.execute*' patterns", conf_time, len(conf_hits), conf_hits),
        ]
        for name, seconds, count, hits in rows:
            good, other = handlers.found(hits)
            print(f"{name:<52} {seconds:7.2f}s {count:>9} {good:>14} / {total:<7} {other:>15}")
        print()
        print("ours, in-process breakdown (one run):")
        for key in ("ast.parse", "facts (per file)", "call graph", "analysis + plans"):
            print(f"  {key:<20} {breakdown[key]:7.3f} s")
        print(
            f"  graph: {int(breakdown['functions']):,} functions, {int(breakdown['edges']):,} edges;"
            f" facts + graph + analysis = {(breakdown['facts (per file)'] + breakdown['call graph'] + breakdown['analysis + plans']) / breakdown['ast.parse']:.2f}x ast.parse"
        )
        by_rule: dict[str, int] = defaultdict(int)
        for f in findings:
            by_rule[f["rule"]] += 1
        print(
            "  our findings by rule: " + ", ".join(f"{k} {v}" for k, v in sorted(by_rule.items()))
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
