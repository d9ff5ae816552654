"""Codemod `narrow-except`: replace broad exception handlers with the specific types their try
body raises (fixes EXC001, EXC002), tier by tier."""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..audit.astutil import is_test_path
from ..audit.base import Option
from ..audit.exceptions.helpers import is_logger_receiver
from ..model import Applicability, Finding
from ._exceptions_helpers import (
    EXC_RULES,
    ModuleNames,
    Spelling,
    Unspellable,
    add_import_text,
    findings_by_path,
    first_party,
    handlers_in_order,
    project_modules,
    spell,
)
from .base import (
    Changed,
    Codemod,
    CodemodProject,
    Failed,
    Keeps,
    Outcome,
    Refused,
    Refuses,
    Rewrite,
    Unchanged,
)

_BROAD = frozenset({"Exception", "BaseException", "builtins.Exception", "builtins.BaseException"})
_SWALLOWING = ("pass", "return_default", "log_continue")
_ROUNDS = 3


@dataclass
class _Plan:
    line: int
    types: list[str]
    reraise: bool
    spellings: list[Spelling] = field(default_factory=list)
    note: str | None = None


class NarrowExcept(Codemod):
    """Narrow broad `except` clauses to the exceptions the try body can raise.

    For each EXC001/EXC002 finding of the chosen tier (`--tier`, default 1; 0 means every tier)
    it uses the finding's `narrow_to`: the types the audit found the try body raising (library
    calls mapped in `rules/exceptions.toml`, `raise` statements, the project's own functions
    followed across files, lookups in the body itself), or, when the calls tell nothing, the
    module rule of `rules/exceptions.toml` for that file (the DB layer to `psycopg.Error`).
    `except Exception:`, `except BaseException:`, a bare `except:` and the broad members of a
    tuple are replaced; the imports the new names need are added (reusing the module's own
    imports where they bind them, placing new ones in their isort section). The edits are made
    on the text at `ast` positions, so everything else (comments, formatting) stays as written.

    With `--reraise`, a handler that swallows (`pass`, return a default, log and carry on) also
    gets a `raise` after its logging (its final `pass`/`continue`/`break`/`return` becomes
    `raise`). A handler that now re-raises hands its errors to the handlers around it and to
    its callers, which may become narrowable in turn: the codemod repeats on its own result (up
    to three rounds) so that a second run changes nothing.

    It does not guess, and says why it leaves a handler: a call in the try body (or deep in
    what it calls) the tool cannot resolve or has no exception mapping for (the reason names
    it and the `calls` entry that would map it), the try body raises `Exception` itself or a
    class defined inside a function, more than `max-types` types (default 3), an event-bus
    dispatch site or an isolation boundary (a loop that must survive one item's failure, a
    runner that turns any error into an error result, request middleware, a cleanup call:
    `isolate-handlers`' job), test code (unless `include-tests`), a re-raising
    handler that does work before it re-raises (cleanup that must run for every error), a
    narrowed clause that would leave existing code unable to run (a branch of the handler on a
    class it would no longer catch, `if isinstance(e, zlib.error):`, or a later `except` it
    would take first), or a new name that would clash. Suppressed findings (`# consolidate: ignore[EXC001] ...`,
    `fixme[...]`) are left alone.

    Unsafe: errors the new clause does not name now propagate, which is the point, and changes
    what callers see.
    """

    id = "narrow-except"
    description = "Replace broad except clauses with the exceptions the try body raises."
    applicability = Applicability.UNSAFE
    fixes = EXC_RULES
    OPTIONS = {
        "tier": Option(
            1,
            "Only handlers of this tier (1, 2, 3; 0 for every tier): the tier EXC gives each"
            " handler from what it protects (`evidence.tier_reason`).",
        ),
        "reraise": Option(False, "Re-raise after the logging in handlers that swallow."),
        "include-tests": Option(False, "Narrow handlers in test code too (left alone by default)."),
        "max-types": Option(
            3, "Leave a handler whose try body raises more types than this (narrow it by hand)."
        ),
    }
    CASES = [
        Rewrite(
            before="""
                import jwt

                def peek(token):
                    try:
                        return jwt.decode(token, options={"verify_signature": False})
                    # a token we cannot read has no claims
                    except Exception:  # keep
                        return {}
            """,
            after="""
                import jwt

                def peek(token):
                    try:
                        return jwt.decode(token, options={"verify_signature": False})
                    # a token we cannot read has no claims
                    except jwt.PyJWTError:  # keep
                        return {}
            """,
            path="app/auth/tokens.py",
        ),
        Rewrite(
            before="""
                import json
                import logging

                logger = logging.getLogger(__name__)

                def seeds(raw):
                    data = []
                    try:
                        data = json.loads(raw)
                    except:
                        logger.warning("bad seed list")
                    return data
            """,
            after="""
                import json
                import logging

                logger = logging.getLogger(__name__)

                def seeds(raw):
                    data = []
                    try:
                        data = json.loads(raw)
                    except ValueError:
                        logger.warning("bad seed list")
                        raise
                    return data
            """,
            path="app/db/seeds.py",
            options={"reraise": True, "tier": 2},  # tier 2: app code, no sensitive call
        ),
        Rewrite(
            before="""
                from app.db.service import Database

                def healthy(db: Database) -> bool:
                    try:
                        row = db.one("SELECT 1 AS ok")
                        return row["ok"] == 1
                    except (KeyError, Exception) as exc:
                        return False
            """,
            after="""
                import psycopg

                from app.db.service import Database

                def healthy(db: Database) -> bool:
                    try:
                        row = db.one("SELECT 1 AS ok")
                        return row["ok"] == 1
                    except (KeyError, psycopg.Error) as exc:
                        return False
            """,
            path="app/auth/health.py",
            options={"tier": 2},  # `SELECT 1` reads: tier 2 wherever the file lives
            files={
                "app/db/service.py": """
                    import psycopg

                    class Database:
                        def one(self, sql: str) -> dict[str, int]:
                            with psycopg.connect("") as conn:
                                return conn.execute(sql).fetchone()
                """,
            },
        ),
        Keeps(
            """
            import json

            def load(raw):
                try:
                    return json.loads(raw)
                except Exception:
                    return {}
            """,
            path="app/auth/tokens.py",  # tier 2 by what it does: not in the default tier 1
        ),
        Keeps(
            """
            def close(conn):
                try:
                    conn.close()
                except Exception:  # consolidate: ignore[EXC001] shutdown must not fail
                    pass
            """,
            path="app/db/pool.py",
        ),
        Refuses(
            """
            def start(job):
                try:
                    job.start()
                except Exception:
                    pass
            """,
            reason="unknown: the tool cannot tell what the try body raises: job.start()",
            path="app/auth/jobs.py",
            options={"tier": 0},
        ),
        Refuses(
            """
            def close(conn):
                try:
                    conn.close()
                except Exception:
                    pass
            """,
            reason="an isolation boundary (a cleanup (`conn.close`) that must not mask",
            path="app/auth/pool.py",
            options={"tier": 0},
        ),
        Refuses(
            """
            import logging
            logger = logging.getLogger(__name__)

            async def invoke(handler, event):
                try:
                    await handler(event)
                except Exception:
                    logger.exception("handler failed")
            """,
            reason="isolate-handlers",
            path="app/auth/events.py",
            options={"tier": 0},
        ),
    ]

    def run(self, project: CodemodProject) -> Iterator[Outcome]:
        tier = self.options["tier"]
        if tier not in (0, 1, 2, 3):
            yield Failed("<options>", f"tier must be 0, 1, 2 or 3, not {tier!r}")
            return
        outcomes = list(self._round(project, tier))
        if self.options["reraise"]:
            outcomes = self._to_fixpoint(project, tier, outcomes)
        yield from outcomes

    def _to_fixpoint(
        self, project: CodemodProject, tier: int, outcomes: list[Outcome]
    ) -> list[Outcome]:
        """A handler that now re-raises hands its errors to the handlers around it (in the same
        function or in its callers), which may then be narrowed too: repeat on the result until
        nothing more changes (at most `_ROUNDS` rounds), so a second run changes nothing."""
        changes = {o.path: o for o in outcomes if isinstance(o, Changed)}
        for _ in range(_ROUNDS - 1):
            if not changes:
                break
            files = dict(project.files)
            files.update({path: change.after for path, change in changes.items()})
            again = list(self._round(CodemodProject(project.root, project.config, files), tier))
            more = {o.path: o for o in again if isinstance(o, Changed)}
            if not more:
                break
            for path, change in more.items():
                previous = changes.get(path)
                notes = (previous.warnings if previous else ()) + change.warnings
                changes[path] = Changed(path, project.files[path], change.after, notes)
            outcomes = [o for o in again if not isinstance(o, (Changed, Unchanged))]
            outcomes += [changes[p] for p in sorted(changes)]
            outcomes += [Unchanged(p) for p in sorted(project.files) if p not in changes]
        return outcomes

    def _round(self, project: CodemodProject, tier: int) -> Iterator[Outcome]:
        result = project.audit(EXC_RULES)
        grouped = findings_by_path(
            f for f in result.findings if f.rule in EXC_RULES and (tier == 0 or f.tier == tier)
        )
        modules = project_modules(project.files)
        packages = first_party(project.files)
        for path in sorted(project.files):
            project.step(f"rewriting files (tier {tier or 'all'})", 1, len(project.files))
            findings = grouped.get(path)
            if not findings:
                yield Unchanged(path)
                continue
            yield from self._file(path, project.files[path], findings, modules, packages)

    def _file(
        self,
        path: str,
        source: str,
        findings: list[Finding],
        modules: set[str],
        packages: set[str],
    ) -> Iterator[Outcome]:
        # First what the evidence alone decides, so files with nothing to narrow are not parsed.
        actionable: list[Finding] = []
        for finding in sorted(findings, key=Finding.sort_key):
            line = finding.location.line
            evidence = finding.evidence
            types = evidence.get("narrow_to")
            if evidence.get("dispatch"):
                yield Refused(
                    path,
                    "an event-bus dispatch: catching everything is right there;"
                    " run isolate-handlers to make it explicit",
                    line,
                    "event-bus dispatch",
                )
            elif evidence.get("isolation_boundary"):
                yield Refused(
                    path,
                    f"an isolation boundary ({evidence['isolation_boundary']}): catching"
                    " everything is its purpose; make it explicit with isolate-handlers"
                    " (safe_handler) instead of narrowing it",
                    line,
                    "isolation boundary",
                )
            elif is_test_path(path) and not self.options["include-tests"]:
                yield Refused(
                    path,
                    "test code: a broad handler in a test is usually on purpose"
                    " (-O include-tests=true narrows it too)",
                    line,
                    "test code",
                )
            elif not types:
                reason = evidence.get("narrow_reason") or "no exception mapping applies"
                yield Refused(path, str(reason), line)
            elif len(types) > self.options["max-types"]:
                yield Refused(
                    path,
                    f"the try body can raise {len(types)} types ({', '.join(types)}):"
                    " too many to name here; split the try or narrow it by hand",
                    line,
                    "too many exception types",
                )
            else:
                actionable.append(finding)
        if not actionable:
            return
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError) as exc:
            yield Failed(path, f"cannot parse: {exc}")
            return
        names = ModuleNames.read(tree, path)
        handlers = {h.lineno: h for h in handlers_in_order(tree)}
        tries = {
            id(h): node
            for node in ast.walk(tree)
            if isinstance(node, (ast.Try, ast.TryStar))
            for h in node.handlers
        }
        plans: list[tuple[ast.ExceptHandler, _Plan]] = []
        for finding in actionable:
            line = finding.location.line
            evidence = finding.evidence
            types = evidence["narrow_to"]
            handler = handlers.get(line)
            if handler is None:
                yield Refused(path, "could not find the handler in the source", line)
                continue
            if evidence.get("behaviour") in ("reraise", "wrap_raise") and not _logs_then_raises(
                handler
            ):
                yield Refused(
                    path,
                    "the handler does work before re-raising (cleanup?): it must run for every"
                    " error, so narrowing it would be wrong; use `finally` or leave it",
                    line,
                    "cleanup before re-raise",
                )
                continue
            try:
                spellings = [spell(t, names, modules) for t in types]
            except Unspellable as exc:
                yield Refused(path, str(exc), line)
                continue
            dead = unreachable_after(handler, tries.get(id(handler)), [sp.text for sp in spellings])
            if dead:
                yield Refused(path, dead, line, "would make a branch unreachable")
                continue
            reraise = self.options["reraise"] and evidence.get("behaviour") in _SWALLOWING
            plan = _Plan(line, list(types), bool(reraise), spellings)
            unresolved = evidence.get("unresolved_calls") or []
            if evidence.get("narrow_source") == "module":
                plan.note = (
                    f"line {line}: narrowed to {', '.join(types)} by the module rule for this"
                    " file (the try body's calls tell nothing); check it"
                )
            elif unresolved:
                shown = ", ".join(u.split(" line ")[0] for u in unresolved[:3])
                plan.note = (
                    f"line {line}: narrowed to {', '.join(types)}; what {shown} raises now"
                    " propagates"
                )
            plans.append((handler, plan))
        text = _Text(source)
        done: list[_Plan] = []
        for handler, plan in plans:
            try:
                edits = _clause_edits(text, handler, [s.text for s in plan.spellings])
                if plan.reraise:
                    edits += _reraise_edits(text, handler)
            except _Skip as skip:
                yield Refused(path, str(skip), plan.line)
                continue
            text.edits.extend(edits)
            done.append(plan)
        if not done:
            return
        after = text.apply()
        for module, obj in dict.fromkeys(
            (s.module, s.obj) for plan in done for s in plan.spellings if s.module is not None
        ):
            after = add_import_text(after, module, obj, packages)
        notes = tuple(plan.note for plan in done if plan.note)
        yield Changed(path, source, after, notes)


