"""SQL-injection audit against ruff S608 and bandit B608, on the fixture and on a ~60,000-line tree.

    python benchmarks/bench_sql.py [--lines 60000] [--keep DIR]

For each target it runs, in this one process, `gathering-consolidate audit --select SQL`,
`ruff check --select S608` and `bandit -t B608` (each as a fresh command, no cache) and prints the
number of findings, how many are false positives, and the wall time of each.

Ground truth is the fixture's annotations (`# expect: SQL001` / `SQL002` above a sink call), which
`make_tree.py` replicates with the code. Tools report at different lines (ruff and bandit at the
SQL string, this audit at the execute-like call), so a finding is matched by its enclosing
function: it is a true positive when the function holds an annotated dynamic SQL site, a false
positive otherwise; extra findings in an annotated function are counted as duplicates, and
annotated sites no tool finding covers are misses.
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "fixtures" / "gathering_app"
BIN = Path(sys.executable).parent
SQL_RULES = ("SQL001", "SQL002")
_SKIP = {"__pycache__", ".pytest_cache", ".gathering_consolidate_cache", ".ruff_cache", ".venv"}

sys.path.insert(0, str(REPO))


def python_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*.py")
        if not any(part in _SKIP for part in p.relative_to(root).parts)
    )


def function_spans(root: Path) -> dict[str, list[tuple[int, int, str]]]:
    """relpath -> [(start, end, qualname)] of every function, innermost last."""
    spans: dict[str, list[tuple[int, int, str]]] = {}
    for path in python_files(root):
        rel = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found: list[tuple[int, int, str]] = []

        def visit(body, prefix, found=found):
            for node in body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    qual = f"{prefix}.{node.name}"
                    if not isinstance(node, ast.ClassDef):
                        start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                        found.append((start, node.end_lineno or node.lineno, qual))
                    visit(node.body, qual)

        visit(tree.body, rel)
        spans[rel] = found
    return spans


def enclosing(spans: dict[str, list[tuple[int, int, str]]], path: str, line: int) -> str:
    best = f"{path}:<module>"
    size = None
    for start, end, qual in spans.get(path, []):
        if start <= line <= end and (size is None or end - start < size):
            best, size = qual, end - start
    return best


def ground_truth(root: Path, spans) -> set[str]:
    from gathering_consolidate.harness import load_annotations

    return {
        enclosing(spans, e.path, e.line)
        for e in load_annotations(root)
        if e.kind == "expect" and e.rule in SQL_RULES
    }


def timed(command: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    return time.perf_counter() - started, result


def run_ours(root: Path) -> tuple[float, list[tuple[str, int]]]:
    command = [
        str(BIN / "gathering-consolidate"),
        "audit",
        str(root),
        "--select",
        ",".join(SQL_RULES),
        "--no-cache",
        "--format",
        "json",
    ]
    seconds, result = timed(command, REPO)
    if result.returncode not in (0, 1):
        raise SystemExit(f"gathering-consolidate failed:\n{result.stderr[-2000:]}")
    data = json.loads(result.stdout)
    return seconds, [(f["path"], f["line"]) for f in data["findings"] if f["rule"] in SQL_RULES]


def run_ruff(root: Path) -> tuple[float, list[tuple[str, int]]]:
    command = [
        str(BIN / "ruff"),
        "check",
        "--select",
        "S608",
        "--isolated",
        "--no-cache",
        "--output-format",
        "json",
        "--exit-zero",
        str(root),
    ]
    seconds, result = timed(command, root)
    data = json.loads(result.stdout or "[]")
    return seconds, [
        (Path(f["filename"]).resolve().relative_to(root.resolve()).as_posix(), f["location"]["row"])
        for f in data
    ]


def run_bandit(root: Path) -> tuple[float, list[tuple[str, int]]] | None:
    if shutil.which("bandit", path=str(BIN)) is None:
        return None
    command = [str(BIN / "bandit"), "-t", "B608", "-r", str(root), "-f", "json", "-q"]
    seconds, result = timed(command, root)
    data = json.loads(result.stdout or "{}")
    return seconds, [
        (Path(r["filename"]).resolve().relative_to(root.resolve()).as_posix(), r["line_number"])
        for r in data.get("results", [])
    ]


def score(findings, spans, truth: set[str]) -> dict[str, int]:
    functions = Counter(enclosing(spans, path, line) for path, line in findings)
    true_positive = sum(1 for f in functions if f in truth)
    duplicates = sum(n - 1 for f, n in functions.items() if f in truth)
    false_positive = sum(n for f, n in functions.items() if f not in truth)
    return {
        "findings": len(findings),
        "true_positives": true_positive,
        "duplicates": duplicates,
        "false_positives": false_positive,
        "misses": len(truth - set(functions)),
    }


def bench(label: str, root: Path) -> None:
    files = python_files(root)
    lines = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in files)
    spans = function_spans(root)
    truth = ground_truth(root, spans)
    print(f"\n== {label}: {len(files)} files, {lines:,} lines, {len(truth)} annotated SQL sites ==")
    header = (
        f"{'tool':<34} {'findings':>8} {'TP':>5} {'dup':>5} {'FP':>5} {'miss':>5} {'time s':>8}"
    )
    print(header)
    print("-" * len(header))
    runs = [
        ("gathering-consolidate --select SQL", run_ours(root)),
        ("ruff check --select S608", run_ruff(root)),
        ("bandit -t B608", run_bandit(root)),
    ]
    ours_time = runs[0][1][0]
    for name, outcome in runs:
        if outcome is None:
            print(f"{name:<34} (not installed: pip install bandit)")
            continue
        seconds, findings = outcome
        s = score(findings, spans, truth)
        print(
            f"{name:<34} {s['findings']:>8} {s['true_positives']:>5} {s['duplicates']:>5}"
            f" {s['false_positives']:>5} {s['misses']:>5} {seconds:>8.2f}"
            + (f"  {_relative(seconds, ours_time)}" if name != runs[0][0] else "")
        )
    started = time.perf_counter()
    for path in files:
        ast.parse(path.read_text(encoding="utf-8"))
    parse = time.perf_counter() - started
    from gathering_consolidate import audit

    _warm_up()

    started = time.perf_counter()
    audit(root, select=list(SQL_RULES), cache=False, jobs=1)
    inproc = time.perf_counter() - started
    print(
        f"in-process, one worker: SQL audit {inproc:.2f} s, bare ast.parse of the tree {parse:.2f} s"
        f" ({inproc / parse:.1f}x)"
    )


def _relative(seconds: float, ours: float) -> str:
    if seconds < ours:
        return f"(ours takes {ours / seconds:.1f}x as long)"
    return f"({seconds / ours:.1f}x as long as ours)"


def _warm_up() -> None:
    """Import the audit and sqlglot and classify once, so the timing below is of the work."""
    from gathering_consolidate.project import audit_sources, sources_from_mapping

    with tempfile.TemporaryDirectory() as tmp:
        from gathering_consolidate.config import Config

        code = "def f(db, t):\n    return db.execute(f'SELECT * FROM {t}')\n"
        audit_sources(sources_from_mapping({"m.py": code}), Config(root=Path(tmp)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=60_000)
    parser.add_argument("--keep", type=Path, help="build the big tree here and keep it")
    args = parser.parse_args()
    bench("fixture", FIXTURE)
    out = args.keep or Path(tempfile.mkdtemp(prefix="bench-sql-"))
    try:
        subprocess.run(
            [
                sys.executable,
                str(REPO / "benchmarks" / "make_tree.py"),
                str(out),
                "--lines",
                str(args.lines),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        bench(f"replicated tree (~{args.lines:,} lines)", out)
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
