"""The command line: each command builds its inputs, calls one library function and renders the
result. This is the only module that prints.

Exit codes (as ruff's): 0 nothing found, 1 findings (or files that could not be audited),
2 usage, configuration or internal error.

No `from __future__ import annotations` here: typer reads every command's parameters from its
annotations, and string annotations are compiled and evaluated on every run (~40 `eval`s for
`audit` alone); written as objects they are built once, with the module.
"""

import contextlib
import dataclasses
import enum
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

from .commands.support import EXIT_ERROR
from .commands.support import fail as _fail
from .commands.support import sigterm_exits as _sigterm_exits
from .version import __version__

app = typer.Typer(
    name="gathering-consolidate",
    help="Audit, migrate and verify FastAPI + PostgreSQL multi-agent codebases.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _console(**options) -> "Console":
    """A rich console, rich imported on first use: a run whose output needs none of it (plain
    `--quiet` text, json, sarif, github) does not load it (~25 ms of a cached audit)."""
    from rich.console import Console

    return Console(**options)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


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


def _split(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


_PYTHON_OPTION = typer.Option(
    "--python",
    metavar="PATH",
    help="The target's interpreter or virtual environment (default: $VIRTUAL_ENV): installed"
    " libraries are read as source, never run.",
)


def _with_python(run, python: str | None):
    """`run` with configurations loaded for the `--python` environment (checked, never run)."""
    import functools

    from .config import target_python

    if python is not None:
        from .libsource import find_environment

        if not Path(python).exists():
            raise _fail(f"--python {python}: no such file or directory")
        if find_environment(python) is None:
            raise _fail(f"--python {python}: no site-packages found (not a Python environment?)")

    @functools.wraps(run)
    def wrapped(*args, **kwargs):
        with target_python(python):
            return run(*args, **kwargs)

    return wrapped


class AuditFormat(enum.StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"
    github = "github"


@app.command()
def audit(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="The project (or file) to audit; with --changed, the changed files.",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        AuditFormat,
        typer.Option(
            "--format",
            "-f",
            help="Output format: text, json, sarif (2.1.0) or github (workflow annotations and"
            " a job summary in $GITHUB_STEP_SUMMARY).",
        ),
    ] = AuditFormat.text,
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
    python: Annotated[str | None, _PYTHON_OPTION] = None,
    sarif_file: Annotated[
        Path | None,
        typer.Option("--sarif-file", metavar="FILE", help="Also write the findings as SARIF."),
    ] = None,
    github: Annotated[
        bool,
        typer.Option(
            "--github",
            help="Also print GitHub annotations and append the job summary to"
            " $GITHUB_STEP_SUMMARY (as --format github, beside another format).",
        ),
    ] = False,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            metavar="FILE",
            help="Report only findings this baseline does not cover (default: the `baseline`"
            " of the configuration, if set).",
        ),
    ] = None,
    update_baseline: Annotated[
        bool,
        typer.Option(
            "--update-baseline", help="Write every current finding to the baseline, then exit 0."
        ),
    ] = False,
    changed: Annotated[
        bool,
        typer.Option(
            "--changed",
            help="PATHS are changed files (pre-commit): audit their project through the cache"
            " and report the findings in them, and cross-file ones pointing into them.",
        ),
    ] = False,
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="First apply the safe codemods that fix findings (with --changed: to the"
            " changed files only).",
        ),
    ] = False,
) -> None:
    """Audit a project: read-only, prints findings; exit 0 clean, 1 findings, 2 error."""
    from .config import ConfigError

    targets = list(paths or [Path(".")])
    if not changed and len(targets) > 1:
        raise _fail(f"one PATH expected, got {len(targets)} (several files only with --changed)")
    machine = output_format in (AuditFormat.json, AuditFormat.sarif)
    if github and machine and output is None:
        raise _fail(f"--github with --format {output_format}: write the report with -o FILE")
    if update_baseline and (output_format is not AuditFormat.text or sarif_file or github):
        raise _fail("--update-baseline writes the baseline only; run the report without it")
    options = _AuditOptions(
        output_format, output, select, ignore, no_cache, jobs, quiet, sarif_file, github,
        baseline, update_baseline, fix,
    )  # fmt: skip
    code = 0
    try:
        with _sigterm_exits():
            if changed:
                from .precommit import group_by_project

                for files in group_by_project(targets).values():
                    step = _with_python(_audit_changed, python)
                    code = max(code, step(files, options))
            else:
                step = _with_python(_audit_one, python)
                code = step(targets[0], options)
    except KeyboardInterrupt:
        # Workers are stopped by the scanner; nothing was written (no report, no cache).
        _console(stderr=True).print("interrupted")
        raise typer.Exit(130) from None
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    raise typer.Exit(code)


