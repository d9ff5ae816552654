"""Score an audit of the real-code corpus against the hand-made labels of issue 11.

Shared by `scripts/corpus_scores.py` (prints the figures) and `tests/test_corpus_scores.py`
(asserts the ratchet floors and the issue's targets). The labels are in `tests/corpus_labels/`;
how a finding is matched to a label is written down in `tests/corpus_labels/README.md`.

Nothing here imports or runs the audited code: the corpus files are only read (and parsed with
`ast` to find the function that encloses an ASY001 finding).
"""

from __future__ import annotations

import ast
import json
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gathering_consolidate import AuditResult, Finding, audit

REPO = Path(__file__).resolve().parent.parent
LABELS = REPO / "tests" / "corpus_labels"


def _find_corpus() -> Path:
    """`shared/corpus` beside the checkout, else beside the repository it was cloned from (a
    clone in a scratch folder, as CI makes one; `.ci/run` finds the smoke the same way)."""
    here = REPO.parent / "shared" / "corpus"
    if here.is_dir():
        return here
    try:
        origin = subprocess.run(
            ["git", "config", "--get", "remote.origin.url"],
            cwd=REPO, capture_output=True, text=True, timeout=30, check=False,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return here
    if origin and Path(origin).is_dir():
        beside = Path(origin).resolve().parent / "shared" / "corpus"
        if beside.is_dir():
            return beside
    return here


#: The corpus archives and their `extract.sh` (see `_find_corpus`).
CORPUS = _find_corpus()
PROJECTS = ("superagi", "netflix-dispatch")
LABEL_FILES = ("exc", "routes", "sql", "stb", "mem", "aut")

#: A finding of STB/MEM/AUT/SQL matches a label in the same file within this many lines.
LINE_WINDOW = 3
#: The rules whose findings stand for a family's verdicts.
EXC_RULES = ("EXC001", "EXC002")
SQL_VERDICT = {"SQL001": "injectable", "SQL002": "needs-review", "SQL003": "approved"}
JUDGED = ("STB", "MEM", "AUT")


@dataclass(frozen=True)
class Target:
    """A figure the issue asks for: `value >= bound` (or `<= bound` when `at_most`)."""

    bound: float
    at_most: bool = False

    def met(self, value: float | None) -> bool:
        # n/a (nothing to measure: no findings for a precision, no positives for a recall)
        # cannot miss a target.
        if value is None:
            return True
        return value <= self.bound if self.at_most else value >= self.bound

    def __str__(self) -> str:
        return f"{'<=' if self.at_most else '>='} {self.bound:g}"


#: Issue 11, point 2: (family, metric) -> target.
TARGETS: dict[tuple[str, str], Target] = {
    ("EXC", "precision"): Target(0.97),
    ("EXC", "recall"): Target(0.97),
    ("EXC", "tier_agreement"): Target(0.95),
    ("EXC", "behaviour_agreement"): Target(0.95),
    ("ASY", "precision"): Target(0.95),
    ("ASY", "recall"): Target(0.95),
    ("SQL", "seen"): Target(1.0),
    ("SQL", "false_injectable"): Target(0, at_most=True),
    **{(family, "precision"): Target(0.9) for family in JUDGED},
    **{(family, "recall"): Target(0.8) for family in JUDGED},
}
#: The headline figures of each family, in print order (the ratchet floors are kept on these).
METRICS: dict[str, tuple[str, ...]] = {
    "EXC": ("precision", "recall", "tier_agreement", "behaviour_agreement"),
    "ASY": ("precision", "recall"),
    "SQL": ("seen", "false_injectable"),
    **{family: ("precision", "recall") for family in JUDGED},
}


# --- corpus and labels ------------------------------------------------------------------------


def corpus_available() -> bool:
    return (CORPUS / "extract.sh").is_file()


def extract(dest: Path) -> Path:
    """Unpack the corpus archives into `dest` (`<dest>/<project>/`) with the corpus's own script."""
    subprocess.run(
        ["bash", str(CORPUS / "extract.sh"), str(dest)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return dest


def load_labels(project: str) -> dict[str, list[dict[str, Any]] | None]:
    """The label sets of a project; a set whose file is missing is None (not yet labelled)."""
    labels: dict[str, list[dict[str, Any]] | None] = {}
    for name in LABEL_FILES:
        path = LABELS / project / f"{name}.json"
        labels[name] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    return labels


def run_audit(root: Path) -> AuditResult:
    """Audit one extracted project, in process and without the cache."""
    return audit(root, cache=False)


# --- helpers ----------------------------------------------------------------------------------


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _num(value: float | None) -> str:
    if value is None:
        return "n/a"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}"


def _describe(finding: Finding) -> str:
    loc = finding.location
    return f"{loc.path}:{loc.line} {finding.rule} {finding.message}"


def _symbol_is(finding: Finding, function: str) -> bool:
    """The finding's enclosing symbol (`pkg.module.Class.method`) names the label's function."""
    if not function or function == "<module>":
        return False
    return finding.symbol == function or finding.symbol.endswith("." + function)


def _nearest_label(finding: Finding, labels: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The label a finding matches: same file, within LINE_WINDOW lines or in the same function;
    the nearest by line when several do (a report-true label on a tie)."""
    loc = finding.location
    candidates = [
        label
        for label in labels
        if label["file"] == loc.path
        and (abs(label["line"] - loc.line) <= LINE_WINDOW or _symbol_is(finding, label["function"]))
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda lb: (abs(lb["line"] - loc.line), not lb.get("report", True)))


class _Enclosing:
    """The `def` line of the innermost function around a line, read with `ast` (never run)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._spans: dict[str, list[tuple[int, int, int]]] = {}

    def def_line(self, path: str, line: int) -> int | None:
        if path not in self._spans:
            spans: list[tuple[int, int, int]] = []
            try:
                tree = ast.parse((self.root / path).read_bytes())
            except (OSError, SyntaxError, ValueError):
                tree = None
            for node in ast.walk(tree) if tree is not None else ():
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                    spans.append((start, node.end_lineno or node.lineno, node.lineno))
            self._spans[path] = spans
        inside = [s for s in self._spans[path] if s[0] <= line <= s[1]]
        if not inside:
            return None
        return max(inside, key=lambda s: s[0])[2]  # the innermost: the latest start


# --- scoring per family -----------------------------------------------------------------------


def score_exc(labels: list[dict[str, Any]], findings: Iterable[Finding]) -> dict[str, Any]:
    tool = {(f.location.path, f.location.line): f for f in findings if f.rule in EXC_RULES}
    labelled = {(lb["file"], lb["line"]): lb for lb in labels}
    matched = sorted(tool.keys() & labelled.keys())
    tier = Counter[tuple[str, str]]()
    behaviour = Counter[tuple[str, str]]()
    isolation = Counter[tuple[str, str]]()
    mixed_agree = traceback_agree = 0
    for key in matched:
        label, finding = labelled[key], tool[key]
        tier[(str(label["tier"]), str(finding.tier))] += 1
        behaviour[(label["behaviour"], str(finding.evidence.get("behaviour")))] += 1
        mixed_agree += bool(label.get("mixed")) == bool(finding.evidence.get("mixed"))
        traceback_agree += bool(label.get("logs_traceback")) == bool(
            finding.evidence.get("logs_traceback")
        )
    for key, label in labelled.items():
        if key not in tool:
            reported = "not reported"
        elif tool[key].evidence.get("dispatch"):
            reported = "dispatch site"  # the tool's own isolation advice: isolate-handlers
        else:
            reported = "reported"
        isolation[("isolation" if label.get("isolation") else "no isolation", reported)] += 1
    tp, fp, fn = len(matched), len(tool) - len(matched), len(labelled) - len(matched)
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "tier_agreement": _ratio(sum(n for (a, b), n in tier.items() if a == b), tp),
        "behaviour_agreement": _ratio(sum(n for (a, b), n in behaviour.items() if a == b), tp),
        "mixed_agreement": _ratio(mixed_agree, tp),
        "logs_traceback_agreement": _ratio(traceback_agree, tp),
        "labelled_isolation": sum(1 for lb in labels if lb.get("isolation")),
        "tier_confusion": _nested(tier),
        "behaviour_confusion": _nested(behaviour),
        "isolation_table": _nested(isolation),
        "false_positives": [_describe(tool[k]) for k in sorted(tool.keys() - labelled.keys())],
        "missed": [
            f"{f}:{line} {labelled[(f, line)]['function']} ({labelled[(f, line)]['behaviour']})"
            for f, line in sorted(labelled.keys() - tool.keys())
        ],
    }


def _nested(counts: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = defaultdict(dict)
    for (row, column), n in sorted(counts.items()):
        table[row][column] = n
    return dict(table)


def score_asy(
    routes: list[dict[str, Any]], findings: Iterable[Finding], root: Path
) -> dict[str, Any]:
    enclosing = _Enclosing(root)
    by_key = {(r["file"], r["line"]): r for r in routes}
    by_name: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for r in routes:
        by_name[(r["file"], r["function"].rsplit(".", 1)[-1])].append((r["file"], r["line"]))
    flagged: dict[tuple[str, int], list[Finding]] = defaultdict(list)
    lazy: dict[tuple[str, int], list[Finding]] = defaultdict(list)
    outside: list[Finding] = []
    for finding in findings:
        if finding.rule not in ("ASY001", "ASY005"):
            continue
        path = finding.location.path
        key: tuple[str, int] | None = None
        line = enclosing.def_line(path, finding.location.line)
        if line is not None and (path, line) in by_key:
            key = (path, line)
        elif line is None:  # unreadable file: fall back on the finding's symbol
            same = by_name.get((path, finding.symbol.rsplit(".", 1)[-1]), [])
            key = same[0] if len(same) == 1 else None
        if key is None:
            if finding.rule == "ASY001":
                outside.append(finding)
        else:
            (flagged if finding.rule == "ASY001" else lazy)[key].append(finding)
    positive = {k for k, r in by_key.items() if r["async"] and r["blocks"]}
    tp, fp = len(flagged.keys() & positive), len(flagged.keys() - positive)
    fn = len(positive - flagged.keys())

    def route(key: tuple[str, int]) -> str:
        r = by_key[key]
        return f"{key[0]}:{key[1]} {r['function']} ({r['method']} {r['path']})"

    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "labelled_blocking": len(positive),
        "async_routes": sum(1 for r in routes if r["async"]),
        "non_route_findings": len(outside),
        "false_positives": [
            f"{route(k)}: {_describe(flagged[k][0])}" for k in sorted(flagged.keys() - positive)
        ],
        "missed": [
            f"{route(k)} via {by_key[k]['via']}"
            + (" [tool: ASY005 lazy load]" if k in lazy else "")
            for k in sorted(positive - flagged.keys())
        ],
    }


def score_sql(
    sites: list[dict[str, Any]], findings: Iterable[Finding], listed: Iterable[Any] = ()
) -> dict[str, Any]:
    """A labelled site is seen when `sql sites` lists it (`listed`: `SiteReport`s, safe ones
    included) or a SQL finding lands on it; its verdict is the listing's, else the finding's."""
    tool = [f for f in findings if f.rule in SQL_VERDICT]
    seen: dict[int, list[Finding]] = defaultdict(list)
    listed_verdict: dict[int, str] = {}
    for report in listed:
        near = [
            s
            for s in sites
            if s["file"] == report.path and abs(s["line"] - report.line) <= LINE_WINDOW
        ]
        if near:
            label = min(near, key=lambda s: abs(s["line"] - report.line))
            listed_verdict.setdefault(id(label), report.verdict)
    false_injectable: list[str] = []
    unmatched: list[str] = []
    for finding in tool:
        label = _nearest_label(finding, sites)
        if label is None:
            unmatched.append(_describe(finding))
        else:
            seen[id(label)].append(finding)
        if finding.rule == "SQL001" and (label is None or label["verdict"] != "injectable"):
            false_injectable.append(_describe(finding))
    verdicts = Counter[tuple[str, str]]()
    for site in sites:
        found = seen.get(id(site), [])
        tool_verdict = listed_verdict.get(id(site)) or (
            SQL_VERDICT[min(f.rule for f in found)] if found else "not seen"
        )
        verdicts[(site["verdict"], tool_verdict)] += 1
    count = sum(1 for s in sites if id(s) in seen or id(s) in listed_verdict)
    return {
        "sites": len(sites),
        "seen_sites": count,
        "seen": _ratio(count, len(sites)),
        "false_injectable": len(false_injectable),
        "verdict_confusion": _nested(verdicts),
        "false_injectable_findings": false_injectable,
        "unlabelled_findings": unmatched,
        "not_seen": [
            f"{s['file']}:{s['line']} {s['function']} ({s['verdict']})"
            for s in sites
            if id(s) not in seen and id(s) not in listed_verdict
        ],
    }


def score_judged(
    family: str, labels: list[dict[str, Any]], findings: Iterable[Finding]
) -> dict[str, Any]:
    tool = [f for f in findings if f.family == family]
    hit: set[int] = set()
    true_findings = 0
    false_positives: list[str] = []
    for finding in tool:
        label = _nearest_label(finding, labels)
        if label is not None and label["report"]:
            true_findings += 1
            hit.add(id(label))
        elif label is not None:
            false_positives.append(f"{_describe(finding)}  [look-alike: {label['kind']}]")
        else:
            false_positives.append(f"{_describe(finding)}  [unlabelled]")
    positives = [lb for lb in labels if lb["report"]]
    found = sum(1 for lb in positives if id(lb) in hit)
    return {
        "tp": true_findings,
        "fp": len(tool) - true_findings,
        "fn": len(positives) - found,
        "findings": len(tool),
        "true_findings": true_findings,
        "positives": len(positives),
        "look_alikes": len(labels) - len(positives),
        "found": found,
        "precision": _ratio(true_findings, len(tool)),
        "recall": _ratio(found, len(positives)),
        "false_positives": false_positives,
        "missed": [
            f"{lb['file']}:{lb['line']} {lb['function']} ({lb['kind']})"
            for lb in positives
            if id(lb) not in hit
        ],
    }


def score_project(project: str, root: Path, result: AuditResult) -> dict[str, Any]:
    """Every family's figures for one audited project; a family without labels is None."""
    labels = load_labels(project)
    findings = result.findings
    scores: dict[str, Any] = {
        "project": project,
        "files": len(result.files),
        "failed_files": len(result.failed_files),
        "errors": list(result.errors),
        "EXC": score_exc(labels["exc"], findings) if labels["exc"] is not None else None,
        "ASY": score_asy(labels["routes"], findings, root)
        if labels["routes"] is not None
        else None,
        "SQL": score_sql(labels["sql"], findings, dict(result.listings).get("sql_sites", ()))
        if labels["sql"] is not None
        else None,
    }
    for family in JUDGED:
        data = labels[family.lower()]
        scores[family] = score_judged(family, data, findings) if data is not None else None
    return scores


def headline(scores: dict[str, Any]) -> list[tuple[str, str, float | None, Target]]:
    """(family, metric, value, target) for every labelled family of one project."""
    rows = []
    for family, metrics in METRICS.items():
        data = scores.get(family)
        if data is None:
            continue
        for metric in metrics:
            rows.append((family, metric, data[metric], TARGETS[(family, metric)]))
    return rows


# --- text report ------------------------------------------------------------------------------


def _table(title: str, table: dict[str, dict[str, int]]) -> list[str]:
    columns = sorted({c for row in table.values() for c in row})
    width = max([len(r) for r in table] + [len("label \\ tool")])
    out = [
        f"  {title}",
        "    " + "label \\ tool".ljust(width) + "".join(f"{c:>15}" for c in columns),
    ]
    for row in sorted(table):
        cells = "".join(f"{table[row].get(c, 0) or '.':>15}" for c in columns)
        out.append("    " + row.ljust(width) + cells)
    return out


def _listing(title: str, items: list[str]) -> list[str]:
    if not items:
        return []
    return [f"  {title} ({len(items)}):", *(f"    {item}" for item in items)]


def render(all_scores: Sequence[dict[str, Any]]) -> str:
    lines: list[str] = []
    for scores in all_scores:
        project = scores["project"]
        lines.append(
            f"== {project}: {scores['files']} files, {scores['failed_files']} failed, "
            f"{len(scores['errors'])} internal errors"
        )
        lines.append(f"  {'family':<7}{'TP/FP/FN':<12}{'metric':<22}{'value':>8}  {'target':<9}met")
        shown = set()
        for family, metric, value, target in headline(scores):
            data, counts = scores[family], ""
            if family not in shown and "tp" in data:
                counts = f"{data['tp']}/{data['fp']}/{data['fn']}"
            elif family not in shown and family == "SQL":
                counts = f"{data['seen_sites']}/{data['sites']} seen"
            shown.add(family)
            mark = "yes" if target.met(value) else "NO"
            lines.append(
                f"  {family:<7}{counts:<12}{metric:<22}{_num(value):>8}  {target!s:<9}{mark}"
            )
        missing = [f for f in ("EXC", "ASY", "SQL", *JUDGED) if scores.get(f) is None]
        if missing:
            lines.append(f"  no labels yet: {', '.join(missing)}")
        exc = scores.get("EXC")
        if exc:
            lines.append(
                f"  EXC  TP/FP/FN {exc['tp']}/{exc['fp']}/{exc['fn']}; labelled isolation "
                f"{exc['labelled_isolation']}; mixed agreement {_num(exc['mixed_agreement'])}; "
                f"logs_traceback agreement {_num(exc['logs_traceback_agreement'])}"
            )
            lines += _table("EXC tier (matched handlers)", exc["tier_confusion"])
            lines += _table("EXC behaviour (matched handlers)", exc["behaviour_confusion"])
            lines += _table("EXC isolation (every labelled handler)", exc["isolation_table"])
            lines += _listing("EXC findings without a label", exc["false_positives"])
            lines += _listing("EXC labels without a finding", exc["missed"])
        asy = scores.get("ASY")
        if asy:
            lines.append(
                f"  ASY  TP/FP/FN {asy['tp']}/{asy['fp']}/{asy['fn']} over routes "
                f"({asy['async_routes']} async, {asy['labelled_blocking']} labelled blocking); "
                f"ASY001 findings outside route handlers: {asy['non_route_findings']}"
            )
            lines += _listing("ASY routes flagged, labelled not blocking", asy["false_positives"])
            lines += _listing("ASY blocking routes not flagged", asy["missed"])
        sql = scores.get("SQL")
        if sql:
            lines.append(
                f"  SQL  {sql['seen_sites']} of {sql['sites']} labelled sites seen; "
                f"false injectable: {sql['false_injectable']}"
            )
            if sql["verdict_confusion"]:
                lines += _table("SQL verdict (every labelled site)", sql["verdict_confusion"])
            lines += _listing(
                "SQL001 on a site not labelled injectable", sql["false_injectable_findings"]
            )
            lines += _listing("SQL findings without a label", sql["unlabelled_findings"])
        for family in JUDGED:
            data = scores.get(family)
            if not data:
                continue
            lines.append(
                f"  {family}  {data['findings']} findings, {data['true_findings']} on a reported "
                f"label; {data['found']} of {data['positives']} reported labels found "
                f"({data['look_alikes']} look-alikes labelled)"
            )
            lines += _listing(f"{family} false positives", data["false_positives"])
            lines += _listing(f"{family} missed", data["missed"])
        lines.append("")
    return "\n".join(lines)