class _Skip(Exception):
    """This handler cannot be edited safely (the reason says why)."""


#: Names that are the same class as a builtin exception.
_ALIASES = {
    "IOError": "OSError",
    "EnvironmentError": "OSError",
    "socket.error": "OSError",
    "select.error": "OSError",
    "os.error": "OSError",
}


def _covers(caught: str, tested: str) -> bool:
    """Whether an `except caught` clause catches every `tested` (same spelling, an alias, or a
    builtin subclass). Unknown classes are covered only by their own spelling."""
    caught, tested = _ALIASES.get(caught, caught), _ALIASES.get(tested, tested)
    if caught == tested:
        return True
    outer = getattr(builtins, caught, None)
    inner = getattr(builtins, tested, None)
    return (
        isinstance(outer, type)
        and isinstance(inner, type)
        and issubclass(outer, BaseException)
        and issubclass(inner, outer)
    )


def _clause_types(node: ast.AST | None) -> list[str]:
    if node is None:
        return ["BaseException"]
    elements = node.elts if isinstance(node, ast.Tuple) else [node]
    return [ast.unparse(e) for e in elements]


def unreachable_after(
    handler: ast.ExceptHandler, try_node: ast.Try | ast.TryStar | None, new: list[str]
) -> str | None:
    """Why narrowing `handler` to the `new` classes would leave existing code that can no
    longer run, or None: a later `except X` of the same try whose every class the narrowed
    clause would now take first while the broad one did not (nothing under `Exception` is
    such, but `except* ...` groups and aliases are checked all the same), or a branch of the
    handler itself that tests the caught error for a class the narrowed clause does not catch
    (`if isinstance(e, zlib.error):`, `type(e) is X`): that branch would be dead."""
    kept = [t for t in _clause_types(handler.type) if not _is_broad_text(t)]
    catching = [*kept, *new]
    if try_node is not None:
        later = try_node.handlers[try_node.handlers.index(handler) + 1 :]
        for other in later:
            types = _clause_types(other.type)
            if (
                other.type is not None
                and all(any(_covers(c, t) for c in catching) for t in types)
                and not all(_under_exception(t) for t in types)
            ):
                return (
                    f"the narrowed clause ({', '.join(catching)}) would catch what the later"
                    f" `except {ast.unparse(other.type)}` at line {other.lineno} handles, so"
                    " that handler could never run"
                )
    if handler.name is None:
        return None
    bound = handler.name
    for node in _handler_nodes(handler.body):
        tested: list[str] = []
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "isinstance"
            and len(node.args) == 2
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id == bound
        ):
            tested = _clause_types(node.args[1])
        elif (
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Call)
            and isinstance(node.left.func, ast.Name)
            and node.left.func.id == "type"
            and len(node.left.args) == 1
            and isinstance(node.left.args[0], ast.Name)
            and node.left.args[0].id == bound
            and len(node.comparators) == 1
            and isinstance(node.ops[0], (ast.Is, ast.Eq))
        ):
            tested = [ast.unparse(node.comparators[0])]
        for name in tested:
            if not any(_covers(c, name) for c in catching):
                return (
                    f"the handler tests whether `{bound}` is a `{name}` (line {node.lineno}),"
                    f" which the narrowed clause ({', '.join(catching)}) would not catch: that"
                    " branch could never run. Map what raises it (exceptions.toml `calls`) or"
                    " narrow this handler by hand"
                )
    return None


