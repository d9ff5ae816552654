"""The `verify` command: drive the app at run time on a real PostgreSQL and run the VFY checks
(library: `gathering_consolidate.verify`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("verify")(verify)


def verify(
    path: Annotated[Path, typer.Argument(help="The target project (the app's source tree).")],
    app_spec: Annotated[
        str | None,
        typer.Option("--app", metavar="MODULE:ATTR", help="The ASGI app (default: the profile's)."),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile", metavar="NAME|FILE", help="A profile in rules/targets/ or a TOML file."
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url", metavar="URL", help="A PostgreSQL server (default: an embedded one)."
        ),
    ] = None,
    python: Annotated[
        str | None,
        typer.Option("--python", metavar="PATH", help="The target's interpreter or virtualenv."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option("--workers", metavar="N", help="Locust worker processes (0: one process)."),
    ] = 0,
    detect_blocking: Annotated[
        bool, typer.Option("--detect-blocking", help="Run the app under blockbuster once.")
    ] = False,
    disposable: Annotated[
        bool,
        typer.Option(
            "--disposable", help="Use the --database-url database itself (it may be wiped)."
        ),
    ] = False,
    check: Annotated[
        list[str] | None,
        typer.Option("--check", metavar="ID", help="Only these checks (repeatable)."),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", "-f", metavar="FORMAT", help="text or json.")
    ] = "text",
    init_profile: Annotated[
        bool, typer.Option("--init-profile", help="Print a profile drafted from the app's OpenAPI.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
) -> None:
    """Start the app on a disposable PostgreSQL database and prove the consolidation held:
    auth contract across restarts, event loop under load, SQL injection, pipelines, schedules,
    rate limit, startup guard. Exit 0 when every applicable check passed, 1 when one failed or
    errored, 2 when the run could not start."""
    import json
    import sys

    from rich.console import Console
    from rich.markup import escape

    from ..verify.engine import VerifyError, draft_profile
    from ..verify.engine import verify as run_verify
    from .support import sigterm_exits as _sigterm_exits

    err = Console(stderr=True, highlight=False, soft_wrap=True)

    def fail(message: str) -> typer.Exit:
        err.print(f"[bold red]error:[/] {escape(message)}")
        return typer.Exit(2)

    if output_format not in ("text", "json"):
        raise fail(f"--format {output_format}: use text or json")
    if disposable and not database_url:
        raise fail("--disposable needs --database-url (the database to use as is)")

    def progress(message: str) -> None:
        if not quiet:
            err.print(f"[dim]{escape(message)}[/]")

    try:
        with _sigterm_exits():
            if init_profile:
                text = draft_profile(
                    path, app=app_spec, profile=profile, database_url=database_url,
                    python=python, progress=progress, disposable=disposable,
                )  # fmt: skip
                sys.stdout.write(text)
                raise typer.Exit(0)
            result = run_verify(
                path, app=app_spec, profile=profile, database_url=database_url, python=python,
                checks=check, progress=progress, workers=workers,
                detect_blocking=detect_blocking, disposable=disposable,
            )  # fmt: skip
    except VerifyError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        err.print("interrupted: the app and locust were stopped and the database dropped")
        raise typer.Exit(130) from None
    if output_format == "json":
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        render(result, Console(highlight=False, soft_wrap=True), dropped=not disposable)
    raise typer.Exit(0 if result.passed else 1)


_STYLE = {"pass": "green", "fail": "bold red", "error": "bold magenta", "not-applicable": "yellow"}


def render(result, console, *, dropped: bool = True) -> None:
    """A summary table, then each check's evidence (failures first within a check)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"verify {escape(result.target)}", title_justify="left")
    table.add_column("check")
    table.add_column("status")
    table.add_column("summary", overflow="fold")
    table.add_column("time", justify="right")
    for check in result.checks:
        style = _STYLE.get(check.status, "")
        table.add_row(
            f"{check.id} {check.name}", f"[{style}]{check.status}[/]", escape(check.summary),
            f"{check.duration_s:.1f}s",
        )  # fmt: skip
    console.print(f"app {escape(result.app)}, profile {escape(result.profile)}")
    console.print(f"database {escape(result.database)}{' (dropped)' if dropped else ' (kept)'}")
    console.print(table)
    for check in result.checks:
        if not check.evidence and not check.metrics:
            continue
        console.print(f"\n[bold]{check.id} {check.name}[/] ({check.status})")
        for line in check.evidence:
            mark = "[red]x[/]" if line.startswith("FAIL: ") else "-"
            console.print(f"  {mark} {escape(line.removeprefix('FAIL: '))}")
        if check.metrics:
            shown = ", ".join(f"{k}={v}" for k, v in list(check.metrics.items())[:14])
            console.print(f"  [dim]{escape(shown)}[/]")
    failed = [c for c in result.checks if c.status in ("fail", "error")]
    verdict = (
        "[green]passed[/]"
        if result.passed
        else "[bold red]failed[/]: " + ", ".join(escape(f"{c.name} ({c.status})") for c in failed)
    )
    console.print(f"\n{verdict}")
