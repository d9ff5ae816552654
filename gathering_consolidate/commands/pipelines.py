"""The `pipelines` commands: check stored pipeline definitions and cron schedules.

    gathering-consolidate pipelines validate FILE... | --database-url URL
    gathering-consolidate pipelines validate-cron EXPR... | --database-url URL

Both report every invalid definition (id or location, name, problems) and exit 1 when there is
one, 0 when all are valid, 2 on input that cannot be read (file, syntax, shape, table, server).
"""

from __future__ import annotations

import enum
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

pipelines_app = typer.Typer(
    name="pipelines",
    help="Validate stored pipeline graphs and cron schedules.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def _fail(message: str) -> typer.Exit:
    from .support import fail

    return fail(message)


def _duration(text: str, option: str):
    from datetime import timedelta

    match = _DURATION.match(text)
    if not match:
        raise _fail(f"{option} {text!r}: expected a duration such as 30s, 10m, 1h or 1d")
    seconds = float(match[1]) * _UNITS[match[2].lower()]
    if seconds <= 0:
        raise _fail(f"{option} {text!r}: must be more than zero")
    return timedelta(seconds=seconds)


def _one_source(items: list[Any] | None, database_url: str | None, what: str) -> None:
    if items and database_url:
        raise _fail(f"give {what} or --database-url, not both")
    if not items and not database_url:
        raise _fail(f"give {what} to check, or --database-url URL")


def _emit_json(data: dict[str, Any]) -> None:
    import json  # here: every invocation imports this module, the cached audit included

    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


class Format(enum.StrEnum):
    text = "text"
    json = "json"


_FORMAT = typer.Option("--format", "-f", help="Output format.")
_TABLE_HELP = "The table to read (NAME or SCHEMA.NAME)."


@pipelines_app.command("validate")
def validate(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="JSON or YAML files, each one pipeline ({nodes, edges}), a list of them or"
            " {pipelines: [...]}; a folder stands for its .json/.yaml/.yml files; - reads"
            " standard input.",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Check the rows of a pipelines table instead."),
    ] = None,
    table: Annotated[str, typer.Option("--table", help=_TABLE_HELP)] = "circle.pipelines",
    id_column: Annotated[str, typer.Option("--id-column")] = "id",
    name_column: Annotated[
        str, typer.Option("--name-column", help="Empty for a table without names.")
    ] = "name",
    nodes_column: Annotated[str, typer.Option("--nodes-column")] = "nodes",
    edges_column: Annotated[str, typer.Option("--edges-column")] = "edges",
    node_types: Annotated[
        Path | None,
        typer.Option(
            "--node-types",
            help="JSON or YAML file of node types instead of GatheRing's: {TYPE: {required:"
            " {KEY: string|integer|number|boolean|object|array|any}, optional: {...}, entry:"
            " bool, max_count: N}}.",
        ),
    ] = None,
    max_nodes: Annotated[int, typer.Option("--max-nodes", min=1)] = 50,
    allow_loops: Annotated[
        bool,
        typer.Option("--allow-loops", help="Accept cycles that a visit limit bounds."),
    ] = False,
    max_visits: Annotated[
        int | None,
        typer.Option("--max-visits", min=1, help="With --allow-loops: every node's visit limit."),
    ] = None,
    output_format: Annotated[Format, _FORMAT] = Format.text,
) -> None:
    """Validate stored pipeline definitions: cycles, self-loops, unknown node types, missing
    config, dangling edges, unreachable nodes, size. Exit 1 when any is invalid."""
    from ..pipelines import NodeTypesError, node_types_from_data
    from ..pipelines.sources import (
        SourceError,
        ValidationOptions,
        read_structured,
        validate_files,
        validate_table,
    )

    _one_source(files, database_url, "FILE")
    if max_visits is not None and not allow_loops:
        raise _fail("--max-visits only applies with --allow-loops")
    try:
        types = node_types_from_data(read_structured(node_types)) if node_types else None
        options = ValidationOptions(types, max_nodes, allow_loops, max_visits)
        if database_url:
            batch = validate_table(
                database_url,
                table=table,
                id_column=id_column,
                name_column=name_column or None,
                nodes_column=nodes_column,
                edges_column=edges_column,
                options=options,
            )
        else:
            batch = validate_files(files or [], options)
    except NodeTypesError as exc:
        raise _fail(f"--node-types {node_types}: {exc}") from None
    except SourceError as exc:
        raise _fail(str(exc)) from None
    if output_format is Format.json:
        _emit_json(batch.to_dict())
    else:
        lines = []
        for result in batch.invalid:
            where = f" ({result.location})" if result.label != result.location else ""
            count = len(result.report.problems)
            lines.append(f"{result.label}{where}: {count} problem{'s' if count != 1 else ''}")
            lines += [f"  {p.code}: {p.message}" for p in result.report.problems]
        checked = len(batch.results)
        lines.append(
            f"checked {checked} pipeline{'s' if checked != 1 else ''} from {batch.source}:"
            f" {len(batch.invalid)} invalid"
        )
        sys.stdout.write("\n".join(lines) + "\n")
    raise typer.Exit(0 if batch.ok else 1)


