"""Codemod `aware-datetimes`: make naive `datetime` constructors aware (fixes DTZ001-DTZ003)."""

from __future__ import annotations

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
from .base import Codemod, CodemodProject, Keeps, Refuse, Rewrite

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
        Keeps("""
            from datetime import datetime, timezone

            stamp = datetime.utcnow()  # consolidate: ignore[DTZ001] compared with naive rows

            a = datetime.now(timezone.utc)
            b = datetime.utcnow().replace(tzinfo=timezone.utc)
            c = clock.utcnow()
        """),
    ]

    def transform(self, source: str, path: str, project: CodemodProject) -> str:
        # Act on what the audit reports, so suppressed and look-alike calls stay as they are.
        lines = {
            f.location.line for f in project.audit(self.fixes).findings if f.location.path == path
        }
        if not lines:
            return source
        context = CodemodContext(filename=path, full_module_name=None)
        result = transform_module(_AwareCommand(context, lines), source)
        if isinstance(result, TransformFailure):
            raise Refuse(f"cannot transform: {result.error}")
        if isinstance(result, TransformSkip):
            return source
        return result.code


class _AwareCommand(VisitorBasedCodemodCommand):
    METADATA_DEPENDENCIES = (QualifiedNameProvider, PositionProvider)

    def __init__(self, context: CodemodContext, lines: set[int]) -> None:
        super().__init__(context)
        self._lines = lines
        self._made_aware: set[cst.Call] = set()
        self._timezone_name: str | None = None
        self._changed = False

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
        func = node.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Call):
            aware = func.attr.value == "astimezone" or (
                func.attr.value == "replace"
                and any(a.keyword and a.keyword.value == "tzinfo" for a in node.args)
            )
            if aware:
                self._made_aware.add(func.value)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
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
