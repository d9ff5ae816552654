"""SARIF 2.1.0 output: valid against the official schema, shaped as GitHub code scanning reads it
(compared field by field with a sample it accepts), stable and without timestamps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from gathering_consolidate.audit import get_check
from gathering_consolidate.model import AuditResult
from gathering_consolidate.project import audit
from gathering_consolidate.report import sarif

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "sarif"
FIXTURE = REPO / "fixtures" / "gathering_app"


@pytest.fixture(scope="module")
def schema() -> dict:
    document = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    assert document["id"].endswith("/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    return document


@pytest.fixture(scope="module")
def sample() -> dict:
    return json.loads((DATA / "github-code-scanning-sample.sarif").read_text())


@pytest.fixture(scope="module")
def fixture_result() -> AuditResult:
    return audit(FIXTURE, jobs=1)


@pytest.fixture(scope="module")
def log(fixture_result: AuditResult) -> dict:
    return json.loads(sarif.render(fixture_result))


def test_valid_against_the_official_schema(schema: dict, log: dict, sample: dict) -> None:
    validator = jsonschema.Draft4Validator(schema)
    validator.validate(sample)  # the schema reads the sample GitHub accepts
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert errors == [], [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    assert log["runs"][0]["results"], "the fixture has findings"


def test_schema_rejects_a_broken_log(schema: dict, log: dict) -> None:
    broken = json.loads(json.dumps(log))
    broken["runs"][0]["results"][0]["level"] = "fatal"
    del broken["runs"][0]["results"][0]["message"]
    errors = list(jsonschema.Draft4Validator(schema).iter_errors(broken))
    assert len(errors) >= 2


def _keys_by_type(value: object, path: str = "", into: dict | None = None) -> dict:
    """{structural path: set of keys} of every object, list items merged (`runs[]`)."""
    into = {} if into is None else into
    if isinstance(value, dict):
        into.setdefault(path, set()).update(value)
        for key, item in value.items():
            _keys_by_type(item, f"{path}.{key}", into)
    elif isinstance(value, list):
        for item in value:
            _keys_by_type(item, f"{path}[]", into)
    return into


# Objects whose keys are data (rule ids, fingerprint names, free-form properties), not fields.
_FREE_FORM = ("partialFingerprints", "properties")


def test_field_by_field_against_the_github_sample(sample: dict, log: dict) -> None:
    ours = _keys_by_type(log)
    theirs = _keys_by_type(sample)
    for path, keys in theirs.items():
        if path.endswith(_FREE_FORM):
            continue
        assert path in ours, f"{path} missing"
        # Every field the sample uses there, we give too (`semanticVersion`, `ruleIndex`, ...)
        assert keys <= ours[path], f"{path}: missing {sorted(keys - ours[path])}"
    run, their_run = log["runs"][0], sample["runs"][0]
    assert log["version"] == sample["version"] == "2.1.0"
    assert log["$schema"] == sample["$schema"]
    rules = run["tool"]["driver"]["rules"]
    for rule in rules:
        for field in ("shortDescription", "fullDescription", "help"):
            assert isinstance(rule[field]["text"], str) and rule[field]["text"].strip()
        assert rule["defaultConfiguration"]["level"] in ("error", "warning", "note")
        assert all(isinstance(t, str) for t in rule["properties"]["tags"])
        if "security-severity" in rule["properties"]:
            assert 0.0 < float(rule["properties"]["security-severity"]) <= 10.0
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids))
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in {r["level"] for r in their_run["results"]} | {"warning"}
        assert result["message"]["text"].strip()
        [location] = result["locations"]
        artifact = location["physicalLocation"]["artifactLocation"]
        uri = artifact["uri"]
        assert not uri.startswith(("/", "file:")) and ".." not in uri.split("/")
        assert artifact["uriBaseId"] == "%SRCROOT%"
        region = location["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region.get("startColumn", 1) >= 1
        if "endLine" in region:
            assert region["endLine"] >= region["startLine"]
        [(key, value)] = result["partialFingerprints"].items()
        assert key == sarif.FINGERPRINT_KEY and isinstance(value, str) and value


def test_rules_results_and_paths(fixture_result: AuditResult, log: dict) -> None:
    run = log["runs"][0]
    findings = fixture_result.findings
    assert len(run["results"]) == len(findings)
    first = findings[0]
    result = run["results"][0]
    assert result["ruleId"] == first.rule
    assert result["partialFingerprints"] == {"gatheringConsolidate/v1": first.fingerprint}
    region = result["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == first.location.line
    assert region["startColumn"] == first.location.column + 1
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    # This repository's root holds .git: paths are relative to it, not to the fixture project.
    assert uri == f"fixtures/gathering_app/{first.location.path}"
    levels = {f.rule: r["level"] for f, r in zip(findings, run["results"], strict=True)}
    assert levels["AUT001"] == "error" and levels["DTZ001"] == "warning"
    assert levels["ASY003"] == "note"
    # Rule help comes from the rule's own documentation.
    exc001 = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "EXC001")
    check = get_check("EXC001")
    assert check.docs().strip() in exc001["help"]["markdown"]
    assert exc001["shortDescription"]["text"] == check.summary()
    aut = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "AUT001")
    assert "security" in aut["properties"]["tags"]
    assert aut["properties"]["security-severity"] == "9.5"
    assert set(fixture_result.rules) <= {r["id"] for r in run["tool"]["driver"]["rules"]}


def test_no_timestamps_and_stable_bytes(fixture_result: AuditResult) -> None:
    text = sarif.render(fixture_result)
    assert text == sarif.render(fixture_result)
    keys = set().union(*_keys_by_type(json.loads(text)).values()) - {sarif.FINGERPRINT_KEY}
    assert not [k for k in keys if "time" in k.lower() or "date" in k.lower()]
    assert str(FIXTURE) not in text and str(REPO) not in text  # no absolute paths


def test_project_without_repository_and_non_ascii_columns(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "p"\n')
    (project / "jobs.py").write_text(
        "from datetime import datetime\n\n\ndef f():\n    é = 'ü'; return datetime.utcnow()\n"
    )
    result = audit(project, select=["DTZ"], cache=False, jobs=1)
    [finding] = result.findings
    log = sarif.to_sarif(result, prefix=None)
    loc = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "jobs.py"  # no .git above a tmp folder
    line = "    é = 'ü'; return datetime.utcnow()"
    assert loc["region"]["startColumn"] == line.index("datetime.utcnow") + 1  # characters
    assert finding.location.column == len(line[: line.index("datetime")].encode())  # bytes
    assert log["runs"][0]["columnKind"] == "unicodeCodePoints"


def test_repository_prefix_for_a_project_in_a_subfolder(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    backend = tmp_path / "backend"
    backend.mkdir()
    assert sarif.repository_prefix(backend) == "backend"
    assert sarif.repository_prefix(tmp_path) == ""


def test_not_audited_files_are_notifications(tmp_path: Path, schema: dict) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "p"\n')
    (project / "broken.py").write_text("def f(:\n")
    result = audit(project, cache=False, jobs=1)
    log = sarif.to_sarif(result)
    [note] = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert note["level"] == "error" and "not audited" in note["message"]["text"]
    jsonschema.Draft4Validator(schema).validate(log)


def test_cli_sarif_file_with_text_output(tmp_path: Path, schema: dict) -> None:
    project = FIXTURE  # read-only; its cache is warm from the module's audit
    out = tmp_path / "out.sarif"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gathering_consolidate.cli",
            "audit",
            str(project),
            "-q",
            "--sarif-file",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 1, done.stderr
    assert "DTZ001" in done.stdout  # the text report still goes to stdout
    log = json.loads(out.read_text())
    jsonschema.Draft4Validator(schema).validate(log)
    assert len(log["runs"][0]["results"]) == done.stdout.count("\n")