@dataclasses.dataclass(frozen=True)
class _AuditOptions:
    output_format: AuditFormat
    output: Path | None
    select: list[str] | None
    ignore: list[str] | None
    no_cache: bool
    jobs: int | None
    quiet: bool
    sarif_file: Path | None
    github: bool
    baseline: Path | None
    update_baseline: bool
    fix: bool


def _load_project_config(path: Path, options: _AuditOptions):
    from .config import load_config
    from .runcache import rule_catalogue

    rules, known = rule_catalogue(cache=not options.no_cache)
    return load_config(
        path,
        select=_split(options.select),
        ignore=_split(options.ignore) or (),
        known_rules=rules,
        known_options=known,
    )


def _audit_one(path: Path, options: _AuditOptions) -> int:
    from .project import audit as run_audit

    if not path.exists() and not path.is_symlink():
        raise FileNotFoundError(f"{path}: no such file or directory")
    config = _load_project_config(path, options)
    if options.fix:
        from .precommit import fix_changed

        _report_fixes(fix_changed(path, None))
    show_progress = (
        options.output_format is AuditFormat.text and not options.quiet and sys.stderr.isatty()
    )
    with _frozen_heap():
        result = _run_audit_with_progress(
            run_audit, path, config, options.no_cache, options.jobs, show_progress
        )
    code = _finish(result, config, options, changed=None)
    from .replay import offer

    offer(result, path)  # the next run of this very command may print this again (replay.py)
    return code


def _audit_changed(files: list[Path], options: _AuditOptions) -> int:
    from .precommit import changed_files, fix_changed
    from .project import audit as run_audit

    config = _load_project_config(files[0], options)
    changes = changed_files(files, config)
    if not changes.paths:
        return 0  # nothing of this project's Python changed
    if options.fix:
        _report_fixes(fix_changed(config.root, set(changes.paths)))
    with _frozen_heap():
        result = run_audit(
            config.root, config=config, cache=not options.no_cache, jobs=options.jobs
        )
    code = _finish(result, config, options, changed=changes.paths)
    from .replay import offer

    offer(result, *files)  # the next run of this very command may print this again (replay.py)
    return code


@contextlib.contextmanager
def _frozen_heap():
    """Everything allocated so far (the interpreter, typer, rich, the checks: ~0.1 s of objects)
    is moved out of the cyclic collector's sight while the audit runs: the audit's own
    `gc.collect()` calls then scan only what the audit allocates. Nothing of it is garbage."""
    import gc

    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _report_fixes(report) -> None:
    err = _console(stderr=True, highlight=False, soft_wrap=True)
    for codemod, paths in report.by_codemod.items():
        for path in paths:
            err.print(f"fixed {_escape(path)} ({_escape(codemod)})")
    for failure in report.failures:
        err.print(f"[red]fix failed[/] {_escape(failure)}")


def _baseline_path(config, options: _AuditOptions) -> Path | None:
    if options.baseline is not None:
        return options.baseline
    if config.baseline:
        return config.root / config.baseline
    return None


def _finish(result, config, options: _AuditOptions, changed: tuple[str, ...] | None) -> int:
    """Baseline, changed-files scope, then every requested output; returns the exit code."""
    where = _baseline_path(config, options)
    if where is not None:
        from . import baseline as ratchet
    if options.update_baseline:
        if where is None:
            raise _fail(
                "--update-baseline needs --baseline FILE (or `baseline` in the configuration)"
            )
        try:
            written = ratchet.write_baseline(result, where)
        except ratchet.BaselineError as exc:
            raise _fail(str(exc)) from None
        except OSError as exc:
            raise _fail(f"cannot write {where}: {exc.strerror or exc}") from None
        n = len(written)
        _console(stderr=True, highlight=False, soft_wrap=True).print(
            f"baseline {_escape(str(where))}: {n} finding{'s' if n != 1 else ''} accepted"
        )
        return EXIT_ERROR if result.errors else (1 if result.failed_files else 0)
    diff = None
    shown = result
    if where is not None:
        try:
            diff = ratchet.compare(result, ratchet.load_baseline(where))
        except ratchet.BaselineError as exc:
            raise _fail(str(exc)) from None
        shown = ratchet.filtered(result, diff)
    if changed is not None:
        from .precommit import restrict

        shown = restrict(shown, changed)
    _emit(shown, options, diff, changed)
    return shown.exit_code


