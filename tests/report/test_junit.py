"""JUnit XML for verify checks (contract D dicts): pass, fail, error and not-applicable map to a
testcase, a failure, an error and a skip; the counts add up; the XML parses."""

from __future__ import annotations

import dataclasses
from xml.etree import ElementTree as ET

import pytest

from gathering_consolidate.report import junit


def _check(cid: str, status: str, **extra) -> dict:
    return {
        "id": cid,
        "name": f"check-{cid.lower()}",
        "status": status,
        "summary": extra.pop("summary", f"{cid} {status}"),
        "evidence": extra.pop("evidence", []),
        "metrics": extra.pop("metrics", {}),
        "duration_s": extra.pop("duration_s", 0.5),
    }


def _result(checks: list[dict], profile: str = "gathering") -> dict:
    return {
        "target": "fixtures/gathering_app",
        "app": "gathering.api.main:app",
        "profile": profile,
        "database": "postgresql://postgres:***@127.0.0.1:5432/gc_x",
        "checks": checks,
        "passed": all(c["status"] in ("pass", "not-applicable") for c in checks),
    }


RESULT = _result(
    [
        _check("VFY001", "pass", metrics={"health_p95_ms": 12.5, "rps": 140}),
        _check("VFY002", "fail", evidence=["token accepted after logout", "POST /auth/logout"]),
        _check("VFY003", "not-applicable", summary="no scheduler in this app"),
        _check("VFY004", "error", evidence=["Traceback ...\x00"]),
    ]
)


def test_statuses_map_to_junit_elements() -> None:
    root = ET.fromstring(junit.render(RESULT))
    assert root.tag == "testsuites"
    [suite] = root
    assert suite.attrib["tests"] == "4"
    assert (suite.attrib["failures"], suite.attrib["errors"], suite.attrib["skipped"]) == (
        "1",
        "1",
        "1",
    )
    cases = {c.attrib["name"]: c for c in suite.iter("testcase")}
    assert set(cases) == {
        "VFY001 check-vfy001",
        "VFY002 check-vfy002",
        "VFY003 check-vfy003",
        "VFY004 check-vfy004",
    }
    passed = cases["VFY001 check-vfy001"]
    assert [child.tag for child in passed] == ["system-out"]
    assert "health_p95_ms: 12.5" in passed.find("system-out").text
    failure = cases["VFY002 check-vfy002"].find("failure")
    assert failure.attrib["message"] == "VFY002 fail"
    assert failure.text == "token accepted after logout\nPOST /auth/logout"
    skipped = cases["VFY003 check-vfy003"].find("skipped")
    assert skipped.attrib["message"] == "no scheduler in this app"
    error = cases["VFY004 check-vfy004"].find("error")
    assert error.text.startswith("Traceback")  # the NUL byte is replaced, the XML still parses
    assert passed.attrib["classname"] == "verify.gathering"
    assert passed.attrib["time"] == "0.500"
    props = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    assert props["database"].endswith("@127.0.0.1:5432/gc_x") and "***" in props["database"]
    assert props["passed"] == "false"


def test_several_runs_and_objects_with_to_dict() -> None:
    @dataclasses.dataclass
    class Result:
        data: dict

        def to_dict(self) -> dict:
            return self.data

    before = _result([_check("VFY001", "fail")], profile="before")
    after = _result([_check("VFY001", "pass")], profile="after")
    root = ET.fromstring(junit.render([Result(before), after]))
    suites = root.findall("testsuite")
    assert [s.attrib["name"] for s in suites] == [
        "verify gathering.api.main:app (before)",
        "verify gathering.api.main:app (after)",
    ]
    assert root.attrib["tests"] == "2" and root.attrib["failures"] == "1"


def test_no_timestamps_and_stable() -> None:
    text = junit.render(RESULT)
    assert text == junit.render(RESULT)
    assert "timestamp" not in text and "hostname" not in text


def test_rejects_other_input() -> None:
    with pytest.raises(TypeError):
        junit.render("not a result")
