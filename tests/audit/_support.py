"""Helpers for the scenario tests of the audit families: audit in-memory files with a chosen set
of families, as the example runner does."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gathering_consolidate.audit import registry
from gathering_consolidate.audit.base import dedent
from gathering_consolidate.config import Config, load_config
from gathering_consolidate.model import AuditResult, Finding
from gathering_consolidate.project import audit_sources, sources_from_mapping
from tests.conftest import REPO


def audit_files(files: Mapping[str, str], families: Iterable[str]) -> AuditResult:
    wanted = tuple(families)
    base = load_config(REPO / "tests")
    config = Config(root=base.root, tiers=base.tiers, default_tier=base.default_tier)
    checks = [c for c in registry() if c.id.startswith(wanted)]
    result = audit_sources(
        sources_from_mapping({p: dedent(c) for p, c in files.items()}), config, checks
    )
    assert not result.errors, result.errors
    assert not result.failed_files, result.failed_files
    return result


def found(result: AuditResult, rule: str) -> list[Finding]:
    return [f for f in result.findings if f.rule == rule]
