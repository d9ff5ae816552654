"""Every check's VALID/INVALID examples are its tests (Fixit's `add_lint_rule_tests_to_module`)."""

from __future__ import annotations

import pytest

from gathering_consolidate.audit import registry
from gathering_consolidate.audit.base import Invalid, Valid, dedent
from gathering_consolidate.config import Config, load_config
from gathering_consolidate.project import audit_sources, sources_from_mapping
from tests.conftest import REPO


def _cases():
    for check in registry():
        for i, example in enumerate(check.VALID):
            yield pytest.param(check, example, id=f"{check.id}-valid-{i}")
        for i, example in enumerate(check.INVALID):
            yield pytest.param(check, example, id=f"{check.id}-invalid-{i}")


def _run(check, example: Valid | Invalid):
    base = load_config(REPO / "tests")  # defaults (tiers) without the repo's own settings
    config = Config(
        root=base.root,
        tiers=base.tiers,
        default_tier=base.default_tier,
        check_options={check.id: dict(example.options)} if example.options else {},
    )
    files = {p: dedent(c) for p, c in example.files.items()}
    files[example.path] = dedent(example.code)
    result = audit_sources(sources_from_mapping(files), config, registry())
    assert not result.errors, result.errors
    assert not result.failed_files, result.failed_files
    return [f for f in result.findings if f.rule == check.id]


@pytest.mark.parametrize(("check", "example"), list(_cases()))
def test_example(check, example):
    findings = _run(check, example)
    if isinstance(example, Valid):
        assert findings == [], [f"{f.location.line}: {f.message}" for f in findings]
        return
    mine = [f for f in findings if f.location.path == example.path]
    assert len(mine) == example.count, [f"{f.location.line}: {f.message}" for f in findings]
    first = mine[0]
    if example.line is not None:
        assert first.location.line == example.line
    if example.tier is not None:
        assert first.tier == example.tier
    for key, value in example.evidence.items():
        assert first.evidence.get(key) == value, (key, first.evidence)
    if example.message is not None:
        assert example.message in first.message
