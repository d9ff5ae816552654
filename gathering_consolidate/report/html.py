"""The migration report as one self-contained HTML file: inline CSS and inline SVG charts, no
script, no font, image or style sheet fetched from anywhere (it opens from a CI artifact or a mail
attachment as it is). It reads the run result through the same functions as the Markdown report
(`report/markdown.py`), so both say the same thing."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from . import markdown as view

_CSS = """
:root { --ink:#1f2328; --muted:#59636e; --line:#d1d9e0; --soft:#f6f8fa; --ok:#1a7f37;
  --bad:#cf222e; --warn:#9a6700; --skip:#6e7781; --before:#8c959f; --after:#0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
  color: var(--ink); background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 20px 0 8px; }
p.lead { color: var(--muted); margin: 0 0 16px; }
code, pre { font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
code { background: var(--soft); padding: 1px 4px; border-radius: 4px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; }
th, td { border: 1px solid var(--line); padding: 5px 9px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.where { white-space: nowrap; }
table.facts th { width: 180px; font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px;
  margin: 16px 0 8px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; background: var(--soft); }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 24px; font-weight: 600; }
.card .sub { color: var(--muted); font-size: 12px; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px;
  font-weight: 600; color: #fff; white-space: nowrap; }
.s-ok, .s-pass, .s-applied { background: var(--ok); }
.s-failed, .s-fail, .s-error { background: var(--bad); }
.s-skipped, .s-unchanged, .s-not-applicable { background: var(--skip); }
.s-proposed { background: var(--warn); }
details { border: 1px solid var(--line); border-radius: 6px; margin: 6px 0; background: #fff; }
details > summary { cursor: pointer; padding: 6px 10px; background: var(--soft); border-radius: 6px; }
details[open] > summary { border-bottom: 1px solid var(--line); border-radius: 6px 6px 0 0; }
details > .body { padding: 8px 12px; }
pre { margin: 0; padding: 8px 10px; overflow-x: auto; white-space: pre; }
pre.diff { padding: 0; }
pre.diff span { display: block; padding: 0 10px; }
pre.diff .add { background: #dafbe1; }
pre.diff .del { background: #ffebe9; }
pre.diff .hunk { background: #ddf4ff; color: var(--muted); }
pre.diff .file { background: var(--soft); font-weight: 600; }
pre.commands { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; }
.chart { border: 1px solid var(--line); border-radius: 8px; padding: 8px; margin: 8px 0 16px; }
.chart svg { display: block; width: 100%; height: auto; }
.legend { color: var(--muted); font-size: 12px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px 0 10px; }
.muted { color: var(--muted); }
.twocol { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
@media (max-width: 900px) { .twocol { grid-template-columns: 1fr; } }
ul.evidence { margin: 4px 0 8px; padding-left: 20px; }
"""


_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def _inline(text: str) -> str:
    """Text as HTML, its `code spans` (as the tool's messages write them) as <code>."""
    return _CODE_SPAN.sub(lambda m: f"<code>{m.group(1)}</code>", escape(text))


def _badge(status: str, text: str | None = None) -> str:
    css = "s-" + "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in status)
    return f'<span class="badge {css}">{escape(text or status)}</span>'


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()
) -> str:
    """`rows` cells are HTML already (escape text before)."""
    head = "".join(
        f'<th class="num">{escape(h)}</th>' if i in numeric else f"<th>{escape(h)}</th>"
        for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _details(summary: str, body_html: str, *, open_: bool = False) -> str:
    flag = " open" if open_ else ""
    return (
        f"<details{flag}><summary>{escape(summary)}</summary>"
        f'<div class="body">{body_html}</div></details>'
    )


def _diff(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.startswith(("+++", "---")):
            css = "file"
        elif line.startswith("@@"):
            css = "hunk"
        elif line.startswith("+"):
            css = "add"
        elif line.startswith("-"):
            css = "del"
        else:
            css = ""
        attr = f' class="{css}"' if css else ""
        lines.append(f"<span{attr}>{escape(line) or ' '}</span>")
    return f'<pre class="diff">{"".join(lines)}</pre>'


# -- charts -------------------------------------------------------------------------------------
def _nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 2.5, 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 1.0
    while power * 10 <= value:
        power *= 10
    while power > value:
        power /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 100 or value == int(value) else f"{value:.1f}"


def bar_chart(
    title: str,
    groups: Sequence[tuple[str, float | None, float | None]],
    *,
    unit: str = "",
    width: int = 560,
) -> str:
    """A grouped bar chart as inline SVG: one group per label, a `before` and an `after` bar (a
    missing value draws no bar and says "not measured"). Horizontal bars, values at their ends."""
    row_h, bar_h, gap = 34, 12, 2
    left, right, top = 120, 70, 30
    height = top + row_h * len(groups) + 28
    values = [v for _, b, a in groups for v in (b, a) if v is not None]
    top_value = _nice_max(max(values) if values else 1.0)
    span = width - left - right
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
        f' role="img" aria-label="{escape(title)}">',
        f'<text x="0" y="16" font-size="13" font-weight="600" fill="#1f2328">{escape(title)}</text>',
    ]
    for i in range(5):  # grid lines and axis labels
        x = left + span * i / 4
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 22}"'
            ' stroke="#d1d9e0" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{height - 8}" font-size="11" text-anchor="middle"'
            f' fill="#59636e">{_fmt(top_value * i / 4)}{escape(unit)}</text>'
        )
    for index, (label, before, after) in enumerate(groups):
        y = top + row_h * index
        parts.append(
            f'<text x="{left - 8}" y="{y + bar_h + 4}" font-size="12" text-anchor="end"'
            f' fill="#1f2328">{escape(label)}</text>'
        )
        for offset, value, colour, name in (
            (0, before, "#8c959f", "before"),
            (bar_h + gap, after, "#0969da", "after"),
        ):
            yy = y + offset
            if value is None:
                parts.append(
                    f'<text x="{left + 4}" y="{yy + bar_h - 2}" font-size="10" fill="#59636e">'
                    f"{name}: not measured</text>"
                )
                continue
            w = max(span * value / top_value, 1.0)
            parts.append(
                f'<rect x="{left}" y="{yy}" width="{w:.1f}" height="{bar_h}" rx="2"'
                f' fill="{colour}"><title>{escape(label)} {name}: {_fmt(value)}{escape(unit)}'
                "</title></rect>"
            )
            parts.append(
                f'<text x="{left + w + 4:.1f}" y="{yy + bar_h - 2}" font-size="10"'
                f' fill="#1f2328">{_fmt(value)}{escape(unit)}</text>'
            )
    parts.append("</svg>")
    legend = (
        '<div class="legend"><span class="swatch" style="background:#8c959f"></span>before'
        '<span class="swatch" style="background:#0969da"></span>after</div>'
    )
    return f'<div class="chart">{"".join(parts)}{legend}</div>'


# -- sections -----------------------------------------------------------------------------------
def render(document: Mapping[str, Any]) -> str:
    """The whole report as one HTML document (UTF-8)."""
    body = "".join(
        (
            _header(document),
            _stages(document),
            _findings(document),
            _verify(document),
            _latency(document),
            _codemods(document),
            _tests(document),
            _schema(document),
            _left(document),
            _commands(document),
        )
    )
    title = f"Consolidation report: {view.project_name(document)}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        # Nothing may load from anywhere: a fetch or a script would be refused (and logged).
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';'
        " style-src 'unsafe-inline'; img-src data:\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def _header(document: Mapping[str, Any]) -> str:
    options = document["options"]
    before, after = view.totals(document)
    applied = [c for c in view.codemods(document) if c["status"] == "applied"]
    proposed = [c for c in view.codemods(document) if c["status"] == "proposed"]
    changed = sorted({p for c in applied for p in c["files"]})
    checks = view.verify_checks(document)
    passed = sum(1 for _, _, _, a in checks if a and a["status"] == "pass")
    ran = sum(1 for _, _, _, a in checks if a and a["status"] != "not-applicable")
    ledger = view.ledger(document)
    not_passed = view.not_passed(document)
    verdict = (
        _badge("ok", "every stage that ran passed")
        if not not_passed
        else _badge("failed", "not passed: " + ", ".join(not_passed))
    )
    cards = [
        ("findings", f"{view.fmt_count(before)} → {view.fmt_count(after)}", "before → after"),
        (
            "codemods applied",
            str(len(applied)),
            f"{len(changed)} files changed; {len(proposed)} proposed",
        ),
        (
            "verify (after)",
            f"{passed}/{ran}" if checks else "-",
            "checks passed" if checks else "not run",
        ),
        (
            "tests",
            str(ledger.get("total", 0)) if ledger else "-",
            "in the ledger" if ledger else "no ledger",
        ),
    ]
    cards_html = "".join(
        f'<div class="card"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div><div class="sub">{escape(sub)}</div></div>'
        for label, value, sub in cards
    )
    unsafe = (
        "applied (--unsafe-fixes)"
        if options["unsafe_fixes"]
        else "proposed only: diffs kept, not applied"
    )
    facts = [
        ("project", f"<code>{escape(view.shown(document, 'project'))}</code> (never modified)"),
        (
            "copies",
            f"<code>{escape(view.shown(document, 'before'))}</code> (as it was), "
            f"<code>{escape(view.shown(document, 'after'))}</code> (migrated)",
        ),
        ("unsafe codemods", escape(unsafe)),
        ("app", f"<code>{escape(view.app_shown(document))}</code>"),
        ("database", escape(str(options["database"]))),
    ]
    facts_html = (
        '<table class="facts"><tbody>'
        + "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in facts)
        + "</tbody></table>"
    )
    return (
        f"<h1>Consolidation report: {escape(view.project_name(document))}</h1>"
        f'<p class="lead">{verdict} Run in {document["duration_s"]:.0f} s on'
        f" {escape(document['started_at'])} by gathering-consolidate"
        f" {escape(document['tool']['version'])}.</p>"
        f'<div class="cards">{cards_html}</div>{facts_html}'
    )


def _stages(document: Mapping[str, Any]) -> str:
    rows = [
        (
            escape(s["title"]),
            _badge(s["status"]),
            f"{s['duration_s']:.1f} s",
            _inline(s["summary"]),
        )
        for s in document["stages"]
    ]
    out = "<h2>Stages</h2>" + _table(("stage", "status", "time", "summary"), rows, numeric=(2,))
    for s in document["stages"]:
        if s["status"] == "error" and s.get("detail"):
            out += _details(f"{s['title']}: error detail", f"<pre>{escape(s['detail'])}</pre>")
    return out


def _findings(document: Mapping[str, Any]) -> str:
    out = "<h2>Findings before and after</h2>"
    rows = view.findings_table(document)
    if not rows:
        return out + "<p>No audit ran (see the stages).</p>"
    before, after = view.totals(document)
    chart = bar_chart(
        "Findings per family",
        [(family, b, a) for family, b, a in rows],
    )
    table_rows = [
        (f"<code>{escape(f)}</code>", view.fmt_count(b), view.fmt_count(a), view.fmt_change(b, a))
        for f, b, a in rows
    ]
    table_rows.append(
        (
            "<strong>total</strong>",
            view.fmt_count(before),
            view.fmt_count(after),
            view.fmt_change(before, after),
        )
    )
    table = _table(("family", "before", "after", "change"), table_rows, numeric=(1, 2, 3))
    tiers = view.tier_table(document)
    tier_rows = [
        (
            f"<code>{escape(family)}</code>",
            *(f"{view.fmt_count(b)} → {view.fmt_count(a)}" for b, a in cells),
        )
        for family, cells in tiers
    ]
    tier_html = "<h3>By tier (before → after)</h3>" + _table(
        ("family", "tier 1", "tier 2", "tier 3", "no tier"), tier_rows, numeric=(1, 2, 3, 4)
    )
    return out + f'<div class="twocol"><div>{chart}</div><div>{table}</div></div>{tier_html}'


def _codemods(document: Mapping[str, Any]) -> str:
    out = "<h2>Codemods</h2>"
    items = view.codemods(document)
    if not items:
        return out + "<p>The codemods did not run (see the stages).</p>"
    rows = [
        (
            f"<code>{escape(i['id'])}</code>",
            escape(i["applicability"]),
            _badge(i["status"]),
            str(len(i["files"])),
            f"+{i['added']} -{i['removed']}",
            str(len(i["refusals"])),
        )
        for i in items
    ]
    out += _table(
        ("codemod", "kind", "status", "files", "lines", "refused"), rows, numeric=(3, 4, 5)
    )
    notes = []
    for i in items:
        if i.get("error"):
            notes.append(f"<li><code>{escape(i['id'])}</code>: {escape(i['error'])}</li>")
        for failure in i["failures"]:
            notes.append(
                f"<li><code>{escape(i['id'])}</code> failed on <code>{escape(failure['path'])}"
                f"</code>: {escape(failure['reason'])}</li>"
            )
    if notes:
        out += f"<ul>{''.join(notes)}</ul>"
    for i in items:
        if not i["diff"]:
            continue
        what = "applied" if i["status"] == "applied" else "proposed, not applied"
        summary = f"{i['id']} ({what}): {len(i['files'])} files, +{i['added']} -{i['removed']}"
        body = _diff(i["diff"])
        if i["diff_truncated"]:
            body += f'<p class="muted">Cut; the whole diff is in <code>{escape(i["diff_file"])}</code>.</p>'
        out += _details(summary, body)
    return out


def _tests(document: Mapping[str, Any]) -> str:
    out = "<h2>Tests</h2>"
    found = view.stage(document, "tests")
    data = view.ledger(document)
    if data is None:
        reason = found["summary"] if found else "the stage did not run"
        return out + f"<p>No test ledger: {escape(reason)}.</p>"
    out += f"<p>{data.get('total', 0)} tests in the ledger (<code>tests-ledger.json</code>).</p>"
    by_tag = data.get("by_tag", {})
    if by_tag:
        out += _table(
            ("tag", "tests"),
            [(f"<code>{escape(str(t))}</code>", str(n)) for t, n in sorted(by_tag.items())],
            numeric=(1,),
        )
    by_file = data.get("by_file", {})
    if by_file:
        rows = []
        for path, value in sorted(by_file.items()):
            if isinstance(value, Mapping):
                text = ", ".join(f"{k} {v}" for k, v in sorted(value.items()))
            else:
                text = str(value)
            rows.append((f"<code>{escape(path)}</code>", escape(text)))
        out += _details(f"tests by file ({len(rows)} files)", _table(("file", "tests"), rows))
    for key, title in (("skips", "Skipped tests"), ("xfails", "Expected failures")):
        entries = data.get(key) or []
        if entries:
            items = "".join(f"<li>{_inline(view.entry_text(e))}</li>" for e in entries)
            out += f"<h3>{escape(title)} ({len(entries)})</h3><ul>{items}</ul>"
    tagging = (view.stage_data(document, "tests") or {}).get("tagging")
    if tagging and tagging.get("diff"):
        out += _details(
            f"tag-tests: {len(tagging['files'])} files, +{tagging['added']} -{tagging['removed']}",
            _diff(tagging["diff"]),
        )
    return out


def _schema(document: Mapping[str, Any]) -> str:
    out = "<h2>Schema</h2>"
    found = view.stage(document, "schema")
    data = view.stage_data(document, "schema")
    if data is None:
        reason = found["summary"] if found else "the stage did not run"
        return out + f"<p>Not migrated: {escape(reason)}.</p>"
    revisions = view.schema_revisions(document)
    app_schema = ", ".join(f"<code>{escape(n)}</code>" for n in data.get("app_schema", []))
    out += (
        f"<p>On a disposable database of {escape(view.server_name(data))}: the app's"
        f" schema ({app_schema}), then {len(revisions)} revisions,"
        f" {escape(str(data.get('start') or 'base'))} → {escape(str(data.get('end')))}"
        f" (offline SQL: <code>{escape(str(data.get('sql_file', 'schema.sql')))}</code>).</p>"
    )
    if revisions:
        rows = [
            (
                f"<code>{escape(str(r.get('revision', '')))}</code>",
                escape(str(r.get("description", ""))),
                view.seconds(r.get("duration_s")),
            )
            for r in revisions
        ]
        out += _table(("revision", "what", "time"), rows, numeric=(2,))
    drift = data.get("drift")
    if drift is not None:
        if drift.get("ok"):
            out += (
                f"<p>{_badge('pass', 'no drift')} The database matches the head schema"
                f" (<code>{escape(str(drift['head']))}</code>).</p>"
            )
        else:
            items = "".join(
                f"<li>{escape(p['kind'])} <code>{escape(p['object'])}</code>:"
                f" {escape(p['message'])}</li>"
                for p in drift["problems"]
            )
            out += (
                f"<p>{_badge('fail', 'drift')} {len(drift['problems'])} differences from the head"
                f" schema:</p><ul>{items}</ul>"
            )
    return out


def _check_block(side: str, check: Mapping[str, Any]) -> str:
    evidence = "".join(f"<li>{_inline(str(line))}</li>" for line in check.get("evidence", []))
    metrics = check.get("metrics") or {}
    metrics_html = (
        '<p class="muted">'
        + escape(", ".join(f"{k} = {v}" for k, v in sorted(metrics.items())))
        + "</p>"
        if metrics
        else ""
    )
    return (
        f"<p><strong>{escape(side)}</strong> {_badge(check['status'])}"
        f' {_inline(check["summary"])} <span class="muted">({check["duration_s"]:.1f} s)</span></p>'
        f'<ul class="evidence">{evidence or "<li>(no evidence)</li>"}</ul>{metrics_html}'
    )


def _verify(document: Mapping[str, Any]) -> str:
    out = "<h2>Verify</h2>"
    checks = view.verify_checks(document)
    if not checks:
        reasons = [
            f"{s['title']}: {s['summary']}"
            for s in document["stages"]
            if s["id"].startswith("verify-")
        ]
        return out + f"<p>No verify checks ran. {escape('; '.join(reasons))}.</p>"
    rows = [
        (
            f"<code>{escape(cid)}</code>",
            escape(name),
            _badge(before["status"]) if before else "-",
            _badge(after["status"]) if after else "-",
            _inline((after or before)["summary"]),
        )
        for cid, name, before, after in checks
    ]
    out += _table(("check", "name", "before", "after", "summary (after)"), rows)
    for cid, name, before, after in checks:
        body = "".join(
            _check_block(side, check)
            for side, check in (("before", before), ("after", after))
            if check is not None
        )
        out += _details(f"{cid} {name}: evidence", body)
    return out


def _latency(document: Mapping[str, Any]) -> str:
    out = "<h2>Latency under load</h2>"
    measured = view.latency(document)
    if not measured:
        return out + "<p>Not measured (no verify run carried health latency metrics).</p>"
    groups = [
        (
            f"health {label}",
            measured.get("before", {}).get(label),
            measured.get("after", {}).get(label),
        )
        for label, _key in view.LATENCY_KEYS
    ]
    chart = bar_chart("Health endpoint latency under load", groups, unit=" ms")
    rows = [(escape(g), view.fmt_ms(b), view.fmt_ms(a)) for g, b, a in groups]
    extra = view.latency_extra(document)
    for key, title in (("idle_p95_ms", "idle p95 (ms)"), ("rps", "requests/s")):
        b = extra.get("before", {}).get(key)
        a = extra.get("after", {}).get(key)
        if b is not None or a is not None:
            rows.append(
                (
                    escape(title),
                    escape(str(b if b is not None else "-")),
                    escape(str(a if a is not None else "-")),
                )
            )
    table = _table(("", "before", "after"), rows, numeric=(1, 2))
    return out + f'<div class="twocol"><div>{chart}</div><div>{table}</div></div>'


def _left(document: Mapping[str, Any]) -> str:
    out = "<h2>Left for people</h2>"
    grouped = view.left_for_people(document)
    if view.stage_data(document, "audit-after") is None:
        out += "<p>The audit after the migration did not run (see the stages).</p>"
    elif not grouped:
        out += "<p>The audit after the migration reports nothing left.</p>"
    for tier, items in grouped.items():
        rows = [
            (
                f"<code>{escape(view.location(i))}</code>",
                f"<code>{escape(i['rule'])}</code>",
                _inline(i["message"]),
            )
            for i in items
        ]
        title = f"{view.TIER_NAMES.get(tier, 'tier ' + tier)}: {len(items)}"
        out += _details(title, _table(("where", "rule", "what"), rows), open_=tier == "1")
    proposed = [i for i in view.codemods(document) if i["status"] == "proposed"]
    if proposed:
        items_html = "".join(
            f"<li><code>{escape(i['id'])}</code>: {len(i['files'])} files"
            f" (<code>{escape(str(i['diff_file']))}</code>); review the diff, then run again"
            " with <code>--unsafe-fixes</code></li>"
            for i in proposed
        )
        out += f"<h3>Unsafe codemods proposed, not applied</h3><ul>{items_html}</ul>"
    rows = view.refusals(document)
    if rows:
        out += "<h3>What the codemods refused, and why</h3>"
        for codemod_id, category, entries in rows:
            body = "".join(
                f"<li><code>{escape(view.location(e))}</code>: {_inline(e['reason'])}</li>"
                for e in entries
            )
            out += _details(f"{codemod_id}: {category} ({len(entries)})", f"<ul>{body}</ul>")
    return out


def _commands(document: Mapping[str, Any]) -> str:
    text = "\n".join(document["commands"])
    return f'<h2>Reproduce</h2><pre class="commands">{escape(text)}</pre>'
