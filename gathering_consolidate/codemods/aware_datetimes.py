"""Codemod `aware-datetimes`: make naive `datetime` constructors aware (fixes DTZ001-DTZ003)."""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst
from libcst.codemod import (
    CodemodContext,
    SkipFile,
    TransformFailure,
    TransformSkip,
    VisitorBasedCodemodCommand,
    transform_module,
)
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import PositionProvider, QualifiedNameProvider

from ..model import Applicability
from .base import (
    Changed,
    Codemod,
    CodemodProject,
    Keeps,
    Outcome,
    Refuse,
    Refused,
    Refuses,
    Rewrite,
    Unchanged,
)

_METHODS = {"utcnow", "utcfromtimestamp", "now", "fromtimestamp", "today"}
_NO_SPACE = cst.AssignEqual(
    whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
)


class AwareDatetimes(Codemod):
    """Rewrite naive datetime constructors to aware UTC ones.

    `datetime.utcnow()` -> `datetime.now(timezone.utc)`; `datetime.utcfromtimestamp(ts)` ->
    `datetime.fromtimestamp(ts, tz=timezone.utc)`; `datetime.now()` / `datetime.today()` ->
    `datetime.now(timezone.utc)`; `datetime.fromtimestamp(ts)` gets `tz=timezone.utc`. Names are
    resolved through imports; `timezone` is imported from `datetime` when needed (as
    `dt_timezone` if the file already binds `timezone` to something else); with a module import
    (`import datetime as dt`) it uses `dt.timezone.utc`.

    The function passed uncalled (`field(default_factory=datetime.utcnow)`, pydantic's
    `Field(default_factory=...)`, SQLAlchemy's `default=`/`onupdate=`) becomes
    `lambda: datetime.now(timezone.utc)`, except for a database column without time zone
    (`Column(DateTime, ...)` without `timezone=True`, a field of an SQLModel `table=True` class):
    an aware value would be stored as the session's local time, so that is refused.

    ## When it refuses
    Before making a value aware it follows it through its function (names it is assigned to,
    `+`/`-` a timedelta, returns of functions of the same module) to where it meets other
    datetimes (comparisons, subtraction, `min`/`max`/`sorted`). When it meets a value that stays
    naive (parsed by `strptime` without `%z` or `fromisoformat`, `datetime(...)` without
    tzinfo, `fromtimestamp`/`now` without tz, a naive call left as is), the calls it comes from are
    refused, naming the other side: converting them would raise TypeError there at run time.
    Where the other side is something it cannot follow (an attribute, a parameter), it converts
    and says so in a note.

    Unsafe: aware values compare and subtract differently from naive ones, so code that mixes the
    new values with naive ones (say, from a `timestamp without time zone` column) must change too.
    Calls already made aware (`.replace(tzinfo=...)`, `.astimezone()`) are left alone.
    """

    id = "aware-datetimes"
    description = (
        "Make naive datetime.utcnow()/now()/utcfromtimestamp() calls timezone-aware (UTC)."
    )
    applicability = Applicability.UNSAFE
    fixes = ("DTZ001", "DTZ002", "DTZ003")
    CASES = [
        Rewrite(
            before="""
                from datetime import datetime

                created = datetime.utcnow()  # when the row was made
            """,
            after="""
                from datetime import timezone, datetime

                created = datetime.now(timezone.utc)  # when the row was made
            """,
        ),
        Rewrite(
            before="""
                import datetime as dt

                def expiry(payload):
                    return dt.datetime.utcfromtimestamp(payload["exp"])
            """,
            after="""
                import datetime as dt

                def expiry(payload):
                    return dt.datetime.fromtimestamp(payload["exp"], tz=dt.timezone.utc)
            """,
        ),
        Rewrite(
            before="""
                from datetime import datetime
                from django.utils import timezone

                started = datetime.now()
                seen = datetime.fromtimestamp(ts, tz=None)
            """,
            after="""
                from datetime import timezone as dt_timezone, datetime
                from django.utils import timezone

                started = datetime.now(dt_timezone.utc)
                seen = datetime.fromtimestamp(ts, tz=dt_timezone.utc)
            """,
        ),
        # The function passed uncalled (issue 10): a factory of aware values instead.
        Rewrite(
            before="""
                from dataclasses import dataclass, field
                from datetime import datetime

                @dataclass
                class Job:
                    created: datetime = field(default_factory=datetime.utcnow)  # set once
            """,
            after="""
                from dataclasses import dataclass, field
                from datetime import timezone, datetime

                @dataclass
                class Job:
                    created: datetime = field(default_factory=lambda: datetime.now(timezone.utc))  # set once
            """,
        ),
        # An aware cutoff compared with timestamps parsed from log lines (naive): the function
        # is refused, not turned into a TypeError at run time.
        Refuses(
            """
            from datetime import datetime, timedelta

            def recent_errors(lines, hours=1):
                cutoff = datetime.utcnow() - timedelta(hours=hours)
                for line in lines:
                    stamp = datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S")
                    if stamp >= cutoff:
                        yield line
            """,
            reason="meets `stamp` at line 7 in recent_errors, which stays naive",
        ),
        # A column without time zone would store an aware value as the session's local time.
        Refuses(
            """
            from datetime import datetime
            from sqlalchemy import Column, DateTime

            class Row(Base):
                created_at = Column(DateTime, default=datetime.utcnow)
            """,
            reason="fills a database column without time zone",
        ),
        Keeps("""
            from datetime import datetime, timezone

            stamp = datetime.utcnow()  # consolidate: ignore[DTZ001] compared with naive rows

            a = datetime.now(timezone.utc)
            b = datetime.utcnow().replace(tzinfo=timezone.utc)
            c = clock.utcnow()
        """),
    ]

    def run(self, project: CodemodProject) -> Iterator[Outcome]:
        # Act on what the audit reports, so suppressed and look-alike calls stay as they are.
        lines: dict[str, set[int]] = {}
        for finding in project.audit(self.fixes).findings:
            lines.setdefault(finding.location.path, set()).add(finding.location.line)
        # The files to rewrite (a naive call reported, or an uncalled reference) go to workers:
        # libcst's metadata takes up to a second on a large file.
        work = [
            path
            for path, source in sorted(project.files.items())
            if _needs_rewrite(source, lines.get(path))
        ]

        def attempt(path: str) -> tuple[str, list[Refused], list[str]] | Refused:
            try:
                return self.rewrite(
                    project.files[path], path, lines.get(path, set()), project.python_version
                )
            except Refuse as refusal:
                return Refused(path, refusal.reason, refusal.line, refusal.category)

        done = dict(zip(work, project.map_files("rewriting files", attempt, work), strict=True))
        for path, source in sorted(project.files.items()):
            answer = done.get(path, (source, [], []))
            if isinstance(answer, Refused):
                yield answer
                continue
            after, refusals, notes = answer
            yield from refusals
            if after == source:
                if not refusals:
                    yield Unchanged(path)
            else:
                yield Changed(path, source, after, tuple(notes))

    def rewrite(
        self,
        source: str,
        path: str,
        lines: set[int],
        python: tuple[int, int] | None = None,
    ) -> tuple[str, list[Refused], list[str]]:
        """The file with its naive calls (at `lines`) and uncalled references
        (`default_factory=datetime.utcnow`) made aware, except where a new aware value would
        meet one that stays naive (those are refused, with the other side named)."""
        if not _needs_rewrite(source, lines):
            return source, [], []
        refusals: list[Refused] = []
        from .. import parsing

        try:  # newer syntax than the running Python is read as the target's Python
            tree: ast.Module | None = parsing.parse(source, path, target=python).tree
        except parsing.ParseError as exc:
            raise Refuse(f"cannot parse: {exc.reason}") from None
        unknown: list[tuple[int, str]] = []
        refused_at: set[int] = set()
        if tree is not None and lines:
            seen: set[frozenset[int]] = set()
            flow = _Flow(tree, lines)
            conflicts = flow.run()
            unknown = flow.unknown
            refused_at = {c.line for c in conflicts}
            for conflict in conflicts:
                if conflict.lines in seen:
                    continue
                seen.add(conflict.lines)
                lines = lines - conflict.lines
                refusals.append(Refused(path, conflict.reason, min(conflict.lines), "naive mix"))
        context = CodemodContext(filename=path, full_module_name=None)
        command = _AwareCommand(context, lines, source.split("\n"))
        result = transform_module(command, source)
        refusals += [Refused(path, why, line, "naive column") for line, why in command.refused]
        notes = [why for line, why in unknown if line not in refused_at] if tree is not None else []
        if isinstance(result, TransformFailure):
            raise Refuse(f"cannot transform: {result.error}")
        if isinstance(result, TransformSkip):
            return source, refusals, []
        return result.code, refusals, [*notes, *command.notes]


