"""The fixture app is the ground truth: every registered family must score precision and recall
1.0 against its `# expect:` / `# ok:` annotations (docs/annotations.md)."""

from __future__ import annotations

import pytest

from gathering_consolidate import audit
from gathering_consolidate.audit import registry
from gathering_consolidate.harness import load_annotations, parse_annotations, score
from tests.conftest import FIXTURE_APP

FAMILIES = sorted({c.id[:3] for c in registry()} - {"SUP"})


@pytest.fixture(scope="module")
def fixture_audit():
    return audit(FIXTURE_APP, cache=False)


@pytest.fixture(scope="module")
def expectations():
    return load_annotations(FIXTURE_APP)


def test_fixture_audits_without_errors(fixture_audit):
    assert fixture_audit.errors == ()
    assert fixture_audit.failed_files == ()


@pytest.mark.parametrize("family", FAMILIES)
def test_family_scores_perfectly(family, fixture_audit, expectations):
    result = score(fixture_audit.findings, expectations, [family])[family]
    assert result.true_positives, f"no {family} annotation in the fixture matched"
    assert (result.precision, result.recall) == (1.0, 1.0), result.report()


def test_every_annotated_rule_exists(expectations):
    known = {c.id for c in registry()}
    planned = {e.rule for e in expectations} - known
    # Rules annotated in the fixture for families that are not implemented yet are fine; a typo
    # in an implemented family is not.
    implemented = {r[:3] for r in known}
    assert not {r for r in planned if r[:3] in implemented}, planned


def test_annotation_grammar():
    text = "x = 1\n# expect: EXC001(tier=1, behaviour=pass), DTZ001\n# ok: SQL001\n\ny = 2\n"
    found = parse_annotations("a.py", text)
    assert [(e.kind, e.rule, e.line, e.attrs) for e in found] == [
        ("expect", "EXC001", 5, (("tier", "1"), ("behaviour", "pass"))),
        ("expect", "DTZ001", 5, ()),
        ("ok", "SQL001", 5, ()),
    ]


def test_score_counts_misses_and_false_positives():
    from gathering_consolidate.model import Finding, Location, Severity

    def finding(line, rule="DTZ001", **evidence):
        return Finding(rule, "x", "m", Severity.LOW, Location("a.py", line), "a", evidence=evidence)

    text = "# expect: DTZ001\na()\n# expect: DTZ001(k=v)\nb()\n# expect: DTZ001\nc()\n"
    expectations = parse_annotations("a.py", text)
    result = score([finding(2), finding(4, k="w"), finding(7)], expectations, ["DTZ"])["DTZ"]
    assert len(result.true_positives) == 1
    assert len(result.false_positives) == 2  # wrong attribute on line 4, nothing expected on 7
    assert len(result.false_negatives) == 2  # line 4 (attribute) and line 6
