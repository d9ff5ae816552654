"""The Markdown migration report, rendered from a real run of the main job on a small project."""

from __future__ import annotations

import re

import pytest

from gathering_consolidate import mainjob
from gathering_consolidate.report import markdown
from tests.test_mainjob import make_small_project


@pytest.fixture(scope="module")
def document(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("md")
    project = make_small_project(tmp / "smallapp")
    result = mainjob.run_job(mainjob.RunOptions(project, tmp / "out", skip_verify=True))
    paths = mainjob.write_outputs(result)
    return mainjob.load_result(paths.result_json)


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_sections_in_order(document):
    text = markdown.render(document)
    titles = re.findall(r"^## (.+)$", text, re.M)
    assert titles == [
        "Stages",
        "Findings before and after",
        "Verify",
        "Latency under load",
        "Codemods",
        "Tests",
        "Schema",
        "Left for people",
        "Reproduce",
    ]


def test_findings_per_family_before_and_after_match_the_audits(document):
    text = _section(markdown.render(document), "Findings before and after")
    before = markdown.stage_data(document, "audit-before")["by_family"]
    after = markdown.stage_data(document, "audit-after")["by_family"]
    for family in set(before) | set(after):
        b, a = before.get(family, 0), after.get(family, 0)
        assert f"| {family} | {b} | {a} | {markdown.fmt_change(b, a)} |" in text
    total_b = markdown.stage_data(document, "audit-before")["findings"]
    assert f"| **total** | {total_b} |" in text
    assert "| family | tier 1 | tier 2 | tier 3 | no tier |" in text


def test_codemod_diffs_are_folded(document):
    text = _section(markdown.render(document), "Codemods")
    items = {c["id"]: c for c in markdown.codemods(document)}
    proposed = items["aware-datetimes"]
    assert proposed["status"] == "proposed"
    summary = (
        f"<summary>aware-datetimes (proposed, not applied): {len(proposed['files'])} files,"
        f" +{proposed['added']} -{proposed['removed']}</summary>"
    )
    assert summary in text
    block = text[text.index(summary) : text.index("</details>", text.index(summary))]
    assert "```diff" in block and "-    return datetime.utcnow()" in block
    assert "| `lint-guard` | safe | ✅ applied |" in text


def test_left_for_people_by_tier_with_the_refusal_reasons(document):
    text = _section(markdown.render(document), "Left for people")
    left = markdown.left_for_people(document)
    assert left, "the small project keeps findings without --unsafe-fixes"
    for tier, items in left.items():
        title = f"{markdown.TIER_NAMES[tier]}: {len(items)}"
        # Tier 1 comes first and open, the later tiers folded.
        assert (f"### {title}" if tier == "1" else f"<summary>{title}</summary>") in text
        for item in items:
            assert f"`{item['path']}:{item['line']}`" in text
    assert "### What the codemods refused, and why" in text
    assert "lint-guard: current phase (1)" in text
    assert "`smallapp/auth.py:9`: tier 1 is in the current phase" in text
    assert "- `aware-datetimes`:" in text  # proposed, not applied


def test_skipped_stages_say_why_and_commands_reproduce(document):
    text = markdown.render(document)
    assert "No verify checks ran. Verify (before): --skip-verify" in text
    assert "Not measured (no verify run" in text
    reproduce = _section(text, "Reproduce")
    assert "gathering-consolidate run " in reproduce and "--skip-verify" in reproduce


def test_latency_and_verify_evidence_from_contract_d_metrics(document):
    """The verify sections read VerifyResult.to_dict() (contract D); here the verify stages of the
    real run are replaced by results in that shape, to check the renderer reads each field."""
    checks = [
        {
            "id": "VFY003",
            "name": "event-loop",
            "status": status,
            "summary": f"health under load ({side})",
            "evidence": [f"{side}: 200 requests"],
            "metrics": {"health_p50_ms": p50, "health_p95_ms": p50 * 3, "health_p99_ms": p50 * 5},
            "duration_s": 1.5,
        }
        for side, status, p50 in (("before", "fail", 40.0), ("after", "pass", 4.0))
    ]
    doc = {**document, "stages": [dict(s) for s in document["stages"]]}
    for stage, check in zip(
        (s for s in doc["stages"] if s["id"].startswith("verify-")), checks, strict=True
    ):
        stage.update(status="ok", data={"checks": [check], "passed": check["status"] == "pass"})
    text = markdown.render(doc)
    assert "| health p50 | 40.0 ms | 4.0 ms |" in text
    assert "| health p99 | 200.0 ms | 20.0 ms |" in text
    assert "| VFY003 | event-loop | ❌ fail | ✅ pass | health under load (after) |" in text
    assert "- before: 200 requests" in text and "- after: 200 requests" in text


def test_markdown_cells_are_escaped():
    assert markdown._cell("a | b\nc") == "a \\| b c"
