"""The command line: each command builds its inputs, calls one library function and renders the
result. This is the only module that prints.

Exit codes (as ruff's): 0 nothing found, 1 findings (or files that could not be audited),
2 usage, configuration or internal error.
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from . import __version__
from .config import ConfigError

app = typer.Typer(
    name="gathering-consolidate",
    help="Audit, migrate and verify FastAPI + PostgreSQL multi-agent codebases.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

EXIT_ERROR = 2


class Format(enum.StrEnum):
    text = "text"
    json = "json"


def _version(value: bool) -> None:
    if value:
        print(f"gathering-consolidate {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Audit, migrate and verify FastAPI + PostgreSQL multi-agent codebases."""


def _fail(message: str) -> typer.Exit:
    Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {message}")
    return typer.Exit(EXIT_ERROR)


def _split(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@app.command()
def audit(
    path: Annotated[Path, typer.Argument(help="The project (or file) to audit.")] = Path("."),
    output_format: Annotated[
        Format, typer.Option("--format", "-f", help="Output format.")
    ] = Format.text,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report to FILE.")
    ] = None,
    select: Annotated[
        list[str] | None,
        typer.Option("--select", help="Only these rules or families (comma-separated)."),
    ] = None,
    ignore: Annotated[
        list[str] | None, typer.Option("--ignore", help="Skip these rules or families.")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Neither read nor write the cache.")
    ] = False,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Worker processes (default: CPUs).")
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only the findings: no tables, no progress.")
    ] = False,
) -> None:
    """Audit a project: read-only, prints findings; exit 0 clean, 1 findings, 2 error."""
    from .project import audit as run_audit

    console = Console(stderr=True)
    show_progress = output_format is Format.text and not quiet and sys.stderr.isatty()
    try:
        if show_progress:
            from rich.progress import Progress

            with Progress(console=console, transient=True) as bar:
                task = bar.add_task("auditing", total=None)
                result = run_audit(
                    path,
                    select=_split(select),
                    ignore=_split(ignore) or (),
                    cache=not no_cache,
                    jobs=jobs,
                    progress=lambda n: bar.advance(task, n),
                    on_total=lambda n: bar.update(task, total=n),
                )
        else:
            result = run_audit(
                path,
                select=_split(select),
                ignore=_split(ignore) or (),
                cache=not no_cache,
                jobs=jobs,
            )
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    _emit(result, output_format, output, quiet)
    raise typer.Exit(result.exit_code)


def _emit(result, output_format: Format, output: Path | None, quiet: bool) -> None:
    if output_format is Format.json:
        from .report import json as json_report

        text = json_report.render(result)
        if output is None:
            sys.stdout.write(text)
        else:
            _write_report(output, text)
        return
    from .report import console as console_report

    if output is None:
        console_report.render(result, Console(highlight=False), quiet=quiet)
    else:
        with output.open("w", encoding="utf-8") as fh:
            console_report.render(
                result, Console(file=fh, width=120, no_color=True, highlight=False), quiet=quiet
            )


def _write_report(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot write {path}: {exc.strerror or exc}") from None


@app.command()
def rules(
    rule: Annotated[
        str | None, typer.Argument(help="A rule id for its full documentation.")
    ] = None,
    output_format: Annotated[Format, typer.Option("--format", "-f")] = Format.text,
) -> None:
    """List the checks, or show one check's documentation."""
    from .audit import get_check, registry

    if rule is not None:
        check = get_check(rule.upper())
        if check is None:
            raise _fail(f"unknown rule `{rule}`; `gathering-consolidate rules` lists them")
        if output_format is Format.json:
            import json

            print(json.dumps(_rule_dict(check), indent=2))
        else:
            print(f"{check.id} {check.name} ({check.severity})\n")
            print(check.docs())
        return
    if output_format is Format.json:
        import json

        print(json.dumps([_rule_dict(c) for c in registry()], indent=2))
        return
    from rich.table import Table

    table = Table(title="Rules", title_justify="left")
    for column in ("Id", "Name", "Severity", "Fix", "Summary"):
        table.add_column(column)
    for check in registry():
        fix = check.fix.applicability.value if check.fix else ""
        table.add_row(check.id, check.name, str(check.severity), fix, check.summary())
    Console(highlight=False).print(table)


def _rule_dict(check) -> dict:
    return {
        "id": check.id,
        "name": check.name,
        "severity": str(check.severity),
        "summary": check.summary(),
        "fix": None
        if check.fix is None
        else {
            "title": check.fix.title,
            "applicability": check.fix.applicability.value,
            "codemod": check.fix.codemod,
        },
        "docs": check.docs(),
    }


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
