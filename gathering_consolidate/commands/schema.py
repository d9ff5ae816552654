"""The `schema` commands: the toolkit's alembic revisions (upgrade, downgrade, current, sql), their
lint (squawk), the drift check and the users import. Without `--database-url` a command that needs
a database uses an embedded PostgreSQL started for it and removed afterwards (so `upgrade` there
is a rehearsal: `--app-schema DIR` applies the app's own SQL files first)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

schema_app = typer.Typer(
    name="schema",
    help="Schema revisions (alembic) for a GatheRing-style database: upgrade, downgrade, current,"
    " sql, lint, check, import-users.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_URL = typer.Option(
    "--database-url",
    envvar="GATHERING_CONSOLIDATE_DATABASE_URL",
    help="The target database (default: an embedded PostgreSQL, removed afterwards).",
    show_envvar=True,
)
_PROFILE = typer.Option(
    "--profile", "-p", help="Schema profile: a name in rules/schema/ or a TOML path.", metavar="P"
)
_FORMAT = typer.Option("--format", "-f", help="text or json.", metavar="FORMAT")
_APP_SCHEMA = typer.Option(
    "--app-schema",
    help="Embedded server only: apply this folder's *.sql files (in name order) first, e.g."
    " fixtures/gathering_app/schema.",
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(schema_app, name="schema")


# -- helpers -------------------------------------------------------------------------------------
def _err():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(message: str) -> typer.Exit:
    from rich.markup import escape

    _err().print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(2)


def _check_format(output_format: str) -> None:
    if output_format not in ("text", "json"):
        raise _fail(f"--format {output_format}: use text or json")


def _profile(profile: str | None):
    from ..schema.profile import ProfileError, load_profile

    try:
        return load_profile(profile)
    except ProfileError as exc:
        raise _fail(str(exc)) from None


def _print_json(data) -> None:
    import json
    import sys

    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _with_database(database_url: str | None, app_schema: Path | None, run):
    """Run `run(url)` on the given database, or on a disposable database of an embedded server
    (with the app's SQL applied first when `app_schema` is given)."""
    from ..database import DatabaseError, disposable_database, postgres_server
    from ..schema.migrations import SchemaError

    if database_url is not None and app_schema is not None:
        raise _fail(
            "--app-schema rehearses on the embedded server; it does not go with --database-url"
        )
    err = _err()
    try:
        if database_url is not None:
            return run(database_url)
        err.print("starting an embedded PostgreSQL (removed on exit)...")
        with postgres_server() as server, disposable_database(server.url, "gc_schema") as url:
            if app_schema is not None:
                from ..schema.migrations import apply_sql_files

                applied = apply_sql_files(url, app_schema)
                err.print(f"applied {len(applied)} file(s) of {app_schema}: {', '.join(applied)}")
            try:
                return run(url)
            except SchemaError as exc:
                if app_schema is not None or "does not exist" not in str(exc):
                    raise
                raise SchemaError(
                    f"{exc} (a throwaway embedded server: pass --database-url, or --app-schema"
                    " DIR to rehearse on the app's own SQL)"
                ) from None
    except (DatabaseError, SchemaError) as exc:
        raise _fail(str(exc)) from None


# -- commands ------------------------------------------------------------------------------------
@schema_app.command("upgrade")
def upgrade(
    target: Annotated[str, typer.Argument(help="Revision to reach (id or prefix).")] = "head",
    database_url: Annotated[str | None, _URL] = None,
    profile: Annotated[str | None, _PROFILE] = None,
    app_schema: Annotated[Path | None, _APP_SCHEMA] = None,
    output_format: Annotated[str, _FORMAT] = "text",
) -> None:
    """Apply the revisions up to TARGET. Refused before any change (exit 2) when the database is
    at an unknown revision or holds data a revision would stop on."""
    from ..schema import migrations

    _check_format(output_format)
    prof = _profile(profile)
    err = _err()
    result = _with_database(
        database_url,
        app_schema,
        lambda url: migrations.upgrade(url, target, profile=prof, progress=err.print),
    )
    _report_migration(result, output_format)


@schema_app.command("downgrade")
def downgrade(
    target: Annotated[str, typer.Argument(help="Revision to go down to (id, prefix or base).")],
    database_url: Annotated[str | None, _URL] = None,
    profile: Annotated[str | None, _PROFILE] = None,
    output_format: Annotated[str, _FORMAT] = "text",
) -> None:
    """Undo the revisions above TARGET (`base`: all of them)."""
    from ..schema import migrations

    _check_format(output_format)
    prof = _profile(profile)
    err = _err()
    result = _with_database(
        database_url,
        None,
        lambda url: migrations.downgrade(url, target, profile=prof, progress=err.print),
    )
    _report_migration(result, output_format)


def _report_migration(result, output_format: str) -> None:
    if output_format == "json":
        _print_json(result.to_dict())
        return
    n = len(result.steps)
    total = sum(s.duration_s for s in result.steps)
    print(
        f"{result.database}: {result.start or 'base'} -> {result.end or 'base'}"
        f" ({n} revision{'s' if n != 1 else ''}, {total:.2f} s)"
        if n
        else f"{result.database}: already at {result.end or 'base'}, nothing to do"
    )


@schema_app.command("current")
def current(
    database_url: Annotated[str | None, _URL] = None,
    profile: Annotated[str | None, _PROFILE] = None,
    output_format: Annotated[str, _FORMAT] = "text",
) -> None:
    """Show the database's revision and the revisions still to apply."""
    from ..schema import migrations

    _check_format(output_format)
    prof = _profile(profile)
    state = _with_database(database_url, None, lambda url: migrations.current(url, profile=prof))
    if output_format == "json":
        _print_json(state.to_dict())
        return
    print(f"{state.database}: {state.revision or 'base'}{' (head)' if state.at_head else ''}")
    for rev in state.pending:
        print(f"  pending: {rev}")


@schema_app.command("history")
def history(
    profile: Annotated[str | None, _PROFILE] = None,
    output_format: Annotated[str, _FORMAT] = "text",
) -> None:
    """List the revisions, base first."""
    from ..schema import migrations

    _check_format(output_format)
    revs = migrations.revisions(_profile(profile))
    if output_format == "json":
        _print_json([r.to_dict() for r in revs])
        return
    for rev in revs:
        print(f"{rev.id}: {rev.description}")


@schema_app.command("sql")
def sql(
    database_url: Annotated[str | None, _URL] = None,
    profile: Annotated[str | None, _PROFILE] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Start after this revision (default: base; with"
            " --database-url: the database's revision).",
        ),
    ] = None,
    end: Annotated[str, typer.Option("--to", help="Last revision.")] = "head",
    down: Annotated[
        bool, typer.Option("--downgrade", help="The SQL of the way back down.")
    ] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to FILE.")] = None,
) -> None:
    """Print the SQL of the revisions (alembic's offline mode): what `upgrade` would run. Apply it
    with `psql -f` (CREATE INDEX CONCURRENTLY needs one statement at a time)."""
    import sys

    from ..schema import migrations
    from ..schema.migrations import SchemaError

    prof = _profile(profile)
    if database_url is not None and start is None:
        state = _with_database(
            database_url, None, lambda url: migrations.current(url, profile=prof)
        )
        start = state.revision
    try:
        text = migrations.render_sql(profile=prof, start=start, end=end, downgrade=down)
    except SchemaError as exc:
        raise _fail(str(exc)) from None
    if output is None:
        sys.stdout.write(text)
        return
    from ..safeio import write_atomic

    try:
        write_atomic(output, text)
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc.strerror or exc}") from None


