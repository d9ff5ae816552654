"""The `run` command (the main job: copy, audit, codemods, tests, schema, verify, report) and the
`gate` command (one CI verdict: audit against the baseline, SQL allowlist, test ledger, lint-guard
debt). Both call one library function (`mainjob.run_job`, `gate.run_gate`) and render its result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add `run` and `gate` to the main app."""
    app.command("run")(run)
    app.command("gate")(gate)


def run(
    path: Annotated[Path, typer.Argument(help="The project to consolidate (never modified).")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Output folder: copies, diffs, report.md, report.html, result.json"
            " (default: ./consolidation/<project name>).",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            metavar="URL",
            help="A PostgreSQL server to use (default: an embedded one, started and removed).",
        ),
    ] = None,
    unsafe_fixes: Annotated[
        bool,
        typer.Option(
            "--unsafe-fixes", help="Apply the unsafe codemods too (default: their diffs only)."
        ),
    ] = False,
    app_ref: Annotated[
        str | None,
        typer.Option(
            "--app", metavar="MODULE:ATTR", help="The ASGI app to verify (e.g. pkg.api.main:app)."
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            metavar="NAME|FILE",
            help="The verify profile: a name in rules/targets/ or a file (default: the shipped"
            " profile named like the project folder, if any).",
        ),
    ] = None,
    python: Annotated[
        str | None,
        typer.Option(
            "--python",
            metavar="PATH",
            help="The target's interpreter or virtual environment (read by the audit; verify runs"
            " the app with it).",
        ),
    ] = None,
    skip_verify: Annotated[
        bool, typer.Option("--skip-verify", help="Do not run the app (no verify stages).")
    ] = False,
    checks: Annotated[
        list[str] | None,
        typer.Option("--check", metavar="ID", help="Only these verify checks (repeatable)."),
    ] = None,
) -> None:
    """Consolidate a copy of a project and write the migration report.

    Exit codes: 0 every stage that ran succeeded, 1 a stage failed or could not run (the report
    says which), 2 usage error. Findings left after the migration are the report's "left for
    people", and the original app failing its verify checks is what the migration is for:
    neither fails the run.
    """
    import sys

    from rich.console import Console
    from rich.markup import escape

    from .. import mainjob
    from .support import fail as _fail

    if app_ref is not None and (":" not in app_ref or app_ref.startswith(":")):
        raise _fail(f"--app {app_ref}: expected MODULE:ATTR (e.g. gathering.api.main:app)")
    if python is not None and not Path(python).exists():
        raise _fail(f"--python {python}: no such file or directory")
    if out is None:
        out = Path("consolidation") / (path.resolve().name or "project")
    options = mainjob.RunOptions(
        target=path,
        out=out,
        unsafe_fixes=unsafe_fixes,
        app=app_ref,
        profile=profile,
        database_url=database_url,
        python=python,
        skip_verify=skip_verify,
        verify_checks=tuple(checks or ()),
    )
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    live = sys.stderr.isatty()
    marks = {"ok": "[green]ok[/]", "failed": "[red]failed[/]", "error": "[red]error[/]"}
    marks["skipped"] = "[yellow]skipped[/]"

    def progress(event: mainjob.ProgressEvent) -> None:
        head = f"[{event.index}/{event.total}] {escape(event.title)}"
        if event.kind == "start":
            err.print(f"[bold]{head}[/]")
        elif event.kind == "step":
            err.print(f"      [dim]{escape(event.message)}[/]")
        else:
            mark = marks.get(event.status, event.status)
            err.print(f"      {mark} ({event.duration_s:.1f} s): {escape(event.message)}")

    try:
        if live:
            with err.status("") as status:

                def live_progress(event: mainjob.ProgressEvent) -> None:
                    status.update(f"{escape(event.title)}: {escape(event.message)}")
                    progress(event)

                result = mainjob.run_job(options, live_progress)
        else:
            result = mainjob.run_job(options, progress)
        outputs = mainjob.write_outputs(result)
    except mainjob.RunError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write the report: {exc}") from None
    from ..report import markdown as view

    document = result.to_dict()
    before, after = view.totals(document)
    headline = f"findings {view.fmt_count(before)} -> {view.fmt_count(after)}"
    checks = [a for _, _, _, a in view.verify_checks(document) if a is not None]
    if checks:
        passed = sum(1 for c in checks if c["status"] == "pass")
        headline += f"; verify (after): {passed} of {len(checks)} checks pass"
    err.print("")
    err.print(escape(headline))
    err.print(f"report:  {escape(str(outputs.report_md))}")
    err.print(f"         {escape(str(outputs.report_html))}")
    err.print(f"result:  {escape(str(outputs.result_json))}")
    not_passed = view.not_passed(document)
    if not_passed:
        err.print(f"[red]not passed:[/] {escape(', '.join(not_passed))}")
    raise typer.Exit(result.exit_code)


def gate(
    path: Annotated[Path, typer.Argument(help="The project to gate.")] = Path("."),
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="Findings accepted as known debt, only new ones fail (default: the"
            " configuration's `baseline`).",
        ),
    ] = None,
    ledger: Annotated[
        Path | None,
        typer.Option(
            "--ledger",
            help="The committed test ledger (default: tests-ledger.json at the project root).",
        ),
    ] = None,
    lint_guard_tier: Annotated[
        int,
        typer.Option(
            "--lint-guard-tier",
            min=1,
            max=3,
            help="The lint guard's current phase: broad handlers of this tier and below must be"
            " fixed; later ones carry debt markers.",
        ),
    ] = 1,
    output_format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    python: Annotated[
        str | None,
        typer.Option("--python", metavar="PATH", help="The target's virtual environment."),
    ] = None,
) -> None:
    """The CI gate: the audit against the baseline, the SQL allowlist, the test ledger and the
    lint-guard debt, in one summary. Exit 0 every gate passes, 1 a gate fails, 2 usage or
    configuration error."""
    import json
    import os
    import sys

    from rich.console import Console
    from rich.markup import escape

    from .. import gate as gate_module
    from ..config import ConfigError
    from .support import fail as _fail

    if output_format not in ("text", "json"):
        raise _fail(f"--format {output_format}: expected text or json")
    try:
        result = gate_module.run_gate(
            path,
            baseline=baseline,
            ledger=ledger,
            lint_guard_tier=lint_guard_tier,
            python=python,
        )
    except (gate_module.GateError, ConfigError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:  # on GitHub Actions: the same summary on the run's page
        try:
            with open(summary_file, "a", encoding="utf-8") as fh:
                fh.write(gate_module.job_summary(result))
        except OSError as exc:
            Console(stderr=True).print(f"cannot write the job summary: {escape(str(exc))}")
    if output_format == "json":
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
        raise typer.Exit(result.exit_code)
    console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 120)
    marks = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "skipped": "[yellow]skipped[/]"}
    marks["error"] = "[red]ERROR[/]"
    for section in result.sections:
        console.print(
            f"{marks.get(section.status, section.status)}  {section.name:<14}"
            f" {escape(section.summary)}"
        )
        for problem in section.problems[:50]:
            console.print(f"      {escape(problem)}")
        if len(section.problems) > 50:
            console.print(f"      ... and {len(section.problems) - 50} more")
        for note in section.notes[:20]:
            console.print(f"      [yellow]warning[/] {escape(note)}")
    verdict = "[green]gate passed[/]" if result.passed else "[red]gate failed[/]"
    console.print(f"{verdict}: {escape(result.summary)}")
    raise typer.Exit(result.exit_code)
