"""The HTML migration report: self-contained (no script, nothing fetched), the same content as
the Markdown one, and it renders in headless Chromium without console errors."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from gathering_consolidate import mainjob
from gathering_consolidate.report import html, markdown
from tests.test_mainjob import make_small_project

CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def run_outputs(tmp_path_factory) -> tuple[dict, Path]:
    tmp = tmp_path_factory.mktemp("html")
    project = make_small_project(tmp / "smallapp")
    result = mainjob.run_job(mainjob.RunOptions(project, tmp / "out", skip_verify=True))
    paths = mainjob.write_outputs(result)
    return mainjob.load_result(paths.result_json), paths.report_html


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "data") and value:
                self.urls.append(value)

    def handle_data(self, data):
        self.text.append(data)


def _plain(text: str) -> str:
    """Text as the page shows it: `code spans` become <code> (no backticks), spaces collapsed."""
    return " ".join(text.replace("`", "").split())


def test_code_spans_become_code_and_nothing_is_unescaped():
    assert html._inline("use `a<b>` & `x`") == "use <code>a&lt;b&gt;</code> &amp; <code>x</code>"


def test_self_contained(run_outputs):
    _document, path = run_outputs
    text = path.read_text(encoding="utf-8")
    parser = _Collector()
    parser.feed(text)
    assert "script" not in parser.tags
    assert "link" not in parser.tags and "iframe" not in parser.tags and "img" not in parser.tags
    assert parser.urls == []
    assert "url(" not in text and "@import" not in text
    assert "svg" in parser.tags and "style" in parser.tags
    assert "default-src 'none'" in text


def test_same_content_as_markdown(run_outputs):
    document, path = run_outputs
    parser = _Collector()
    parser.feed(path.read_text(encoding="utf-8"))
    text = " ".join("".join(parser.text).split())
    for stage in document["stages"]:
        assert _plain(stage["summary"]) in text
    for family, _before, _after in markdown.findings_table(document):
        assert family in text
    for items in markdown.left_for_people(document).values():
        for item in items:
            assert markdown.location(item) in text
    for _codemod, category, entries in markdown.refusals(document):
        assert category in text
        assert all(_plain(e["reason"]) in text for e in entries)
    assert "- return datetime.utcnow()" in text  # the folded diff (whitespace collapsed)
    assert document["commands"][0] in text


def test_bar_chart_scales_to_the_largest_value():
    svg = html.bar_chart("t", [("a", 10.0, 40.0), ("b", None, 20.0)], unit=" ms", width=560)
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
    assert len(widths) == 3  # the missing "before" of b draws no bar
    assert widths[1] == pytest.approx(4 * widths[0])
    assert widths[2] == pytest.approx(2 * widths[0])
    assert "before: not measured" in svg
    assert html._nice_max(37) == 50 and html._nice_max(120) == 200 and html._nice_max(0.3) == 0.5


def _chromium(page: Path, shot: Path, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            "--window-size=1280,2400",
            "--enable-logging=stderr",
            "--v=0",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_renders_in_headless_chromium_without_console_errors(run_outputs, tmp_path):
    _document, page = run_outputs
    shot = tmp_path / "report.png"
    proc = _chromium(page, shot, tmp_path / "profile")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _console_errors(proc.stderr) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 2400)

    # The scan catches errors: the same page with a script and a fetch the policy refuses.
    bad = tmp_path / "bad.html"
    bad.write_text(
        page.read_text(encoding="utf-8").replace(
            "</main>", '</main><img src="https://example.invalid/x.png"><script>boom()</script>'
        ),
        encoding="utf-8",
    )
    proc = _chromium(bad, tmp_path / "bad.png", tmp_path / "profile2")
    errors = _console_errors(proc.stderr)
    assert errors and any("Content Security Policy" in e for e in errors), proc.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_fixture_run_report_with_latency_in_chromium(pg_admin_url, tmp_path):
    """The fixture app through every stage (verify limited to the event-loop check, which
    measures the latency): the report shows the measured before/after latency and renders
    without console errors."""
    from tests.conftest import FIXTURE_APP

    result = mainjob.run_job(
        mainjob.RunOptions(
            FIXTURE_APP,
            tmp_path / "out",
            unsafe_fixes=True,
            app="gathering.api.main:app",
            profile="gathering_app",
            database_url=pg_admin_url,
            verify_checks=("VFY002",),
        )
    )
    statuses = {s.id: s.status for s in result.stages}
    assert statuses["tests"] == statuses["schema"] == statuses["codemods"] == "ok", statuses
    assert statuses["verify-before"] in ("ok", "failed") and statuses["verify-after"] in (
        "ok",
        "failed",
    ), [(s.id, s.summary) for s in result.stages]
    paths = mainjob.write_outputs(result)
    document = mainjob.load_result(paths.result_json)
    measured = markdown.latency(document)
    assert set(measured) == {"before", "after"}
    assert set(measured["before"]) == {"p50", "p95", "p99"}
    page = paths.report_html.read_text(encoding="utf-8")
    chart = page[page.index("Health endpoint latency under load") :]
    chart = chart[: chart.index("</svg>")]
    assert len(re.findall(r"<rect ", chart)) == 6  # p50/p95/p99, before and after
    assert f"{measured['after']['p95']:.1f} ms" in page
    assert len(markdown.schema_revisions(document)) >= 1
    assert markdown.ledger(document)["total"] > 0
    proc = _chromium(paths.report_html, tmp_path / "fixture.png", tmp_path / "profile")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _console_errors(proc.stderr) == []


def test_a_failed_run_renders_what_went_wrong(tmp_path):
    project = make_small_project(tmp_path / "smallapp")
    with (project / "pyproject.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[tool.gathering-consolidate]\nselect = ["NOPE999"]\n')
    result = mainjob.run_job(mainjob.RunOptions(project, tmp_path / "out", skip_verify=True))
    page = html.render(mainjob.load_result(mainjob.write_outputs(result).result_json))
    parser = _Collector()
    parser.feed(page)
    text = " ".join("".join(parser.text).split())
    verdict = re.search(r"not passed: ([^.]*?) Run in", text)
    assert verdict and {"Audit (before)", "Audit (after)"} <= set(verdict.group(1).split(", "))
    assert "Audit (before): error detail" in text and "NOPE999" in text
    assert "The codemods did not run (see the stages)." in text
    assert "needs stage audit-before, which ended in an error" in text