@schema_app.command("check")
def check(
    database_url: Annotated[str | None, _URL] = None,
    profile: Annotated[str | None, _PROFILE] = None,
    app_schema: Annotated[Path | None, _APP_SCHEMA] = None,
    output_format: Annotated[str, _FORMAT] = "text",
) -> None:
    """Compare the database with the head schema (for CI): exit 0 same, 1 drift, 2 error."""
    from ..schema import migrations

    _check_format(output_format)
    prof = _profile(profile)

    def run(url: str):
        if app_schema is not None:
            migrations.upgrade(url, profile=prof)
        return migrations.check(url, profile=prof)

    report = _with_database(database_url, app_schema, run)
    if output_format == "json":
        _print_json(report.to_dict())
    else:
        for problem in report.problems:
            print(f"{problem.kind}: {problem.object}: {problem.message}")
        n = len(report.problems)
        print(
            f"{report.database}: matches the head schema ({report.head})"
            if report.ok
            else f"{report.database}: {n} difference{'s' if n != 1 else ''} from the head schema"
        )
    raise typer.Exit(0 if report.ok else 1)


@schema_app.command("lint")
def lint(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="A target's alembic revisions (folder or file, read statically, never run) or"
            " .sql files; default: this tool's own revisions."
        ),
    ] = None,
    profile: Annotated[str | None, _PROFILE] = None,
    output_format: Annotated[str, _FORMAT] = "text",
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Also list inline ignores and what was not rendered."),
    ] = False,
) -> None:
    """Lint migrations with squawk: exit 0 clean, 1 violations, 2 error. Our own revisions are
    rendered by alembic's offline mode; a target's are replayed statically (op.* calls with literal
    and SQLAlchemy arguments) and what cannot be is listed as not rendered."""
    from ..schema.lint import LintError, lint_own, lint_path

    _check_format(output_format)
    try:
        result = lint_own(_profile(profile)) if path is None else lint_path(path)
    except LintError as exc:
        raise _fail(str(exc)) from None
    if output_format == "json":
        _print_json(result.to_dict())
        raise typer.Exit(0 if result.ok else 1)
    for v in result.violations:
        where = f"{v.path}:{v.line}" if v.line else v.path
        print(f"{where}: {v.rule}: {v.message}")
        if verbose and v.statement:
            print(f"    {v.statement}")
    if verbose:
        for i in result.ignored:
            print(f"{i.path}:{i.line}: ignored {i.rule}: {i.reason}")
        for n in result.not_rendered:
            print(f"{n.path}:{n.line}: not rendered: {n.reason}")
    rules = ", ".join(f"{rule} ({n})" for rule, n in result.by_rule().items())
    print(
        f"{result.target}: {result.files} file(s), {result.statements} statement(s) rendered,"
        f" {len(result.violations)} violation(s){': ' + rules if rules else ''};"
        f" {len(result.ignored)} ignored inline with a reason,"
        f" {len(result.not_rendered)} statement(s) not rendered"
        + ("" if verbose or not (result.ignored or result.not_rendered) else " (-v lists them)")
    )
    raise typer.Exit(0 if result.ok else 1)


