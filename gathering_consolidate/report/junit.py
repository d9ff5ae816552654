"""JUnit XML for verify checks, for CI test reporters (GitHub, GitLab, Jenkins, ...).

`render(results)` takes what `verify` produces as plain data (contract D: one
`VerifyResult.to_dict()`, a list of them, or objects with `to_dict()`, say the before and after
runs of `run`) and writes one `<testsuite>` per verify run, one `<testcase>` per check:

| check status | JUnit |
| --- | --- |
| `pass` | a plain testcase |
| `fail` | `<failure message="summary" type="fail">` with the evidence, one line each |
| `error` | `<error message="summary" type="error">` with the evidence |
| `not-applicable` | `<skipped message="summary"/>` |

`classname` is `verify.<profile or app>`, `name` is `<id> <name>` (`VFY001 auth-contract`),
`time` the check's `duration_s`. The metrics (latency percentiles, rps, ...) go to the testcase's
`<system-out>` as `name: value` lines, the summary too for a passing check; the suite's
`<properties>` hold target, app, profile and the (masked) database URL. No timestamps and no host
names, so the same results give the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from xml.etree import ElementTree as ET

#: Characters XML 1.0 cannot hold (control characters but tab, newline, carriage return).
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

_STATUSES = ("pass", "fail", "error", "not-applicable")


def _text(value: Any) -> str:
    return _INVALID_XML.sub("\ufffd", str(value))


def _as_dict(item: Any) -> Mapping[str, Any]:
    if isinstance(item, Mapping):
        return item
    to_dict = getattr(item, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"expected a verify result (a dict or an object with to_dict()), got {item!r}")


def _results(results: Any) -> list[Mapping[str, Any]]:
    if isinstance(results, Mapping) or hasattr(results, "to_dict"):
        return [_as_dict(results)]
    if isinstance(results, Iterable) and not isinstance(results, str | bytes):
        return [_as_dict(r) for r in results]
    raise TypeError(f"expected a verify result or a list of them, got {results!r}")


def _seconds(value: Any) -> str:
    try:
        return f"{max(0.0, float(value)):.3f}"
    except (TypeError, ValueError):
        return "0.000"


def _suite(result: Mapping[str, Any], index: int) -> ET.Element:
    app = str(result.get("app") or "app")
    profile = str(result.get("profile") or "")
    label = f"{app} ({profile})" if profile else app
    checks = list(result.get("checks") or [])
    counts = {status: 0 for status in _STATUSES}
    for check in checks:
        status = str(check.get("status", "error"))
        counts[status if status in counts else "error"] += 1
    total = sum(_float(c.get("duration_s")) for c in checks)
    suite = ET.Element(
        "testsuite",
        {
            "name": _text(f"verify {label}"),
            "tests": str(len(checks)),
            "failures": str(counts["fail"]),
            "errors": str(counts["error"]),
            "skipped": str(counts["not-applicable"]),
            "time": _seconds(total),
            "id": str(index),
        },
    )
    properties = ET.SubElement(suite, "properties")
    for key in ("target", "app", "profile", "database"):
        if result.get(key) is not None:
            ET.SubElement(properties, "property", {"name": key, "value": _text(result[key])})
    ET.SubElement(
        properties, "property", {"name": "passed", "value": str(bool(result.get("passed"))).lower()}
    )
    classname = _text(f"verify.{profile or app}")
    for check in checks:
        suite.append(_case(check, classname))
    return suite


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _case(check: Mapping[str, Any], classname: str) -> ET.Element:
    cid = str(check.get("id") or "")
    name = str(check.get("name") or "")
    case = ET.Element(
        "testcase",
        {
            "classname": classname,
            "name": _text(f"{cid} {name}".strip() or "check"),
            "time": _seconds(check.get("duration_s")),
        },
    )
    status = str(check.get("status", "error"))
    summary = _text(check.get("summary") or "")
    evidence = "\n".join(_text(e) for e in check.get("evidence") or [])
    if status == "fail":
        failure = ET.SubElement(case, "failure", {"message": summary, "type": "fail"})
        failure.text = evidence or summary
    elif status == "not-applicable":
        ET.SubElement(case, "skipped", {"message": summary})
    elif status != "pass":
        error = ET.SubElement(
            case, "error", {"message": summary, "type": status if status == "error" else "unknown"}
        )
        error.text = evidence or summary
    out = []
    if status == "pass" and summary:
        out.append(summary)
    if status == "pass" and evidence:
        out.append(evidence)
    metrics = check.get("metrics") or {}
    out.extend(f"{_text(key)}: {_text(value)}" for key, value in sorted(metrics.items()))
    if out:
        ET.SubElement(case, "system-out").text = "\n".join(out)
    return case


def render(results: Any) -> str:
    """JUnit XML (a `<testsuites>` document) for one verify result or several."""
    items = _results(results)
    root = ET.Element("testsuites", {"name": "gathering-consolidate verify"})
    tests = failures = errors = skipped = 0
    total = 0.0
    for index, result in enumerate(items):
        suite = _suite(result, index)
        root.append(suite)
        tests += int(suite.get("tests", "0"))
        failures += int(suite.get("failures", "0"))
        errors += int(suite.get("errors", "0"))
        skipped += int(suite.get("skipped", "0"))
        total += float(suite.get("time", "0"))
    root.set("tests", str(tests))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    root.set("skipped", str(skipped))
    root.set("time", _seconds(total))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