def _needs_rewrite(source: str, lines: set[int] | None) -> bool:
    """Whether a file has a naive call to make aware (at `lines`) or an uncalled reference."""
    return bool(lines) or _REFERENCE.search(source) is not None


#: An uncalled reference to a naive constructor handed to a keyword argument.
_REFERENCE = re.compile(
    r"\b(?:default_factory|default|onupdate)\s*=\s*[\w.]*\b(?:utcnow|now|today)\b"
)
_FACTORY_KEYWORDS = ("default_factory", "default", "onupdate")
_SUPPRESSED = re.compile(r"consolidate:\s*(?:ignore|fixme)\[[^\]]*DTZ")


class _AwareCommand(VisitorBasedCodemodCommand):
    METADATA_DEPENDENCIES = (QualifiedNameProvider, PositionProvider)

    def __init__(self, context: CodemodContext, lines: set[int], text: list[str]) -> None:
        super().__init__(context)
        self._lines = lines
        self._text = text
        self._made_aware: set[cst.Call] = set()
        self._timezone_name: str | None = None
        self._changed = False
        self._calls: list[cst.Call] = []
        self._tables: list[bool] = []
        self.refused: list[tuple[int, str]] = []
        self.notes: list[str] = []

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        # An SQLModel table (`class T(SQLModel, table=True)`): its fields are DB columns.
        self._tables.append(
            any(
                k.keyword is not None
                and k.keyword.value == "table"
                and isinstance(k.value, cst.Name)
                and k.value.value == "True"
                for k in node.keywords
            )
        )

    def leave_ClassDef(
        self, original_node: cst.ClassDef, updated_node: cst.ClassDef
    ) -> cst.ClassDef:
        self._tables.pop()
        return updated_node

    def leave_Arg(self, original_node: cst.Arg, updated_node: cst.Arg) -> cst.Arg:
        """`default_factory=datetime.utcnow` (the function passed uncalled) ->
        `default_factory=lambda: datetime.now(timezone.utc)`; refused for a DB column without
        time zone (SQLAlchemy `Column(DateTime, default=...)`, an SQLModel table field)."""
        keyword = original_node.keyword
        if keyword is None or keyword.value not in _FACTORY_KEYWORDS:
            return updated_node
        value = original_node.value
        if not isinstance(value, cst.Attribute) or value.attr.value not in (
            "utcnow",
            "now",
            "today",
        ):
            return updated_node
        names = {q.name for q in self.get_metadata(QualifiedNameProvider, value, set())}
        if f"datetime.datetime.{value.attr.value}" not in names:
            return updated_node
        line = self.get_metadata(PositionProvider, original_node).start.line
        text = self._text[line - 1] if line <= len(self._text) else ""
        above = self._text[line - 2] if line >= 2 else ""
        if _SUPPRESSED.search(text) or (
            above.strip().startswith("#") and _SUPPRESSED.search(above)
        ):
            return updated_node
        call = self._calls[-1] if self._calls else None
        callee = cst.helpers.get_full_name_for_node(call.func) if call is not None else ""
        tail = (callee or "").rsplit(".", 1)[-1]
        spelled = cst.Module([]).code_for_node(value)
        if call is not None and tail in ("Column", "mapped_column", "Field"):
            column = tail != "Field" or (self._tables and self._tables[-1])
            typed = re.search(r"timezone\s*=\s*True", cst.Module([]).code_for_node(call))
            if column and not typed:
                self.refused.append(
                    (
                        line,
                        f"`{keyword.value}={spelled}` fills a database column without time zone"
                        " (no `DateTime(timezone=True)`): an aware value would be stored as the"
                        " session's local time. Make the column `timestamp with time zone`"
                        " (a schema migration) first, then run again",
                    )
                )
                return updated_node
        new_func = value.with_changes(attr=cst.Name("now"))
        body = cst.Call(func=new_func, args=[cst.Arg(self._tz_for(value.value))])
        self.notes.append(
            f"line {line}: `{keyword.value}={spelled}` now makes aware values; compare them only"
            " with aware ones"
        )
        return updated_node.with_changes(value=cst.Lambda(params=cst.Parameters(), body=body))

    def visit_Module(self, node: cst.Module) -> None:
        self._module = node

    def _timezone(self) -> cst.BaseExpression:
        if self._timezone_name is None:
            self._timezone_name = "timezone"
            for stmt in self._module.body:
                if isinstance(stmt, cst.SimpleStatementLine):
                    for small in stmt.body:
                        if isinstance(small, cst.ImportFrom) and not isinstance(
                            small.names, cst.ImportStar
                        ):
                            module = (
                                cst.helpers.get_full_name_for_node(small.module)
                                if small.module
                                else ""
                            )
                            for alias in small.names:
                                bound = alias.evaluated_alias or alias.evaluated_name
                                if bound == "timezone" and module != "datetime":
                                    self._timezone_name = "dt_timezone"
            if self._timezone_name == "timezone":
                AddImportsVisitor.add_needed_import(self.context, "datetime", "timezone")
            else:
                AddImportsVisitor.add_needed_import(
                    self.context, "datetime", "timezone", asname="dt_timezone"
                )
        return cst.Attribute(value=cst.Name(self._timezone_name), attr=cst.Name("utc"))

    def _tz_for(self, datetime_class: cst.BaseExpression) -> cst.BaseExpression:
        if isinstance(datetime_class, cst.Attribute):  # dt.datetime -> dt.timezone.utc
            module = datetime_class.value
            return cst.Attribute(
                value=cst.Attribute(value=module, attr=cst.Name("timezone")), attr=cst.Name("utc")
            )
        return self._timezone()

    def visit_Call(self, node: cst.Call) -> None:
        self._calls.append(node)
        func = node.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Call):
            aware = func.attr.value == "astimezone" or (
                func.attr.value == "replace"
                and any(a.keyword and a.keyword.value == "tzinfo" for a in node.args)
            )
            if aware:
                self._made_aware.add(func.value)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        self._calls.pop()
        func = original_node.func
        if original_node in self._made_aware or not isinstance(func, cst.Attribute):
            return updated_node
        if self.get_metadata(PositionProvider, original_node).start.line not in self._lines:
            return updated_node
        method = func.attr.value
        if method not in _METHODS:
            return updated_node
        names = {q.name for q in self.get_metadata(QualifiedNameProvider, func, set())}
        if f"datetime.datetime.{method}" not in names:
            return updated_node
        args = list(updated_node.args)
        if any(a.star for a in args):
            return updated_node
        new_func = updated_node.func
        assert isinstance(new_func, cst.Attribute)
        tz = self._tz_for(new_func.value)
        tz_kw = next((i for i, a in enumerate(args) if a.keyword and a.keyword.value == "tz"), None)
        if method in ("utcnow", "today"):
            if args:
                return updated_node
            return updated_node.with_changes(
                func=new_func.with_changes(attr=cst.Name("now")), args=[cst.Arg(tz)]
            )
        position = 0 if method == "now" else 1
        if method == "utcfromtimestamp":
            if len(args) != 1 or args[0].keyword:
                return updated_node
            args.append(cst.Arg(tz, keyword=cst.Name("tz"), equal=_NO_SPACE))
            return updated_node.with_changes(
                func=new_func.with_changes(attr=cst.Name("fromtimestamp")), args=args
            )
        if tz_kw is not None:
            if _is_none(args[tz_kw].value):
                args[tz_kw] = args[tz_kw].with_changes(value=tz)
                return updated_node.with_changes(args=args)
            return updated_node
        positional = [a for a in args if a.keyword is None]
        if len(positional) > position:
            if _is_none(positional[position].value):
                index = args.index(positional[position])
                args[index] = args[index].with_changes(value=tz)
                return updated_node.with_changes(args=args)
            return updated_node
        if method == "now":
            args.insert(0, cst.Arg(tz))
        else:
            args.append(cst.Arg(tz, keyword=cst.Name("tz"), equal=_NO_SPACE))
        return updated_node.with_changes(args=args)

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        self._module = tree
        new = tree.visit(self)
        if new.deep_equals(tree):
            raise SkipFile("no naive datetime calls")
        return new