@schema_app.command("import-users")
def import_users(
    dump: Annotated[
        Path, typer.Option("--from", help="The user store's export (JSON), '-' for stdin.")
    ],
    database_url: Annotated[str | None, _URL] = None,
    profile: Annotated[str | None, _PROFILE] = None,
    output_format: Annotated[str, _FORMAT] = "text",
) -> None:
    """Copy an in-memory user store's export into the users table (at the head schema), ids and
    hashes kept, in one transaction; running it again changes nothing. A malformed record is
    reported with its position and nothing is written (exit 2)."""
    import sys

    from ..schema.users import UserImportError, read_dump
    from ..schema.users import import_users as run_import

    _check_format(output_format)
    prof = _profile(profile)
    try:
        text = sys.stdin.read() if str(dump) == "-" else dump.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read {dump}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        records = read_dump(text, source=str(dump))
    except UserImportError as exc:
        raise _fail(str(exc)) from None

    def run(url: str):
        try:
            return run_import(url, records, profile=prof)
        except UserImportError as exc:
            raise _fail(str(exc)) from None

    result = _with_database(database_url, None, run)
    if output_format == "json":
        _print_json(result.to_dict())
        return
    print(
        f"{result.database}: {result.inserted} user(s) imported, {result.unchanged} already"
        f" there, into {result.table}"
    )
