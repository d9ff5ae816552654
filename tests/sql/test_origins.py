"""Origin tracing and verdicts (`cases/origins.yml`): whole sites through the SQL family."""

from __future__ import annotations

from gathering_consolidate.audit import registry
from gathering_consolidate.audit.base import dedent
from gathering_consolidate.config import Config, load_config
from gathering_consolidate.project import audit_sources, sources_from_mapping
from tests.conftest import REPO


def audit_files(files: dict[str, str]):
    base = load_config(REPO / "tests")
    config = Config(root=base.root, tiers=base.tiers, select=("SQL",))
    result = audit_sources(sources_from_mapping(files), config, registry())
    assert not result.errors, result.errors
    return result


def test_origin_case(origin_case):
    files = {p: dedent(c) for p, c in (origin_case.get("files") or {}).items()}
    files["app/module.py"] = dedent(origin_case["code"])
    result = audit_files(files)
    sites = [f for f in result.findings if f.rule in ("SQL001", "SQL002")]
    expect = origin_case["expect"]
    if expect["verdict"] == "safe":
        assert sites == [], [(f.location.line, f.message) for f in sites]
        return
    assert len(sites) == 1, [(f.location.line, f.message) for f in sites]
    (site,) = sites
    assert site.evidence["verdict"] == expect["verdict"], site.message
    slots = {}
    for slot in site.evidence["slots"]:
        slots.setdefault(slot["expr"], set()).add(slot["origin"])
    for expr, origin in (expect.get("origins") or {}).items():
        assert slots.get(expr) == {origin}, (expr, site.evidence["slots"])
    if "sink" in expect:
        assert site.evidence["sink"] == expect["sink"]
