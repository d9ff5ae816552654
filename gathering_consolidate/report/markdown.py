"""The migration report in Markdown, rendered from a run result (`RunResult.to_dict()`, the
`result.json` of `gathering-consolidate run`), so it can be rendered again from that file.

The functions named without an underscore (`findings_table`, `latency`, `left_for_people`, ...)
read the result into plain rows; `report/html.py` renders the same rows as HTML, so both reports
always say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

TIERS = ("1", "2", "3", "-")
TIER_NAMES = {
    "1": "tier 1 (auth, database writes, security: first)",
    "2": "tier 2",
    "3": "tier 3",
    "-": "no tier",
}
LATENCY_KEYS = (("p50", "health_p50_ms"), ("p95", "health_p95_ms"), ("p99", "health_p99_ms"))
STATUS_MARK = {
    "ok": "✅ ok",
    "pass": "✅ pass",
    "failed": "❌ failed",
    "fail": "❌ fail",
    "error": "⚠️ error",
    "skipped": "⏭️ skipped",
    "not-applicable": "⚪ n/a",
    "applied": "✅ applied",
    "proposed": "📝 proposed",
    "unchanged": "⚪ nothing to change",
}


# -- reading the result -------------------------------------------------------------------------
def stage(document: Mapping[str, Any], stage_id: str) -> Mapping[str, Any] | None:
    return next((s for s in document.get("stages", ()) if s["id"] == stage_id), None)


def stage_data(document: Mapping[str, Any], stage_id: str) -> Mapping[str, Any] | None:
    """The data of a stage that ran (ok or failed), else None."""
    found = stage(document, stage_id)
    if found is None or found["status"] not in ("ok", "failed"):
        return None
    return found["data"]


def project_name(document: Mapping[str, Any]) -> str:
    root = str(document.get("project_root", "")).rstrip("/")
    return root.rsplit("/", 1)[-1] or "project"


def shown(document: Mapping[str, Any], which: str) -> str:
    """The project or a copy as the user named it (`--out` as given), else the absolute path."""
    options = document.get("options", {})
    if which == "project":
        return str(options.get("target") or document["project_root"])
    out = options.get("out")
    return f"{out.rstrip('/')}/{which}" if out else str(document[f"{which}_dir"])


def not_passed(document: Mapping[str, Any]) -> list[str]:
    """The stages that make the run's exit code 1 (the "before" verify failing does not)."""
    return [s["title"] for s in document.get("stages", ()) if s.get("fails_run")]


def app_shown(document: Mapping[str, Any]) -> str:
    """The app verify ran and its profile, or why there was none."""
    for side in ("after", "before"):
        data = stage_data(document, f"verify-{side}")
        if data:
            profile = str(data.get("profile") or "").rsplit("/", 1)[-1]
            return f"{data.get('app')}" + (f" (verify profile {profile})" if profile else "")
    options = document.get("options", {})
    return options.get("app") or "none (verify did not run)"


def findings_table(document: Mapping[str, Any]) -> list[tuple[str, int | None, int | None]]:
    """(family, findings before, findings after) for every family seen in either audit."""
    before = stage_data(document, "audit-before")
    after = stage_data(document, "audit-after")
    families = sorted(
        set((before or {}).get("by_family", {})) | set((after or {}).get("by_family", {}))
    )
    rows = []
    for family in families:
        b = before["by_family"].get(family, 0) if before else None
        a = after["by_family"].get(family, 0) if after else None
        rows.append((family, b, a))
    return rows


def tier_table(
    document: Mapping[str, Any],
) -> list[tuple[str, list[tuple[int | None, int | None]]]]:
    """(family, [(before, after) for each of TIERS]) for the families with tiered findings."""
    before = (stage_data(document, "audit-before") or {}).get("by_family_tier")
    after = (stage_data(document, "audit-after") or {}).get("by_family_tier")
    families = sorted(set(before or {}) | set(after or {}))
    rows = []
    for family in families:
        cells = []
        for tier in TIERS:
            b = (before or {}).get(family, {}).get(tier, 0) if before is not None else None
            a = (after or {}).get(family, {}).get(tier, 0) if after is not None else None
            cells.append((b, a))
        rows.append((family, cells))
    return rows


