"""Helpers for the exception codemod scenarios: run a codemod on in-memory files."""

from __future__ import annotations

from pathlib import Path

from gathering_consolidate.audit.base import dedent
from gathering_consolidate.codemods.base import Changed, CodemodProject, Refused
from gathering_consolidate.codemods.engine import MigrationPlan, run_codemod, syntax_problem
from gathering_consolidate.config import load_config
from tests.conftest import REPO


def plan(codemod_cls, files: dict[str, str], root: Path | None = None, **options) -> MigrationPlan:
    config = load_config(REPO / "tests")
    project = CodemodProject(
        root=root or Path("/nonexistent"),
        config=config,
        files={p: dedent(c) for p, c in files.items()},
    )
    result = run_codemod(codemod_cls(options), project)
    assert not result.failures, result.failures
    for change in result.changes:
        assert syntax_problem(change.after, change.path) is None
    return result


def changed(result: MigrationPlan, path: str) -> Changed:
    found = [c for c in result.changes if c.path == path]
    assert found, result.outcomes
    return found[0]


def refusals(result: MigrationPlan) -> list[tuple[int | None, str]]:
    return [(o.line, o.reason) for o in result.outcomes if isinstance(o, Refused)]