def _is_none(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Name) and node.value == "None"


# -- where the new aware values flow ---------------------------------------------------------------
AWARE, NAIVE = "aware", "naive"


@dataclass(frozen=True)
class _Kind:
    """What a value is after the codemod: `aware` (with the converted call lines it comes from)
    or `naive` (with a description of where it comes from)."""

    kind: str
    what: str
    origins: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Conflict:
    """A converted call whose value would meet a value that stays naive."""

    lines: frozenset[int]
    line: int
    function: str
    reason: str


class _Names:
    """The names a module binds to the `datetime` class and the `datetime` module."""

    def __init__(self, tree: ast.Module) -> None:
        self.classes: set[str] = set()
        self.modules: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "datetime" and not node.level:
                for alias in node.names:
                    if alias.name == "datetime":
                        self.classes.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == "datetime":
                        self.modules.add(alias.asname or alias.name)

    def is_class(self, expr: ast.AST) -> bool:
        if isinstance(expr, ast.Name):
            return expr.id in self.classes
        return (
            isinstance(expr, ast.Attribute)
            and expr.attr == "datetime"
            and isinstance(expr.value, ast.Name)
            and expr.value.id in self.modules
        )

    def method(self, call: ast.Call) -> str | None:
        func = call.func
        if isinstance(func, ast.Attribute) and self.is_class(func.value):
            return func.attr
        return None


