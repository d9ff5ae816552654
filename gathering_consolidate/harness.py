"""Score an audit against a fixture's annotations (see docs/annotations.md).

`# expect: RULE(attr=value, ...)` above a line means a finding of RULE must start on that line
(with those attributes); `# ok: RULE` documents a look-alike that must stay quiet. Matching is on
rule **and** line, so a finding that moves is a miss plus a false positive.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .model import Finding

_ANNOTATION = re.compile(r"#\s*(?P<kind>expect|ok|todo-expect):\s*(?P<body>.+)$")
_ITEM = re.compile(r"(?P<rule>[A-Z]{3}\d{3})(?:\((?P<attrs>[^)]*)\))?")


@dataclass(frozen=True)
class Expectation:
    kind: str  # expect | ok | todo-expect
    rule: str
    path: str
    line: int  # the annotated code line
    attrs: tuple[tuple[str, str], ...] = ()

    @property
    def family(self) -> str:
        return self.rule[:3]


def parse_annotations(relpath: str, text: str) -> list[Expectation]:
    lines = text.splitlines()
    found: list[Expectation] = []
    pending: list[tuple[str, str, tuple[tuple[str, str], ...]]] = []
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if stripped.startswith("#"):
            match = _ANNOTATION.search(stripped)
            if match:
                for item in _ITEM.finditer(match["body"]):
                    attrs = tuple(
                        tuple(part.strip() for part in pair.split("=", 1))  # type: ignore[misc]
                        for pair in (item["attrs"] or "").split(",")
                        if "=" in pair
                    )
                    pending.append((match["kind"], item["rule"], attrs))
            continue
        if not stripped:
            continue
        for kind, rule, attrs in pending:
            found.append(Expectation(kind, rule, relpath, number, attrs))
        pending = []
    return found


def load_annotations(root: Path) -> list[Expectation]:
    found: list[Expectation] = []
    for path in sorted(root.rglob("*.py")):
        if any(part.startswith(".") or part == "__pycache__" for part in path.parts):
            continue
        found.extend(parse_annotations(path.relative_to(root).as_posix(), path.read_text()))
    return found


@dataclass
class FamilyScore:
    family: str
    true_positives: list[Finding] = field(default_factory=list)
    false_positives: list[Finding] = field(default_factory=list)
    false_negatives: list[Expectation] = field(default_factory=list)
    wrong_attributes: list[tuple[Expectation, Finding, str]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        found = len(self.true_positives) + len(self.false_positives)
        return len(self.true_positives) / found if found else 1.0

    @property
    def recall(self) -> float:
        wanted = len(self.true_positives) + len(self.false_negatives)
        return len(self.true_positives) / wanted if wanted else 1.0

    def report(self) -> str:
        out = [f"{self.family}: precision {self.precision:.3f} recall {self.recall:.3f}"]
        out += [
            f"  FP {f.location.path}:{f.location.line} {f.rule} {f.message}"
            for f in self.false_positives
        ]
        out += [f"  FN {e.path}:{e.line} {e.rule}" for e in self.false_negatives]
        out += [f"  ATTR {e.path}:{e.line} {e.rule}: {why}" for e, _f, why in self.wrong_attributes]
        return "\n".join(out)


def _attribute_mismatch(expectation: Expectation, finding: Finding) -> str | None:
    for key, wanted in expectation.attrs:
        actual = finding.tier if key == "tier" else finding.evidence.get(key)
        if str(actual) != wanted:
            return f"{key}={actual!r}, annotated {wanted!r}"
    return None


def score(
    findings: Iterable[Finding], expectations: Iterable[Expectation], families: Iterable[str]
) -> Mapping[str, FamilyScore]:
    """Precision/recall per family. A finding counts as a true positive when an `expect` of the
    same rule sits on its start line; a wrong attribute makes it a false positive as well as a miss."""
    wanted: dict[tuple[str, int, str], list[Expectation]] = defaultdict(list)
    for expectation in expectations:
        if expectation.kind == "expect":
            wanted[(expectation.path, expectation.line, expectation.rule)].append(expectation)
    scores = {family: FamilyScore(family) for family in families}
    matched: set[int] = set()
    for finding in findings:
        family = finding.family
        if family not in scores:
            continue
        key = (finding.location.path, finding.location.line, finding.rule)
        candidates = [e for e in wanted.get(key, []) if id(e) not in matched]
        if not candidates:
            scores[family].false_positives.append(finding)
            continue
        expectation = candidates[0]
        matched.add(id(expectation))
        why = _attribute_mismatch(expectation, finding)
        if why:
            scores[family].wrong_attributes.append((expectation, finding, why))
            scores[family].false_positives.append(finding)
            scores[family].false_negatives.append(expectation)
        else:
            scores[family].true_positives.append(finding)
    for items in wanted.values():
        for expectation in items:
            if expectation.family in scores and id(expectation) not in matched:
                scores[expectation.family].false_negatives.append(expectation)
    return scores
