"""The `tests` commands: `tests inventory` (what pytest would collect, read statically, cross-
checked with `pytest --collect-only` given `--python`), `tests classify` (stub / contract /
integration / unit, with evidence), `tests ledger` (counts and skips, as JSON) and `tests gate`
(compare with the committed ledger; fail when tests go missing or CI hides failures). The
`tag-tests` codemod (`migrate tag-tests PATH`) writes the tags as pytest marks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

tests_app = typer.Typer(
    name="tests",
    help="Inventory, classify, count and gate the target's test suite.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_FORMAT = Annotated[str, typer.Option("--format", "-f", help="text or json.", metavar="FORMAT")]


def _consoles():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True), Console(
        stderr=True, highlight=False, soft_wrap=True
    )


def _fail(message: str) -> typer.Exit:
    from rich.markup import escape

    _, err = _consoles()
    err.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(2)


def _check_format(output_format: str) -> None:
    if output_format not in ("text", "json"):
        raise _fail(f"--format {output_format}: use text or json")


def _inventory(path: Path):
    from ..testsuite import PytestConfigError, inventory

    try:
        return inventory(path)
    except (FileNotFoundError, PytestConfigError) as exc:
        raise _fail(str(exc)) from None


@tests_app.command("inventory")
def inventory_command(
    path: Annotated[Path, typer.Argument(help="The project (its testpaths), a folder or a file.")],
    python: Annotated[
        str | None,
        typer.Option(
            "--python",
            help="The target's interpreter (or virtual environment): also run `pytest"
            " --collect-only` with it and list every difference.",
        ),
    ] = None,
    output_format: _FORMAT = "text",
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds pytest may take to collect.")
    ] = 300.0,
) -> None:
    """List every test pytest would collect, read statically (the target is never imported).
    Exit 1 when `--python` is given and pytest collects something else."""
    import json

    _check_format(output_format)
    found = _inventory(path)
    check = None
    if python:
        from ..testsuite.crosscheck import CrossCheckError, collect_with_pytest

        try:
            check = collect_with_pytest(found, python, timeout=timeout)
        except CrossCheckError as exc:
            raise _fail(str(exc)) from None
    out, _ = _consoles()
    if output_format == "json":
        data = found.to_dict()
        if check is not None:
            data["pytest"] = check.to_dict()
        out.print_json(json.dumps(data))
    else:
        # plain lines (a listing of thousands of tests: no markup to parse)
        lines = []
        for item in found.items:
            skips = ", ".join(f"{s.kind}: {s.reason or 'no reason'}" for s in item.skips)
            marks = sorted(item.mark_names - {"skip", "skipif", "xfail", "parametrize"})
            extra = f"  [{', '.join(marks)}]" if marks else ""
            lines.append(f"{item.nodeid}{extra}" + (f"  ({skips})" if skips else ""))
        source = found.config.inifile.name if found.config.inifile else "no pytest configuration"
        lines.append(
            f"{found.total} tests in {len(found.files)} files (rootdir {found.root}, {source})"
        )
        lines += [f"not read: {p}: {reason}" for p, reason in found.errors]
        lines += [f"limit: {limit}" for limit in found.limits]
        if check is not None:
            lines.append(
                f"pytest --collect-only: {check.collected} collected in {check.seconds:.2f} s;"
                f" static: {check.static};" + (" identical" if check.equal else " differences:")
            )
            lines += [f"  only in the inventory: {n}" for n in check.only_static]
            lines += [f"  only in pytest: {n}" for n in check.only_pytest]
            lines += [f"  pytest: {e}" for e in check.errors]
        typer.echo("\n".join(lines))
    raise typer.Exit(0 if check is None or check.equal else 1)


@tests_app.command("classify")
def classify_command(
    path: Annotated[Path, typer.Argument(help="The project (its testpaths), a folder or a file.")],
    output_format: _FORMAT = "text",
) -> None:
    """Tag each test stub / contract / integration / unit and say why (STB and MEM findings,
    HTTP clients, databases; `test-tags.toml` overrides)."""
    import json

    from rich.markup import escape

    from ..config import ConfigError
    from ..testsuite.classify import classify
    from ..testsuite.overrides import OverridesError

    _check_format(output_format)
    found = _inventory(path)
    try:
        result = classify(found)
    except (OverridesError, ConfigError) as exc:
        raise _fail(str(exc)) from None
    out, _ = _consoles()
    if output_format == "json":
        out.print_json(json.dumps(result.to_dict()))
        raise typer.Exit(0)
    for verdict in result.verdicts:
        cases = f" ({len(verdict.nodeids)} cases)" if len(verdict.nodeids) > 1 else ""
        out.print(
            escape(
                f"{verdict.path}:{verdict.line}: {verdict.name}{cases}: {verdict.tag}"
                f" [{verdict.source}]"
            )
        )
        for line in verdict.evidence:
            out.print(escape(f"    {line}"))
    counts = ", ".join(f"{tag} {n}" for tag, n in result.by_tag().items())
    out.print(escape(f"{sum(result.by_tag().values())} tests: {counts}"))
    for line in result.disagreements:
        out.print(escape(f"disagrees: {line}"))
    for test in result.unused_overrides:
        out.print(escape(f"override matches no test: {test}"))


@tests_app.command("ledger")
def ledger_command(
    path: Annotated[Path, typer.Argument(help="The project (its testpaths), a folder or a file.")],
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Where to write it (default: tests-ledger.json at the pytest rootdir; - prints).",
        ),
    ] = None,
) -> None:
    """Write the test ledger (JSON): totals per tag and file, skips and xfails with their issue
    references. Commit it; `tests gate` compares with it."""
    from rich.markup import escape

    from ..config import ConfigError
    from ..safeio import write_atomic
    from ..testsuite.classify import classify
    from ..testsuite.ledger import LEDGER_FILE, ledger_from
    from ..testsuite.overrides import OverridesError

    found = _inventory(path)
    try:
        ledger = ledger_from(found, classify(found))
    except (OverridesError, ConfigError) as exc:
        raise _fail(str(exc)) from None
    out, err = _consoles()
    text = ledger.dumps()
    if output == "-":
        out.print(text, end="", markup=False)
        return
    target = Path(output) if output else found.root / LEDGER_FILE
    try:
        write_atomic(target, text.encode("utf-8"))
    except OSError as exc:
        raise _fail(f"cannot write {target}: {exc.strerror or exc}") from None
    counts = ", ".join(f"{tag} {n}" for tag, n in ledger.by_tag.items())
    err.print(
        escape(
            f"wrote {target}: {ledger.total} tests ({counts}), {len(ledger.skips)} skips,"
            f" {len(ledger.xfails)} xfails"
        )
    )


@tests_app.command("gate")
def gate_command(
    path: Annotated[Path, typer.Argument(help="The project (its testpaths), a folder or a file.")],
    ledger: Annotated[
        Path | None,
        typer.Option("--ledger", help="The committed ledger (default: tests-ledger.json)."),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Unlinked skips the ledger already lists fail too (default: known debt).",
        ),
    ] = False,
    output_format: _FORMAT = "text",
) -> None:
    """Fail (exit 1) when tests were removed, skips grew, a new skip or xfail has no issue
    reference, or CI hides failing tests (`|| true`, `continue-on-error: true`, ...)."""
    import json

    from rich.markup import escape

    from ..config import ConfigError
    from ..testsuite import PytestConfigError
    from ..testsuite.gate import gate
    from ..testsuite.ledger import LedgerError
    from ..testsuite.overrides import OverridesError

    _check_format(output_format)
    try:
        result = gate(path, ledger, strict=strict)
    except (
        FileNotFoundError,
        PytestConfigError,
        LedgerError,
        OverridesError,
        ConfigError,
    ) as exc:
        raise _fail(str(exc)) from None
    out, _ = _consoles()
    if output_format == "json":
        out.print_json(json.dumps(result.to_dict()))
        raise typer.Exit(0 if result.passed else 1)
    for problem in result.problems:
        where = f"{problem.location}: " if problem.location else ""
        out.print(escape(f"{where}{problem.code}: {problem.message}"))
    for warning in result.warnings:
        where = f"{warning.location}: " if warning.location else ""
        out.print(escape(f"{where}known debt: {warning.message}"))
    total = result.ledger.total if result.ledger else 0
    committed = result.committed.total if result.committed else 0
    verdict = "passed" if result.passed else f"failed ({len(result.problems)} problems)"
    out.print(escape(f"test gate {verdict}: {total} tests (ledger: {committed})"))
    out.print(escape(f"gate CI on: {result.gate_command}"))
    raise typer.Exit(0 if result.passed else 1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(tests_app)