def _emit(result, options: _AuditOptions, diff=None, changed=None) -> None:
    fmt, output, quiet = options.output_format, options.output, options.quiet
    baselined = diff is not None
    if fmt is AuditFormat.json:
        import json

        from .report import json as json_report

        document = json_report.audit_to_dict(result)
        if diff is not None:
            document["baseline"] = {k: v for k, v in diff.to_dict().items() if k != "new"}
        if changed is not None:
            document["changed"] = list(changed)
        _write_or_print(json.dumps(document, indent=2) + "\n", output)
    elif fmt is AuditFormat.sarif:
        from .report import sarif

        _write_or_print(sarif.render(result, baselined=baselined), output)
    elif fmt is AuditFormat.github:
        from .report import github as github_report

        _write_or_print(github_report.render(result), output)
    else:
        _emit_text(result, output, quiet, diff)
    if options.sarif_file is not None:
        from .report import sarif

        _write_report(options.sarif_file, sarif.render(result, baselined=baselined))
    if options.github and fmt is not AuditFormat.github:
        from .report import github as github_report

        sys.stdout.write(github_report.render(result))
    if options.github or fmt is AuditFormat.github:
        _write_step_summary(result, diff)


def _write_or_print(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        _write_report(output, text)


def _write_step_summary(result, diff) -> None:
    """Append the job summary to $GITHUB_STEP_SUMMARY (a file GitHub gives each step), if set."""
    import os

    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    from .report import github as github_report

    try:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(github_report.summary_markdown(result, diff=diff))
    except OSError as exc:
        raise _fail(f"cannot write the job summary {target}: {exc.strerror or exc}") from None


def _run_audit_with_progress(run_audit, path, config, no_cache, jobs, show_progress):
    options = {"config": config, "cache": not no_cache, "jobs": jobs}
    if not show_progress:
        return run_audit(path, **options)
    from rich.progress import Progress

    with Progress(console=_console(stderr=True), transient=True) as bar:
        task = bar.add_task("auditing", total=None)
        return run_audit(
            path,
            **options,
            progress=lambda n: bar.advance(task, n),
            on_total=lambda n: bar.update(task, total=n),
        )


def _emit_text(result, output: Path | None, quiet: bool, diff=None) -> None:
    from .report import console as console_report

    if quiet and diff is None:
        plain = console_report.quiet_plain(result, stdout=output is None)
        if plain is not None:
            _write_or_print(plain, output)
            return
    if output is None:
        # Piped (CI logs, pre-commit): rich would assume 80 columns and cut table cells.
        width = None if sys.stdout.isatty() else 120
        console = _console(highlight=False, width=width)
        console_report.render(result, console, quiet=quiet)
        _print_baseline(diff, console, quiet)
    else:
        import io

        buffer = io.StringIO()
        console = _console(file=buffer, width=120, no_color=True, highlight=False)
        console_report.render(result, console, quiet=quiet)
        _print_baseline(diff, console, quiet)
        _write_report(output, buffer.getvalue())


def _print_baseline(diff, console: "Console", quiet: bool) -> None:
    """The baseline's verdict after the report: counts, then what to do about fixed and stale
    entries (quiet: nothing unless there is something to do)."""
    if diff is None or (quiet and not (diff.fixed or diff.stale)):
        return
    console.print(f"baseline: {_escape(diff.summary())}", soft_wrap=True)
    if diff.fixed or diff.stale:
        console.print(
            f"  {len(diff.fixed)} fixed and {len(diff.stale)} stale entries:"
            " --update-baseline rewrites the baseline",
            soft_wrap=True,
        )


def _write_report(path: Path, text: str) -> None:
    """Write a report file atomically (a whole report or none), refusing a symlink at `path`:
    the audited tree is untrusted and `-o` may point into it."""
    from .safeio import write_atomic

    try:
        write_atomic(path, text)
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
    _console(highlight=False).print(table)


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


@app.command()
def migrate(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            help="PATH, or CODEMOD [PATH]: `migrate app --codemod narrow-except` and"
            " `migrate lint-guard app` both work.",
            show_default=False,
        ),
    ] = None,
    codemod: Annotated[
        str | None, typer.Option("--codemod", "-c", help="The codemod to run (see --list).")
    ] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Apply the changes (atomically); default: show a diff.")
    ] = False,
    unsafe_fixes: Annotated[
        bool,
        typer.Option(
            "--unsafe-fixes",
            help="Allow --write for codemods that can change behaviour (a diff never needs it).",
        ),
    ] = False,
    tier: Annotated[
        int | None, typer.Option("--tier", min=1, max=3, help="Only findings of this tier.")
    ] = None,
    reraise: Annotated[
        bool,
        typer.Option("--reraise", help="narrow-except: re-raise in swallowing tier-1 handlers."),
    ] = False,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-O",
            help="A codemod option as KEY=VALUE (repeatable; `migrate --list` shows each"
            " codemod's options).",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="List every refusal, not only their counts.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    list_codemods: Annotated[
        bool,
        typer.Option(
            "--list", help="List the codemods and their options (`--list ID`: one codemod's docs)."
        ),
    ] = False,
    python: Annotated[str | None, _PYTHON_OPTION] = None,
) -> None:
    """Rewrite code with a codemod: a unified diff by default, --write to apply.

    Exit codes: 0 nothing to change (or written), 1 changes shown in the diff, 2 usage or internal
    error, or a file the codemod had to change and could not. Files that cannot be read or parsed
    are listed and left alone; they do not change the exit code.
    """
    from .codemods.engine import (
        CodemodError,
        WriteError,
        apply,
        check_write,
        codemod_registry,
        plan_migration,
    )
    from .config import ConfigError

    plan_migration = _with_python(plan_migration, python)
    registry = codemod_registry()
    if list_codemods:
        wanted = codemod or next((a for a in args or [] if a in registry), None)
        if wanted is not None:  # `migrate --list ID`: that codemod's documentation
            if wanted not in registry:
                raise _fail(f"unknown codemod `{wanted}` (known: {', '.join(registry)})")
            cls = registry[wanted]
            print(f"{wanted} ({cls.applicability.value}): {cls.description}\n\n{cls.docs()}")
            return
        for cid, cls in registry.items():
            print(f"{cid:<22} {cls.applicability.value:<7} {cls.description}")
            for line in cls.options_help():
                print(f"{'':<31}{line}")
        return
    args = list(args or [])
    if args and args[0] in registry and not Path(args[0]).exists():
        if codemod is not None and codemod != args[0]:
            raise _fail(f"two codemods given: {args[0]} and --codemod {codemod}")
        codemod = args.pop(0)
    if len(args) > 1:
        raise _fail(f"one path expected, got {len(args)}: {' '.join(args)}")
    target = Path(args[0]) if args else Path(".")
    if codemod is None:
        raise _fail("which codemod? pass --codemod ID (`migrate --list` lists them)")
    options: dict[str, object] = {}
    if tier is not None:
        options["tier"] = tier
    if reraise:
        options["reraise"] = True
    for item in option or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise _fail(f"--option {item!r}: expected KEY=VALUE")
        options[key.strip()] = _parse_value(value.strip())
    err = _console(stderr=True, highlight=False, soft_wrap=True)
    try:
        if write:
            check_write(codemod, unsafe_fixes=unsafe_fixes)
        if not quiet and sys.stderr.isatty():
            from rich.progress import Progress

            with Progress(console=_console(stderr=True), transient=True) as bar:
                plan = plan_migration(target, codemod, options, progress=_progress_hook(bar))
        else:
            plan = plan_migration(target, codemod, options)
    except (CodemodError, ConfigError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    for skipped in plan.skipped:
        err.print(f"[yellow]skipped[/] {_escape(skipped.path)}: {_escape(skipped.reason)}")
    if verbose:
        for refusal in plan.refusals:
            where = f"{refusal.path}:{refusal.line}" if refusal.line else refusal.path
            err.print(f"[yellow]refused[/] {_escape(where)}: {_escape(refusal.reason)}")
    for failure in plan.failures:
        err.print(f"[red]failed[/] {_escape(failure.path)}: {_escape(failure.reason)}")
    for change in plan.changes:
        for warning in change.warnings:
            err.print(f"[cyan]note[/] {_escape(change.path)}: {_escape(warning)}")
    if write:
        try:
            written = apply(plan)
        except WriteError as exc:
            raise _fail(str(exc)) from None
        n = len(written)
        err.print(f"{_escape(plan.codemod)}: wrote {n} file{'s' if n != 1 else ''}")
        _print_refusal_summary(err, plan, verbose)
        raise typer.Exit(EXIT_ERROR if plan.failures else 0)
    from .codemods.engine import render_diff

    sys.stdout.write(render_diff(plan))
    n = len(plan.changes)
    err.print(
        f"{_escape(plan.codemod)}: {n} file{'s' if n != 1 else ''} would change"
        " (dry run; --write applies)"
    )
    _print_refusal_summary(err, plan, verbose)
    raise typer.Exit(EXIT_ERROR if plan.failures else (1 if n else 0))


def _progress_hook(bar):
    """progress(stage, advance, total) for the codemod engine: one bar per stage."""
    tasks: dict[str, object] = {}

    def hook(stage: str, advance: int, total: int | None) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(_escape(stage), total=total)
        elif total is not None:
            bar.update(tasks[stage], total=total)
        if advance:
            bar.advance(tasks[stage], advance)

    return hook


def _print_refusal_summary(err: "Console", plan, verbose: bool) -> None:
    """Why things were left: refusals by category, most frequent first, and skipped files."""
    refusals = plan.refusals
    if refusals:
        counts = ", ".join(f"{_escape(c)} ({n})" for c, n in plan.refusals_by_category())
        hint = "" if verbose else "; --verbose lists each"
        err.print(f"  {len(refusals)} refused: {counts}{hint}")
    if plan.skipped:
        n = len(plan.skipped)
        err.print(f"  {n} file{'s' if n != 1 else ''} skipped (not read or not parsed), left as is")


sql_app = typer.Typer(
    name="sql",
    help="Dynamic SQL sites: list them all, approve reviewed ones in the allowlist.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(sql_app, name="sql")


@sql_app.command("approve")
def sql_approve(
    site: Annotated[
        str, typer.Argument(help="PATH:LINE of the execute-like call, or the site fingerprint.")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why the site is safe (required).")],
    reviewer: Annotated[str, typer.Option("--reviewer", help="Who reviewed it (required).")],
    project: Annotated[
        Path, typer.Option("--project", "-p", help="The project the site belongs to.")
    ] = Path("."),
    allowlist: Annotated[
        Path | None,
        typer.Option("--allowlist", help="The allowlist file (default: rules/sql_allowlist.toml)."),
    ] = None,
) -> None:
    """Approve a reviewed dynamic SQL site: it becomes SQL003 (informational) while its SQL is
    unchanged. Exit 0 approved (or already approved), 2 error."""
    from .config import ConfigError
    from .sql.allowlist import ApproveError, approve

    try:
        approval = approve(project, site, reason=reason, reviewer=reviewer, allowlist=allowlist)
    except (ApproveError, ConfigError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    ref = approval.site
    state = "approved" if approval.added else "already approved"
    print(f"{state}: {ref.path}:{ref.line} {ref.function} ({ref.fingerprint}, was {ref.verdict})")
    print(f"allowlist: {approval.allowlist}")


@sql_app.command("sites")
def sql_sites(
    path: Annotated[Path, typer.Argument(help="The project (or file) to list.")] = Path("."),
    output_format: Annotated[
        Format, typer.Option("--format", "-f", help="Output format.")
    ] = Format.text,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the list to FILE.")
    ] = None,
) -> None:
    """List every dynamic SQL site that reaches a sink, safe ones included: location, sink,
    slots (expression, kind, origin) and verdict. A report, not a gate: exit 0, 2 error."""
    from .config import ConfigError
    from .report import sql_sites as sites_report
    from .sql.listing import list_sites

    try:
        sites = list_sites(path)
    except (ConfigError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    if output_format is Format.json:
        text = sites_report.render_json(sites)
    else:
        text = sites_report.render_text(sites)
    if output is None:
        sys.stdout.write(text)
    else:
        _write_report(output, text)


from .commands import register_all  # noqa: E402  (the groups need `app` and the helpers above)

register_all(app)


def _parse_value(text: str) -> object:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        return text


def _first_interrupt(signum: int, frame: object) -> None:
    """Ctrl-C once: unwind (workers are stopped on the way, exit 130). Every later Ctrl-C is
    ignored, so a second one during the shutdown cannot cut it short and orphan workers."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _app_for(argv: list[str]) -> typer.Typer:
    """The app to run: for `audit` (and a bare `--version`), one that holds only that command.
    Typer inspects the signature of every command when it builds the command line (string
    annotations evaluated, ~50 commands); the pre-commit hook runs `audit` on every commit and
    need not pay for the others."""
    if argv[:1] != ["audit"] and argv != ["--version"]:
        return app
    single = typer.Typer(
        name=app.info.name,
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
    )
    single.callback()(_main)
    single.command()(audit)
    return single


def main() -> None:
    if threading.current_thread() is threading.main_thread():
        import signal

        signal.signal(signal.SIGINT, _first_interrupt)
    try:
        _app_for(sys.argv[1:])()
    except KeyboardInterrupt:
        _console(stderr=True).print("interrupted")
        sys.exit(130)
    # consolidate: ignore[EXC002] last resort: a bug exits 2 with its traceback
    except Exception as exc:
        import traceback

        traceback.print_exc()
        _console(stderr=True, highlight=False).print(
            f"[bold red]internal error:[/] {_escape(repr(exc))}: a bug in gathering-consolidate,"
            " please report it"
        )
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
