"""Every codemod's CASES are its tests: output equals `after`, re-parses, a second run changes
nothing (idempotence), comments survive; `Keeps` stays byte-identical; `Refuses` says why."""

from __future__ import annotations

import io
import tempfile
import tokenize
from pathlib import Path

import pytest

from gathering_consolidate.audit.base import dedent
from gathering_consolidate.codemods import Changed, Keeps, Refused, Refuses, Rewrite
from gathering_consolidate.codemods.base import CodemodProject, case_sources
from gathering_consolidate.codemods.engine import codemod_registry, run_codemod, syntax_problem
from gathering_consolidate.config import load_config
from tests.conftest import REPO


def _cases():
    for codemod in codemod_registry().values():
        for i, case in enumerate(codemod.CASES):
            yield pytest.param(codemod, case, id=f"{codemod.id}-{type(case).__name__.lower()}-{i}")


def _project(files: dict[str, str], root: Path) -> CodemodProject:
    """The case's files, in memory and also on disk under `root` (codemods that read the tree
    as a tool does, such as tag-tests' inventory, see the same files)."""
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    config = load_config(REPO / "tests")
    return CodemodProject(root=root, config=config, files=dict(files))


def _run(codemod_cls, files, options):
    with tempfile.TemporaryDirectory(prefix="gc-case-") as tmp:
        plan = run_codemod(codemod_cls(options), _project(files, Path(tmp)))
    assert not plan.failures, plan.failures
    return plan


def _comments(text: str) -> list[str]:
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return [t.string for t in tokens if t.type == tokenize.COMMENT]


def test_there_are_codemods():
    assert codemod_registry()


@pytest.mark.parametrize(("codemod", "case"), list(_cases()))
def test_case(codemod, case):
    files = case_sources(case)
    plan = _run(codemod, files, case.options)
    by_path = {o.path: o for o in plan.outcomes}
    outcome = by_path.get(case.path)
    if isinstance(case, Keeps):
        assert not plan.changes, [c.path for c in plan.changes]
        return
    if isinstance(case, Refuses):
        refusals = [o for o in plan.outcomes if isinstance(o, Refused)]
        assert refusals, plan.outcomes
        assert any(case.reason in r.reason for r in refusals), [r.reason for r in refusals]
        return
    assert isinstance(case, Rewrite)
    assert isinstance(outcome, Changed), plan.outcomes
    assert outcome.after == dedent(case.after)
    assert syntax_problem(outcome.after) is None
    for comment in _comments(files[case.path]):
        assert comment in outcome.after, f"comment lost: {comment}"
    # Idempotence: run again on the result (every changed file updated).
    again = dict(files)
    for change in plan.changes:
        again[change.path] = change.after
    second = _run(codemod, again, case.options)
    assert not second.changes, [c.path for c in second.changes]
