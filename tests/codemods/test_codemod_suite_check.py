"""The parts of `scripts/codemod_suite_check.py` that decide what it reports: how a Python 3.14
project is made to run on an older Python (same line numbers) and the verdict per codemod. The
script itself runs whole test suites and is run by hand (its figures are in the issue)."""

from __future__ import annotations

import ast
import importlib.util
import sys

from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location(
    "codemod_suite_check", REPO / "scripts" / "codemod_suite_check.py"
)
check = importlib.util.module_from_spec(_spec)
sys.modules["codemod_suite_check"] = check
_spec.loader.exec_module(check)


def test_lowering_keeps_lines_and_quotes_forward_references(tmp_path):
    (tmp_path / "deps.py").write_text(
        "def f():\n    try:\n        g()\n    except KeyError, ValueError:\n        pass\n"
    )
    (tmp_path / "models.py").write_text(
        "class User(Base):\n    items: list[Item] = rel()\n    name: str\n\n\n"
        "class Item(Base):\n    owner: User | None = rel()\n"
    )
    (tmp_path / "plain.py").write_text("x: int = 1\n")
    assert check.lower_tree(tmp_path) == 2
    deps = (tmp_path / "deps.py").read_text()
    assert "    except (KeyError, ValueError):\n" in deps and deps.count("\n") == 5
    ast.parse(deps)
    models = (tmp_path / "models.py").read_text()
    assert '    items: list["Item"] = rel()\n' in models
    assert "    owner: User | None = rel()\n" in models  # defined above: left as is
    assert (tmp_path / "plain.py").read_text() == "x: int = 1\n"


def test_verdicts():
    baseline = check.Suite(passed=3, failing={"t.a"}, failed=1)
    assert check.verdict(baseline, check.Suite(passed=3, failing={"t.a"}, failed=1)) == (
        "baseline kept"
    )
    assert check.verdict(baseline, check.Suite(passed=4)) == "baseline kept"
    broke = check.verdict(baseline, check.Suite(passed=2, failing={"t.a", "t.b"}, failed=2))
    assert broke == "BROKE 1: t.b"
    assert check.verdict(baseline, check.Suite(passed=1)).startswith("FEWER PASSED")
    assert check.verdict(baseline, check.Suite(problem="x")) == "NOT RUN"
    assert check.verdict(check.Suite(), check.Suite(passed=1)) == "NO BASELINE"