def _is_broad_text(name: str) -> bool:
    return name in _BROAD


def _under_exception(name: str) -> bool:
    """Whether a class is known to be under Exception (unknown ones are taken to be)."""
    value = getattr(builtins, _ALIASES.get(name, name), None)
    if isinstance(value, type) and issubclass(value, BaseException):
        return issubclass(value, Exception)
    return name not in ("asyncio.CancelledError", "CancelledError", "trio.Cancelled")


def _handler_nodes(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Every node of a handler body, not those of functions or classes defined in it."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


class _Text:
    """The source, with edits at `ast` positions (line, UTF-8 byte column) applied at once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = source.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        self.edits: list[tuple[int, int, str]] = []

    def offset(self, line: int, column: int) -> int:
        raw = self.lines[line - 1].encode("utf-8")
        return self.starts[line - 1] + len(raw[:column].decode("utf-8", errors="replace"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (
            self.offset(node.lineno, node.col_offset),
            self.offset(node.end_lineno or node.lineno, node.end_col_offset or 0),
        )

    def segment(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.source[start:end]

    def indentation(self, line: int) -> str:
        text = self.lines[line - 1]
        return text[: len(text) - len(text.lstrip())]

    def apply(self) -> str:
        out = self.source
        for start, end, replacement in sorted(self.edits, key=lambda e: (e[0], e[1]), reverse=True):
            out = out[:start] + replacement + out[end:]
        return out


def _is_broad(node: ast.AST) -> bool:
    if isinstance(node, ast.Name):
        return node.id in _BROAD
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}" in _BROAD
    return False


def _clause_edits(
    text: _Text, handler: ast.ExceptHandler, new: list[str]
) -> list[tuple[int, int, str]]:
    """Replace the broad classes of an except clause (the rest of the clause kept as written)."""
    kind = handler.type
    if kind is None:  # `except:` -> `except X:`
        at = text.offset(handler.lineno, handler.col_offset) + len("except")
        return [(at, at, " " + _render(new))]
    if isinstance(kind, ast.Tuple):
        kept = [text.segment(e) for e in kind.elts if not _is_broad(e)]
        if len(kept) == len(kind.elts):
            raise _Skip("the except clause names no broad class")
        if "#" in text.segment(kind):
            raise _Skip("a comment inside the except tuple: narrow it by hand")
        merged = [*kept, *(t for t in new if t not in kept)]
        start, end = text.span(kind)
        return [(start, end, _render(merged))]
    if not _is_broad(kind):
        raise _Skip("the except clause names no broad class")
    start, end = text.span(kind)
    return [(start, end, _render(new))]


def _render(types: list[str]) -> str:
    return types[0] if len(types) == 1 else f"({', '.join(types)})"


def _logs_then_raises(handler: ast.ExceptHandler) -> bool:
    """The handler only logs (or prints, or warns), then raises."""
    *before, last = handler.body
    if not isinstance(last, ast.Raise):
        return False
    for stmt in before:
        if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
            return False
        func = stmt.value.func
        if isinstance(func, ast.Attribute):
            if not (is_logger_receiver(func.value) or func.attr == "warn"):
                return False
        elif not (isinstance(func, ast.Name) and func.id in ("print", "warn")):
            return False
    return True


def _is_noop(stmt: ast.stmt) -> bool:
    if isinstance(stmt, (ast.Pass, ast.Continue)):
        return True
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)


def _reraise_edits(text: _Text, handler: ast.ExceptHandler) -> list[tuple[int, int, str]]:
    """Make a swallowing handler re-raise: its final `pass` / `continue` / `return <default>`
    becomes `raise` (the rest of that line, comments included, kept), or a `raise` follows
    the logging."""
    body = handler.body
    last = body[-1]
    if isinstance(last, (ast.Pass, ast.Continue, ast.Break, ast.Return)) or all(
        _is_noop(s) for s in body
    ):
        start, end = text.span(last)
        return [(start, end, "raise")]
    end_line = last.end_lineno or last.lineno
    if last.lineno == handler.lineno or end_line == handler.lineno:  # `except E: log(x)`
        _, end = text.span(last)
        return [(end, end, "; raise")]
    indent = text.indentation(last.lineno)
    at = text.starts[end_line] if end_line < len(text.lines) else len(text.source)
    prefix = "" if text.source[:at].endswith(("\n", "\r")) else "\n"
    return [(at, at, f"{prefix}{indent}raise\n")]