def _has_tz(call: ast.Call, position: int, keyword: str = "tz") -> bool:
    """Whether a call passes a time zone that is not None (by keyword or at `position`)."""
    for kw in call.keywords:
        if kw.arg == keyword:
            return not (isinstance(kw.value, ast.Constant) and kw.value.value is None)
        if kw.arg is None:
            return True  # **kwargs: it may
    if len(call.args) > position:
        arg = call.args[position]
        return not (isinstance(arg, ast.Constant) and arg.value is None)
    return any(isinstance(a, ast.Starred) for a in call.args)


_OFFSET = re.compile(r"(Z|[+-]\d\d:?\d\d)$")


class _Flow:
    """Follows the values the codemod makes aware through each function (names they are
    assigned to, `+`/`-` a timedelta, returns of functions of the same module) to the places
    where they meet other datetimes (comparisons, subtraction, min/max/sorted)."""

    def __init__(self, tree: ast.Module, converted: set[int]) -> None:
        self.tree = tree
        self.names = _Names(tree)
        self.converted = converted
        self.returns: dict[str, list[_Kind]] = {}
        self.conflicts: list[Conflict] = []
        self.unknown: list[tuple[int, str]] = []

    # -- classification --
    def kinds(self, expr: ast.AST | None, env: dict[str, list[_Kind]]) -> list[_Kind]:
        if expr is None:
            return []
        if isinstance(expr, ast.Name):
            return env.get(expr.id, [])
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Add, ast.Sub)):
            left, right = self.kinds(expr.left, env), self.kinds(expr.right, env)
            if isinstance(expr.op, ast.Sub):
                # datetime - timedelta is a datetime; datetime - datetime a timedelta; with an
                # operand it cannot see, only a visible timedelta says which.
                return left if left and not right and _timedelta_like(expr.right) else []
            return left or right
        if isinstance(expr, ast.IfExp):
            return self.kinds(expr.body, env) + self.kinds(expr.orelse, env)
        if isinstance(expr, ast.Call):
            return self.call_kinds(expr, env)
        return []

    def call_kinds(self, call: ast.Call, env: dict[str, list[_Kind]]) -> list[_Kind]:
        method = self.names.method(call)
        text = ast.unparse(call.func)
        if method is not None:
            if call.lineno in self.converted and method in _METHODS:
                shown = ast.unparse(call)
                shown = shown if len(shown) <= 60 else f"{text}(...)"
                return [_Kind(AWARE, f"`{shown}`", frozenset({call.lineno}))]
            if method in ("utcnow", "utcfromtimestamp"):
                return [_Kind(NAIVE, f"`{text}()` (not converted here)")]
            if method in ("now", "today"):
                return [] if _has_tz(call, 0) else [_Kind(NAIVE, f"`{text}()` without tz")]
            if method == "fromtimestamp":
                return [] if _has_tz(call, 1) else [_Kind(NAIVE, f"`{text}()` without tz")]
            if method == "strptime":
                fmt = call.args[1] if len(call.args) > 1 else None
                if isinstance(fmt, ast.Constant) and "%z" in str(fmt.value):
                    return []
                return [_Kind(NAIVE, f"`{text}(...)` (parsed text, no %z offset)")]
            if method == "fromisoformat":
                arg = call.args[0] if call.args else None
                if isinstance(arg, ast.Constant) and _OFFSET.search(str(arg.value)):
                    return []
                return [_Kind(NAIVE, f"`{text}(...)` (parsed text without an offset)")]
            if method == "combine":
                return [] if _has_tz(call, 2, "tzinfo") else [_Kind(NAIVE, f"`{text}()`")]
            if method in ("astimezone",):
                return []
            return []
        if self.names.is_class(call.func):
            if _has_tz(call, 7, "tzinfo"):
                return []
            return [_Kind(NAIVE, f"`{text}(...)` without tzinfo")]
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr == "replace":
            for kw in call.keywords:
                if kw.arg == "tzinfo":
                    if isinstance(kw.value, ast.Constant) and kw.value.value is None:
                        return [_Kind(NAIVE, "`.replace(tzinfo=None)`")]
                    return []
            return self.kinds(func.value, env)
        if isinstance(func, ast.Attribute) and func.attr == "astimezone":
            return []
        if isinstance(func, ast.Name) and func.id in self.returns:
            return [
                _Kind(k.kind, f"`{func.id}()`, which returns {k.what}", k.origins)
                for k in self.returns[func.id]
            ]
        return []

    # -- scopes --
    def scopes(self) -> list[tuple[str, list[ast.stmt]]]:
        found: list[tuple[str, list[ast.stmt]]] = [("<module>", self.tree.body)]

        def walk(body: list[ast.stmt], prefix: str) -> None:
            for stmt in body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found.append((prefix + stmt.name, stmt.body))
                    walk(stmt.body, f"{prefix}{stmt.name}.")
                elif isinstance(stmt, ast.ClassDef):
                    walk(stmt.body, f"{prefix}{stmt.name}.")
                else:
                    for field_name in ("body", "orelse", "finalbody", "handlers"):
                        inner = getattr(stmt, field_name, None)
                        if isinstance(inner, list):
                            walk(
                                [s for s in inner if isinstance(s, ast.stmt)]
                                + [
                                    s
                                    for h in inner
                                    if isinstance(h, ast.excepthandler)
                                    for s in h.body
                                ],
                                prefix,
                            )

        walk(self.tree.body, "")
        return found

    @staticmethod
    def nodes(body: list[ast.stmt]) -> list[ast.AST]:
        """The nodes of a scope, not those of the functions and classes nested in it."""
        out: list[ast.AST] = []
        stack: list[ast.AST] = list(reversed(body))
        while stack:
            node = stack.pop()
            out.append(node)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                continue
            stack.extend(reversed(list(ast.iter_child_nodes(node))))
        return out

    def environment(
        self, nodes: list[ast.AST], base: dict[str, list[_Kind]] | None = None
    ) -> dict[str, list[_Kind]]:
        env: dict[str, list[_Kind]] = {k: list(v) for k, v in (base or {}).items()}
        for _ in range(3):  # names from names: settle in a few rounds
            for node in nodes:
                targets: list[ast.AST] = []
                value: ast.AST | None = None
                if isinstance(node, ast.Assign):
                    targets, value = node.targets, node.value
                elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
                    targets, value = [node.target], node.value
                for target in targets:
                    if isinstance(target, ast.Name):
                        for kind in self.kinds(value, env):
                            if kind not in env.setdefault(target.id, []):
                                env[target.id].append(kind)
        return env

    def run(self) -> list[Conflict]:
        scopes = self.scopes()
        for _ in range(2):  # functions returning the values of functions
            for name, body in scopes:
                if name == "<module>" or "." in name:
                    continue
                nodes = self.nodes(body)
                env = self.environment(nodes)
                kinds: list[_Kind] = []
                for node in nodes:
                    if isinstance(node, ast.Return):
                        kinds += [k for k in self.kinds(node.value, env) if k not in kinds]
                if kinds:
                    self.returns[name] = kinds
        module_env: dict[str, list[_Kind]] = {}
        for name, body in scopes:
            nodes = self.nodes(body)
            env = self.environment(nodes, None if name == "<module>" else module_env)
            if name == "<module>":
                module_env = env
            for node in nodes:
                for left, right, line in self.meetings(node):
                    compared = not isinstance(node, ast.BinOp)
                    self.check(name, left, right, line, env, compared)
        return self.conflicts

    @staticmethod
    def meetings(node: ast.AST) -> Iterator[tuple[ast.AST, ast.AST, int]]:
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for op, (a, b) in zip(node.ops, itertools.pairwise(operands), strict=False):
                if not isinstance(op, (ast.Is, ast.IsNot, ast.In, ast.NotIn)):
                    yield a, b, node.lineno
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub):
            yield node.left, node.right, node.lineno
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("min", "max", "sorted")
        ):
            items: list[ast.AST] = list(node.args)
            if len(items) == 1 and isinstance(items[0], (ast.List, ast.Tuple, ast.Set)):
                items = list(items[0].elts)
            for i, a in enumerate(items):
                for b in items[i + 1 :]:
                    yield a, b, node.lineno

    def check(
        self,
        scope: str,
        left: ast.AST,
        right: ast.AST,
        line: int,
        env: dict[str, list[_Kind]],
        compared: bool,
    ) -> None:
        sides = (self.kinds(left, env), self.kinds(right, env))
        for mine, other, expr, other_expr in (
            (sides[0], sides[1], left, right),
            (sides[1], sides[0], right, left),
        ):
            aware = [k for k in mine if k.kind == AWARE]
            naive = [k for k in other if k.kind == NAIVE]
            if aware and not other and compared and _maybe_datetime(other_expr):
                self.unknown.append(
                    (
                        line,
                        f"line {line}: `{ast.unparse(expr)}` is now aware and meets"
                        f" `{ast.unparse(other_expr)}` in {scope}, which the codemod cannot"
                        " follow: it must be aware too",
                    )
                )
            if aware and naive:
                origins = frozenset().union(*(k.origins for k in aware))
                self.conflicts.append(
                    Conflict(
                        origins,
                        line,
                        scope,
                        f"`{ast.unparse(expr)}` would be aware (from {aware[0].what}) and meets"
                        f" `{ast.unparse(other_expr)}` at line {line} in {scope}, which stays"
                        f" naive ({naive[0].what}): comparing or subtracting them raises"
                        " TypeError. Make that side aware too (say `.replace(tzinfo=timezone.utc)`"
                        " if it is UTC), then run again",
                    )
                )
                return


def _maybe_datetime(expr: ast.AST) -> bool:
    """Whether an operand the flow cannot classify could hold a datetime (not a literal, not a
    `timedelta(...)`, not None)."""
    if isinstance(expr, (ast.Constant, ast.JoinedStr, ast.List, ast.Tuple, ast.Dict, ast.Set)):
        return False
    if isinstance(expr, ast.Call):
        name = ast.unparse(expr.func).rsplit(".", 1)[-1]
        return name not in ("timedelta", "len", "int", "float", "str")
    return True


def _timedelta_like(expr: ast.AST) -> bool:
    """`timedelta(...)`, `relativedelta(...)`, or a name that reads as a duration constant."""
    if isinstance(expr, ast.Call):
        return ast.unparse(expr.func).rsplit(".", 1)[-1] in ("timedelta", "relativedelta")
    name = expr.id if isinstance(expr, ast.Name) else getattr(expr, "attr", "")
    return bool(name) and (name.isupper() or "delta" in name.lower())
