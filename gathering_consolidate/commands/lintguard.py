"""The `lint-guard` commands: `lint-guard check PATH...` fails on broad exception handlers that
carry no debt marker (a pre-commit hook: `gathering-consolidate-lint-guard`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

lint_guard_app = typer.Typer(
    name="lint-guard",
    help="Hold the line on broad exception handlers (see `migrate lint-guard`).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@lint_guard_app.command("check")
def check(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Files or directories (a pre-commit hook passes the staged files)."),
    ],
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="text or json.", metavar="FORMAT")
    ] = "text",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the new handlers.")] = False,
) -> None:
    """Exit 1 when a broad handler (BLE001, S110, S112, E722 as ruff reports them) carries no
    `# noqa: ... -- lint-guard debt` marker nor an ignore of the project's ruff config: it is
    new debt. `migrate lint-guard --write` marks today's debt; fixed handlers' markers are stale
    (reported, not failing) until it runs again. Independent of the `--select` ruff runs with."""
    import json

    from rich.console import Console
    from rich.markup import escape

    from ..codemods.lint_guard import check_guard
    from ..config import ConfigError

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if output_format not in ("text", "json"):
        err.print(f"[bold red]error:[/] {escape(f'--format {output_format}: use text or json')}")
        raise typer.Exit(2)
    try:
        result = check_guard(paths)
    except (ValueError, ConfigError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    out = Console(highlight=False, soft_wrap=True)
    if output_format == "json":
        out.print_json(json.dumps(result.to_dict()))
        raise typer.Exit(0 if result.ok else 1)
    for handler in result.new:
        where = f" (in {handler.symbol})" if handler.symbol else ""
        out.print(
            escape(
                f"{handler.path}:{handler.line}: {', '.join(handler.codes)} new broad exception"
                f" handler{where}: narrow it, or acknowledge it"
                " (`# consolidate: fixme[EXC001] reason`) and run `migrate lint-guard --write`"
            )
        )
    if not quiet:
        for path, line in result.stale:
            err.print(
                escape(
                    f"{path}:{line}: stale lint-guard debt marker (the handler no longer needs"
                    " it): `migrate lint-guard --write` removes it"
                )
            )
        for path, reason in result.unreadable:
            err.print(escape(f"{path}: not checked: {reason}"))
        verdict = (
            f"{len(result.new)} new broad handler{'s' if len(result.new) != 1 else ''}"
            if result.new
            else "no new broad handler"
        )
        err.print(
            escape(
                f"lint-guard: {verdict}; {result.debt} marked as debt in {result.files}"
                f" file{'s' if result.files != 1 else ''}"
            )
        )
    raise typer.Exit(0 if result.ok else 1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(lint_guard_app)
