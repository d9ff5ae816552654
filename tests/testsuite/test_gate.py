"""The ledger and the gate: deleting a test, adding a skip without an issue link, or `|| true`
in a workflow each fail with their message; adding a test passes. CI that hides failures is
found in GitHub and GitLab workflows, Makefiles, tox and nox files and shell scripts."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gathering_consolidate.cli import app
from gathering_consolidate.testsuite.ci import hidden_failures
from gathering_consolidate.testsuite.gate import gate
from gathering_consolidate.testsuite.ledger import LedgerError, build_ledger

runner = CliRunner()

WORKFLOW = """
    name: ci
    on: [push]
    jobs:
      test:
        runs-on: ubuntu-latest
        steps:
          - uses: actions/checkout@v4
          - name: lint
            run: ruff check . || true
            continue-on-error: true
          - name: tests
            run: python -m pytest -m "not stub"
"""

SUITE = {
    "pyproject.toml": '[project]\nname = "app"\n\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
    ".github/workflows/ci.yml": WORKFLOW,
    "tests/test_one.py": """
        import pytest


        def test_a():
            assert True


        def test_b():
            assert True


        @pytest.mark.skip(reason="blocked by #12: upstream bug")
        def test_c():
            assert False
    """,
}


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    root = write(tmp_path, SUITE)
    (root / "tests-ledger.json").write_text(build_ledger(root).dumps(), encoding="utf-8")
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_ledger(suite):
    data = json.loads((suite / "tests-ledger.json").read_text(encoding="utf-8"))
    assert data["total"] == 3
    assert data["by_tag"] == {"stub": 0, "contract": 0, "integration": 0, "unit": 3}
    assert data["by_file"] == {"tests/test_one.py": 3}
    assert [(s["test"], s["issue"]) for s in data["skips"]] == [
        ("tests/test_one.py::test_c", "#12")
    ]
    assert data["xfails"] == []
    assert data["gate"] == 'pytest -m "not stub"'


def test_unchanged_suite_passes(suite):
    result = gate(suite)
    assert result.passed, result.problems
    assert result.gate_command == 'pytest -m "not stub"'


def test_adding_a_test_passes(suite):
    with (suite / "tests" / "test_one.py").open("a", encoding="utf-8") as handle:
        handle.write("\n\ndef test_d():\n    assert True\n")
    result = gate(suite)
    assert result.passed, result.problems
    assert result.ledger is not None and result.ledger.total == 4


def test_deleting_a_test_fails(suite):
    edit(suite / "tests" / "test_one.py", "def test_b():\n    assert True\n", "")
    result = gate(suite)
    assert not result.passed
    assert [p.code for p in result.problems] == ["tests-removed"]
    assert result.problems[0].message.startswith(
        "the suite shrank from 3 to 2 tests: tests/test_one.py (3 -> 2)"
    )


def test_a_skip_without_an_issue_link_fails(suite):
    edit(
        suite / "tests" / "test_one.py",
        "def test_b():",
        '@pytest.mark.skip(reason="flaky")\ndef test_b():',
    )
    result = gate(suite)
    assert not result.passed
    codes = {p.code: p for p in result.problems}
    assert set(codes) == {"skips-grew", "skip-without-issue"}
    assert codes["skips-grew"].message == "skips grew from 1 to 2: tests/test_one.py::test_b"
    assert codes["skip-without-issue"].message.startswith(
        "tests/test_one.py::test_b: skip without an issue reference ('flaky')"
    )
    assert codes["skip-without-issue"].location == "tests/test_one.py:9"


def test_an_xfail_without_an_issue_link_fails(suite):
    with (suite / "tests" / "test_one.py").open("a", encoding="utf-8") as handle:
        handle.write('\n\n@pytest.mark.xfail(reason="sometimes")\ndef test_e():\n    assert 0\n')
    result = gate(suite)
    assert [p.code for p in result.problems] == ["xfail-without-issue"]


def test_or_true_in_a_workflow_fails(suite):
    edit(
        suite / ".github" / "workflows" / "ci.yml",
        'python -m pytest -m "not stub"',
        'python -m pytest -m "not stub" || true',
    )
    result = gate(suite)
    assert not result.passed
    assert [(p.code, p.location) for p in result.problems] == [
        ("ci-hides-failures", ".github/workflows/ci.yml:13")
    ]
    assert result.problems[0].message == "`|| true` after the test command hides its failure"


def test_known_unlinked_skips_are_debt_not_failures(tmp_path):
    root = write(tmp_path, {**SUITE, "tests/test_two.py": "import pytest\n\n\n"
                            "@pytest.mark.skip(reason='flaky')\ndef test_x():\n    pass\n"})  # fmt: skip
    (root / "tests-ledger.json").write_text(build_ledger(root).dumps(), encoding="utf-8")
    result = gate(root)
    assert result.passed
    assert [w.code for w in result.warnings] == ["skip-without-issue"]
    strict = gate(root, strict=True)
    assert not strict.passed
    assert [p.code for p in strict.problems] == ["skip-without-issue"]


def test_missing_or_bad_ledger_is_an_error(tmp_path):
    root = write(tmp_path, SUITE)
    with pytest.raises(LedgerError, match="no ledger"):
        gate(root)
    (root / "tests-ledger.json").write_text("{", encoding="utf-8")
    with pytest.raises(LedgerError, match="not valid JSON"):
        gate(root)


HIDING = {
    ".github/workflows/step.yml": (
        "jobs:\n  t:\n    steps:\n      - run: pytest\n        continue-on-error: true\n"
        "      - run: ruff check .\n        continue-on-error: true\n"
    ),
    ".github/workflows/job.yml": (
        "jobs:\n  t:\n    continue-on-error: true\n    steps:\n      - run: tox -e py\n"
    ),
    ".gitlab-ci.yml": "test:\n  script:\n    - pytest -q\n  allow_failure: true\n"
    "lint:\n  script:\n    - ruff check .\n  allow_failure: true\n",
    "Makefile": "test:\n\t-pytest -q\n\nlint:\n\t-ruff check .\n",
    "tox.ini": "[testenv]\nignore_outcome = true\ncommands =\n    - pytest {posargs}\n",
    "noxfile.py": "import nox\n\n@nox.session\ndef tests(session):\n"
    "    session.run('pytest', success_codes=[0, 1])\n",
    "scripts/loop.sh": "#!/bin/sh\nset +e\nfor d in a b; do\n  pytest $d\ndone\n",
    "scripts/exit.sh": "#!/bin/sh\npytest tests; exit 0\n",
    "scripts/tee.sh": "#!/bin/sh\nset -e\npython -m pytest | tee out.log\n",
    "scripts/fine.sh": "#!/bin/bash\nset -eo pipefail\npip install x || true\n"
    "set +e\npytest | tee log\nstatus=$?\nexit $status\n",
}


def test_every_way_to_hide_a_failure_is_found(tmp_path):
    root = write(tmp_path, HIDING)
    found = {(h.path, h.line): h.message for h in hidden_failures(root)}
    assert set(found) == {
        (".github/workflows/job.yml", 3),
        (".github/workflows/step.yml", 5),
        (".gitlab-ci.yml", 4),
        ("Makefile", 2),
        ("noxfile.py", 5),
        ("scripts/exit.sh", 2),
        ("scripts/loop.sh", 4),
        ("scripts/tee.sh", 3),
        ("tox.ini", 2),
        ("tox.ini", 4),
    }
    assert "`set +e` (line 2)" in found[("scripts/loop.sh", 4)]
    assert "pipefail" in found[("scripts/tee.sh", 3)]
    assert found[("Makefile", 2)] == "a `-` before the test command: make ignores its failure"


def test_cli_gate_prints_problems_and_the_gate_command(suite):
    edit(suite / "tests" / "test_one.py", "def test_b():\n    assert True\n", "")
    result = runner.invoke(app, ["tests", "gate", str(suite)])
    assert result.exit_code == 1
    assert "tests-removed: the suite shrank from 3 to 2 tests" in result.stdout
    assert result.stdout.rstrip().endswith('gate CI on: pytest -m "not stub"')


def test_cli_ledger_then_gate(tmp_path):
    root = write(tmp_path, SUITE)
    written = runner.invoke(app, ["tests", "ledger", str(root)])
    assert written.exit_code == 0, written.output
    assert json.loads((root / "tests-ledger.json").read_text(encoding="utf-8"))["total"] == 3
    printed = runner.invoke(app, ["tests", "ledger", str(root), "-o", "-"])
    assert json.loads(printed.stdout)["total"] == 3
    passed = runner.invoke(app, ["tests", "gate", str(root), "-f", "json"])
    assert passed.exit_code == 0
    assert json.loads(passed.stdout)["passed"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tests", "inventory", "/nonexistent/x"], "no such file or directory"),
        (["tests", "classify", ".", "-f", "yaml"], "--format yaml: use text or json"),
        (["tests", "gate", "{root}", "--ledger", "{root}/nope.json"], "no ledger"),
        (["tests", "inventory", "{root}", "--python", "{root}/nope/python"], "no such file"),
        (["tests", "gate", "/nonexistent/x"], "no such file or directory"),
    ],
)
def test_cli_usage_errors_exit_2(tmp_path, args, message):
    root = write(tmp_path, SUITE)
    result = runner.invoke(app, [a.format(root=root) for a in args])
    assert result.exit_code == 2
    assert message in result.output


def test_cli_inventory_and_classify(tmp_path):
    root = write(tmp_path, SUITE)
    listing = runner.invoke(app, ["tests", "inventory", str(root)])
    assert listing.exit_code == 0
    assert "tests/test_one.py::test_c  (skip: blocked by #12: upstream bug)" in listing.stdout
    assert "3 tests in 1 files" in listing.stdout
    classified = runner.invoke(app, ["tests", "classify", str(root), "-f", "json"])
    assert classified.exit_code == 0
    assert json.loads(classified.stdout)["by_tag"]["unit"] == 3
