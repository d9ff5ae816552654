"""The slot-classification table (`cases/slots.yml`): Python expression -> kind of each slot."""

from __future__ import annotations

import ast

from gathering_consolidate.sql import classify as cls
from gathering_consolidate.sql.origins import Env
from gathering_consolidate.sql.sites import FileAnalysis, Hole


def classify_python(expression: str) -> tuple[cls.Classification, list[str]]:
    """Build the template of one Python expression (as the site finder does) and classify it."""
    tree = ast.parse(expression.strip(), mode="eval")
    module = ast.Module(body=[ast.Expr(tree.body)], type_ignores=[])
    analysis = FileAnalysis("app/m.py", "app.m", expression, module, lambda n: None, lambda n: "m")
    analysis.index()
    (template,) = analysis.templates(tree.body, None, Env())
    labels = [p.text() for p in template if isinstance(p, Hole)]
    parts = [p if isinstance(p, str) else cls.Hole(p.text()) for p in template]
    return cls.classify(parts), labels


def test_slot_case(slot_case):
    result, labels = classify_python(slot_case["python"])
    expect = slot_case["expect"]
    if "statement" in expect:
        assert result.statement == expect["statement"], result
    if "parsed" in expect:
        assert result.parsed is expect["parsed"], result
    got: dict[str, set[tuple[str, bool]]] = {}
    for label, slot in zip(labels, result.slots, strict=True):
        got.setdefault(label, set()).add((slot.kind, slot.quoted))
    assert set(got) == set(expect["slots"]), (got, result.sql)
    for label, wanted in expect["slots"].items():
        kinds = {k for k, _ in got[label]}
        if isinstance(wanted, str):
            assert kinds == {wanted}, (label, got[label], result.sql)
        else:
            assert got[label] == {(wanted["kind"], wanted["quoted"])}, (
                label,
                got[label],
                result.sql,
            )


def test_there_are_at_least_forty_cases():
    from tests.sql.conftest import load_cases

    assert len(load_cases("slots.yml")) >= 40


def test_unparsable_sql_says_so():
    result = cls.classify(["SELECT * FROM t WHERE x = 1 ", cls.Hole()])
    assert not result.parsed and result.error
    assert result.slots[0].kind == cls.OTHER
