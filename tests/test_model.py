from __future__ import annotations

import dataclasses
import pickle

import pytest

from gathering_consolidate.model import (
    Applicability,
    AuditResult,
    FileOutcome,
    Finding,
    Fix,
    Location,
    Severity,
    Status,
    fingerprint,
)


def _finding(**changes) -> Finding:
    base = Finding(
        rule="DTZ001",
        name="naive-utcnow",
        message="m",
        severity=Severity.MEDIUM,
        location=Location("app/a.py", 3, 4, 3, 20),
        symbol="app.a.f",
        tier=2,
        evidence={"chain": ["a", "b"]},
        fix=Fix("Use aware", Applicability.UNSAFE, "aware-datetimes"),
        fingerprint=fingerprint("DTZ001", "app/a.py", "app.a.f", "x = datetime.utcnow()"),
    )
    return dataclasses.replace(base, **changes)


def test_findings_are_frozen_and_picklable():
    finding = _finding()
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.rule = "X"  # type: ignore[misc]
    result = AuditResult("/r", (finding,), (), (FileOutcome("app/a.py", Status.OK),), ("DTZ001",))
    assert pickle.loads(pickle.dumps(result)) == result


def test_evidence_is_not_part_of_equality():
    assert _finding(evidence={"x": 1}) == _finding(evidence={"y": 2})


def test_fingerprint_ignores_whitespace_and_lines_but_not_code_or_place():
    a = fingerprint("DTZ001", "p.py", "m.f", "x = datetime.utcnow()")
    assert a == fingerprint("DTZ001", "p.py", "m.f", "x  =  datetime.utcnow()\n")
    assert a != fingerprint("DTZ001", "p.py", "m.g", "x = datetime.utcnow()")
    assert a != fingerprint("DTZ001", "q.py", "m.f", "x = datetime.utcnow()")
    assert a != fingerprint("DTZ002", "p.py", "m.f", "x = datetime.utcnow()")


def test_exit_code():
    ok = FileOutcome("a.py", Status.OK)
    assert AuditResult("/r", (), (), (ok,), ()).exit_code == 0
    assert AuditResult("/r", (_finding(),), (), (ok,), ()).exit_code == 1
    failed = FileOutcome("b.py", Status.FAILED, "syntax error")
    assert AuditResult("/r", (), (), (ok, failed), ()).exit_code == 1
    assert AuditResult("/r", (), (), (ok,), (), errors=("boom",)).exit_code == 2


def test_severity_orders_and_prints():
    assert max(Severity.LOW, Severity.CRITICAL) is Severity.CRITICAL
    assert str(Severity.HIGH) == "high"