def totals(document: Mapping[str, Any]) -> tuple[int | None, int | None]:
    before = stage_data(document, "audit-before")
    after = stage_data(document, "audit-after")
    return (before["findings"] if before else None, after["findings"] if after else None)


def codemods(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    data = stage_data(document, "codemods")
    return list(data["codemods"]) if data else []


def verify_checks(document: Mapping[str, Any]) -> list[tuple[str, str, Any, Any]]:
    """(id, name, before check or None, after check or None), in check id order."""
    before = stage_data(document, "verify-before")
    after = stage_data(document, "verify-after")
    by_id: dict[str, list[Any]] = {}
    for index, data in enumerate((before, after)):
        for check in (data or {}).get("checks", ()):
            entry = by_id.setdefault(check["id"], [check["name"], None, None])
            entry[1 + index] = check
    return [(cid, e[0], e[1], e[2]) for cid, e in sorted(by_id.items())]


def latency(document: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """{"before": {"p50": ms, ...}, "after": {...}}: the health latency under load measured by
    the verify check whose metrics carry it (contract D); a side without it is left out."""
    found: dict[str, dict[str, float]] = {}
    for side in ("before", "after"):
        data = stage_data(document, f"verify-{side}")
        for check in (data or {}).get("checks", ()):
            metrics = check.get("metrics") or {}
            values = {
                label: float(metrics[key])
                for label, key in LATENCY_KEYS
                if isinstance(metrics.get(key), int | float)
            }
            if values:
                found[side] = values
                break
    return found


def latency_extra(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Idle p95 and throughput beside the health latency, per side (when measured)."""
    found: dict[str, dict[str, Any]] = {}
    for side in ("before", "after"):
        data = stage_data(document, f"verify-{side}")
        for check in (data or {}).get("checks", ()):
            metrics = check.get("metrics") or {}
            if "health_p95_ms" in metrics:
                found[side] = {k: metrics[k] for k in ("idle_p95_ms", "rps") if k in metrics}
                break
    return found


def left_for_people(document: Mapping[str, Any]) -> dict[str, list[Mapping[str, Any]]]:
    """The findings the audit after the migration still reports, by tier (TIERS order)."""
    after = stage_data(document, "audit-after")
    grouped: dict[str, list[Mapping[str, Any]]] = {t: [] for t in TIERS}
    for item in (after or {}).get("items", ()):
        if item["severity"] == "info":
            continue
        tier = str(item["tier"]) if item["tier"] is not None else "-"
        grouped.setdefault(tier, []).append(item)
    return {t: items for t, items in grouped.items() if items}


def refusals(document: Mapping[str, Any]) -> list[tuple[str, str, list[Mapping[str, Any]]]]:
    """(codemod, category, refusals) for every codemod that left places alone, by category."""
    rows = []
    for item in codemods(document):
        by_category: dict[str, list[Mapping[str, Any]]] = {}
        for refusal in item["refusals"]:
            by_category.setdefault(refusal["category"], []).append(refusal)
        for category, entries in sorted(by_category.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            rows.append((item["id"], category, entries))
    return rows


def ledger(document: Mapping[str, Any]) -> Mapping[str, Any] | None:
    data = stage_data(document, "tests")
    return data.get("ledger") if data else None


def schema_revisions(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    data = stage_data(document, "schema")
    revisions = (data or {}).get("revisions", [])
    return [r if isinstance(r, Mapping) else {"revision": str(r)} for r in revisions]


def fmt_count(value: int | None) -> str:
    return "-" if value is None else str(value)


def fmt_change(before: int | None, after: int | None) -> str:
    if before is None or after is None:
        return ""
    delta = after - before
    return "0" if delta == 0 else f"{delta:+d}"


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def location(item: Mapping[str, Any]) -> str:
    line = item.get("line")
    return f"{item['path']}:{line}" if line else str(item["path"])


# -- Markdown -----------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |"]
    lines.append("| " + " | ".join("---" for _ in header) + " |")
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _fence(text: str, language: str = "") -> list[str]:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return [f"{ticks}{language}", text.rstrip("\n"), ticks]


def _details(summary: str, body: list[str]) -> list[str]:
    return [
        "<details>",
        f"<summary>{_html_escape(summary)}</summary>",
        "",
        *body,
        "",
        "</details>",
        "",
    ]


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(document: Mapping[str, Any]) -> str:
    """The whole report as Markdown (GitHub-flavoured: tables, <details>)."""
    lines: list[str] = []
    lines += _header(document)
    lines += _stages(document)
    lines += _findings(document)
    lines += _verify(document)
    lines += _latency(document)
    lines += _codemods(document)
    lines += _tests(document)
    lines += _schema(document)
    lines += _left(document)
    lines += _commands(document)
    return "\n".join(lines).rstrip("\n") + "\n"


def _header(document: Mapping[str, Any]) -> list[str]:
    options = document["options"]
    before, after = totals(document)
    not_passed_ = not_passed(document)
    verdict = (
        f" Not passed: {', '.join(not_passed_)}."
        if not_passed_
        else " Every stage that ran passed."
    )
    lines = [
        f"# Consolidation report: {project_name(document)}",
        "",
        f"Run in {document['duration_s']:.0f} s on {document['started_at']} by"
        f" gathering-consolidate {document['tool']['version']}.{verdict}",
        "",
        f"- Project: `{shown(document, 'project')}` (never modified; copies in"
        f" `{shown(document, 'before')}` (as it was) and `{shown(document, 'after')}` (migrated))",
        f"- Findings: {fmt_count(before)} before, {fmt_count(after)} after",
        f"- Unsafe codemods: {'applied (--unsafe-fixes)' if options['unsafe_fixes'] else 'proposed only (diffs kept, not applied)'}",
        f"- App: `{app_shown(document)}`",
        f"- Database: {options['database']}",
        "",
    ]
    return lines


def _stages(document: Mapping[str, Any]) -> list[str]:
    rows = [
        (
            s["title"],
            STATUS_MARK.get(s["status"], s["status"]),
            f"{s['duration_s']:.1f} s",
            s["summary"],
        )
        for s in document["stages"]
    ]
    lines = ["## Stages", "", *_table(("stage", "status", "time", "summary"), rows)]
    for s in document["stages"]:
        if s["status"] == "error" and s.get("detail"):
            lines += _details(f"{s['title']}: error detail", _fence(s["detail"]))
    return lines


def _findings(document: Mapping[str, Any]) -> list[str]:
    lines = ["## Findings before and after", ""]
    rows = findings_table(document)
    if not rows:
        return [*lines, "No audit ran (see the stages).", ""]
    before, after = totals(document)
    table_rows = [(f, fmt_count(b), fmt_count(a), fmt_change(b, a)) for f, b, a in rows]
    table_rows.append(("**total**", fmt_count(before), fmt_count(after), fmt_change(before, after)))
    lines += _table(("family", "before", "after", "change"), table_rows)
    tiers = tier_table(document)
    if tiers:
        lines += ["By tier (before → after):", ""]
        tier_rows = [
            (family, *(f"{fmt_count(b)} → {fmt_count(a)}" for b, a in cells))
            for family, cells in tiers
        ]
        lines += _table(("family", "tier 1", "tier 2", "tier 3", "no tier"), tier_rows)
    return lines


def _codemods(document: Mapping[str, Any]) -> list[str]:
    lines = ["## Codemods", ""]
    items = codemods(document)
    if not items:
        return [*lines, "The codemods did not run (see the stages).", ""]
    rows = [
        (
            f"`{i['id']}`",
            i["applicability"],
            STATUS_MARK.get(i["status"], i["status"]),
            len(i["files"]),
            f"+{i['added']} -{i['removed']}",
            len(i["refusals"]),
        )
        for i in items
    ]
    lines += _table(("codemod", "kind", "status", "files", "lines", "refused"), rows)
    for i in items:
        if i.get("error"):
            lines += [f"- `{i['id']}`: {i['error']}"]
        for failure in i["failures"]:
            lines += [f"- `{i['id']}` failed on `{failure['path']}`: {failure['reason']}"]
    for i in items:
        if not i["diff"]:
            continue
        what = "applied" if i["status"] == "applied" else "proposed, not applied"
        summary = f"{i['id']} ({what}): {len(i['files'])} files, +{i['added']} -{i['removed']}"
        body = _fence(i["diff"], "diff")
        if i["diff_truncated"]:
            body.append(f"(cut; the whole diff is in `{i['diff_file']}`)")
        lines += _details(summary, body)
    return lines


def _tests(document: Mapping[str, Any]) -> list[str]:
    lines = ["## Tests", ""]
    found = stage(document, "tests")
    data = ledger(document)
    if data is None:
        reason = found["summary"] if found else "the stage did not run"
        return [*lines, f"No test ledger: {reason}.", ""]
    lines += [f"{data.get('total', 0)} tests in the ledger (`tests-ledger.json`).", ""]
    by_tag = data.get("by_tag", {})
    if by_tag:
        lines += _table(("tag", "tests"), sorted(by_tag.items()))
    by_file = data.get("by_file", {})
    if by_file:
        rows = []
        for path, value in sorted(by_file.items()):
            if isinstance(value, Mapping):
                rows.append((f"`{path}`", ", ".join(f"{k} {v}" for k, v in sorted(value.items()))))
            else:
                rows.append((f"`{path}`", value))
        lines += _details(f"tests by file ({len(rows)} files)", _table(("file", "tests"), rows))
    for key, title in (("skips", "Skipped tests"), ("xfails", "Expected failures")):
        entries = data.get(key) or []
        if entries:
            lines += [f"{title} ({len(entries)}):", ""]
            lines += [f"- {entry_text(e)}" for e in entries]
            lines.append("")
    tagging = stage_data(document, "tests").get("tagging")
    if tagging and tagging.get("diff"):
        lines += _details(
            f"tag-tests: {len(tagging['files'])} files, +{tagging['added']} -{tagging['removed']}",
            _fence(tagging["diff"], "diff"),
        )
    return lines


def entry_text(entry: Any) -> str:
    if isinstance(entry, Mapping):
        where = entry.get("test") or entry.get("nodeid") or entry.get("name") or entry.get("path")
        reason = entry.get("reason", "")
        return f"`{where}`" + (f": {reason}" if reason else "")
    return str(entry)


def _schema(document: Mapping[str, Any]) -> list[str]:
    lines = ["## Schema", ""]
    found = stage(document, "schema")
    data = stage_data(document, "schema")
    if data is None:
        reason = found["summary"] if found else "the stage did not run"
        return [*lines, f"Not migrated: {reason}.", ""]
    revisions = schema_revisions(document)
    app_schema = ", ".join(f"`{name}`" for name in data.get("app_schema", []))
    lines += [
        f"On a disposable database of {server_name(data)}: the app's schema ({app_schema}),"
        f" then {len(revisions)} revisions, {data.get('start') or 'base'} → {data.get('end')}"
        f" (offline SQL: `{data.get('sql_file', 'schema.sql')}`).",
        "",
    ]
    if revisions:
        rows = [
            (f"`{r.get('revision', '')}`", r.get("description", ""), seconds(r.get("duration_s")))
            for r in revisions
        ]
        lines += _table(("revision", "what", "time"), rows)
    drift = data.get("drift")
    if drift is not None:
        if drift.get("ok"):
            lines += [f"Drift check: the database matches the head schema ({drift['head']}).", ""]
        else:
            lines += [
                f"Drift check: {len(drift['problems'])} differences from the head schema:",
                "",
            ]
            lines += [f"- {p['kind']} `{p['object']}`: {p['message']}" for p in drift["problems"]]
            lines.append("")
    return lines


def server_name(data: Mapping[str, Any]) -> str:
    """The server a stage used, as the report names it."""
    if data.get("embedded"):
        return "the embedded PostgreSQL"
    return str(data.get("server", "?"))


def seconds(value: Any) -> str:
    return f"{value:.2f} s" if isinstance(value, int | float) else ""


def _verify(document: Mapping[str, Any]) -> list[str]:
    lines = ["## Verify", ""]
    checks = verify_checks(document)
    if not checks:
        reasons = [
            f"{s['title']}: {s['summary']}"
            for s in document["stages"]
            if s["id"].startswith("verify-")
        ]
        return [*lines, "No verify checks ran. " + "; ".join(reasons) + ".", ""]
    rows = []
    for cid, name, before, after in checks:
        rows.append(
            (
                cid,
                name,
                STATUS_MARK.get(before["status"], before["status"]) if before else "-",
                STATUS_MARK.get(after["status"], after["status"]) if after else "-",
                (after or before)["summary"],
            )
        )
    lines += _table(("check", "name", "before", "after", "summary (after)"), rows)
    for cid, name, before, after in checks:
        body: list[str] = []
        for side, check in (("before", before), ("after", after)):
            if check is None:
                continue
            body += [
                f"**{side}**: {check['status']}: {check['summary']} ({check['duration_s']:.1f} s)",
                "",
            ]
            body += [f"- {line}" for line in check.get("evidence", [])] or ["- (no evidence)"]
            metrics = check.get("metrics") or {}
            if metrics:
                body += ["", ", ".join(f"{k} = {v}" for k, v in sorted(metrics.items()))]
            body.append("")
        lines += _details(f"{cid} {name}: evidence", body)
    return lines


def _latency(document: Mapping[str, Any]) -> list[str]:
    lines = ["## Latency under load", ""]
    measured = latency(document)
    if not measured:
        return [*lines, "Not measured (no verify run carried health latency metrics).", ""]
    rows = []
    for label, _key in LATENCY_KEYS:
        b = measured.get("before", {}).get(label)
        a = measured.get("after", {}).get(label)
        rows.append((f"health {label}", fmt_ms(b), fmt_ms(a)))
    extra = latency_extra(document)
    for key, title in (("idle_p95_ms", "idle p95"), ("rps", "requests/s")):
        b = extra.get("before", {}).get(key)
        a = extra.get("after", {}).get(key)
        if b is not None or a is not None:
            rows.append((title, fmt_count(b) if b is None else b, fmt_count(a) if a is None else a))
    lines += _table(("", "before", "after"), rows)
    lines += ["The chart is in `report.html`.", ""]
    return lines


def _left(document: Mapping[str, Any]) -> list[str]:
    lines = ["## Left for people", ""]
    grouped = left_for_people(document)
    if stage_data(document, "audit-after") is None:
        lines += ["The audit after the migration did not run (see the stages).", ""]
    elif not grouped:
        lines += ["The audit after the migration reports nothing left.", ""]
    for tier, items in grouped.items():
        title = f"{TIER_NAMES.get(tier, 'tier ' + tier)}: {len(items)}"
        rows = [(f"`{location(i)}`", i["rule"], i["message"]) for i in items]
        if tier == "1":  # the first to fix: shown, the later tiers folded
            lines += [f"### {title}", "", *_table(("where", "rule", "what"), rows)]
        else:
            lines += _details(title, _table(("where", "rule", "what"), rows))
    proposed = [i for i in codemods(document) if i["status"] == "proposed"]
    if proposed:
        lines += ["### Unsafe codemods proposed, not applied", ""]
        lines += [
            f"- `{i['id']}`: {len(i['files'])} files (`{i['diff_file']}`); review the diff, then"
            " run again with `--unsafe-fixes`"
            for i in proposed
        ]
        lines.append("")
    rows = refusals(document)
    if rows:
        lines += ["### What the codemods refused, and why", ""]
        for codemod_id, category, entries in rows:
            body = [f"- `{location(e)}`: {e['reason']}" for e in entries]
            lines += _details(f"{codemod_id}: {category} ({len(entries)})", body)
    return lines


def _commands(document: Mapping[str, Any]) -> list[str]:
    return ["## Reproduce", "", *_fence("\n".join(document["commands"]), "sh"), ""]