@pipelines_app.command("validate-cron")
def validate_cron(
    expressions: Annotated[
        list[str] | None,
        typer.Argument(help="Cron expressions, each quoted: '0 3 * * *'.", show_default=False),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Check the cron expressions of a table instead."),
    ] = None,
    table: Annotated[
        str, typer.Option("--table", help=_TABLE_HELP)
    ] = "orchestration.scheduled_actions",
    id_column: Annotated[str, typer.Option("--id-column")] = "id",
    name_column: Annotated[
        str, typer.Option("--name-column", help="Empty for a table without names.")
    ] = "name",
    cron_column: Annotated[str, typer.Option("--column")] = "cron_expression",
    min_interval: Annotated[
        str,
        typer.Option("--min-interval", help="The floor: refuse runs closer than this (1m, 1h)."),
    ] = "1m",
    time_budget: Annotated[
        float,
        typer.Option("--time-budget", min=0.001, help="Seconds allowed to find the next run."),
    ] = 0.5,
    show_next: Annotated[
        int, typer.Option("--next", min=0, max=100, help="Show the next N runs (UTC).")
    ] = 0,
    output_format: Annotated[Format, _FORMAT] = Format.text,
) -> None:
    """Validate cron expressions: the field at fault, schedules that never fire or fire more
    often than --min-interval. Exit 1 when any is invalid."""
    from ..pipelines.sources import SourceError, check_cron, validate_cron_table

    _one_source(expressions, database_url, "EXPR")
    tokens = expressions or []
    if len(tokens) > 1 and not any(t.split() != [t] or t.startswith("@") for t in tokens):
        joined = " ".join(tokens)
        example = joined if len(tokens) <= 7 and len(joined) <= 60 else "0 3 * * *"
        raise _fail(
            f"{len(tokens)} one-word arguments: quote each expression whole, e.g. '{example}'"
            " (unquoted, the shell splits it and expands * into file names)"
        )
    floor = _duration(min_interval, "--min-interval")
    try:
        if database_url:
            if show_next:
                raise _fail("--next applies to expressions given on the command line")
            batch = validate_cron_table(
                database_url,
                table=table,
                id_column=id_column,
                name_column=name_column or None,
                cron_column=cron_column,
                min_interval=floor,
                time_budget_s=time_budget,
            )
        else:
            batch = check_cron(
                expressions or [],
                min_interval=floor,
                time_budget_s=time_budget,
                show_next=show_next,
            )
    except SourceError as exc:
        raise _fail(str(exc)) from None
    if output_format is Format.json:
        _emit_json(batch.to_dict())
    else:
        lines = []
        for result in batch.results:
            if result.ok:
                if result.next_runs:
                    runs = ", ".join(d.isoformat() for d in result.next_runs)
                    lines.append(f"{result.label}: ok, next runs {runs}")
                elif not database_url:
                    lines.append(f"{result.label}: ok")
                continue
            where = f" {result.expression!r}" if result.id is not None else ""
            lines.append(f"{result.label}{where}: invalid")
            lines += [f"  {p.field}: {p.message}" for p in result.problems]
        checked = len(batch.results)
        origin = f" from {batch.source}" if database_url else ""
        lines.append(
            f"checked {checked} expression{'s' if checked != 1 else ''}{origin}:"
            f" {len(batch.invalid)} invalid"
        )
        sys.stdout.write("\n".join(lines) + "\n")
    raise typer.Exit(0 if batch.ok else 1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(pipelines_app)
