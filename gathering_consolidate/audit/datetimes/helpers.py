"""Shared by the DTZ checks: resolve `datetime` calls the way Python binds the names."""

from __future__ import annotations

import ast

from ...model import Applicability, Fix
from ..base import FileContext

AWARE_FIX = Fix("Use an aware datetime (tz=timezone.utc)", Applicability.UNSAFE, "aware-datetimes")


def datetime_calls(ctx: FileContext) -> list[tuple[ast.Call, str]]:
    """Calls of `datetime.datetime.<method>` in the file, however `datetime` was imported
    (`import datetime`, `import datetime as dt`, `from datetime import datetime as DT`), minus
    calls whose result is made aware at once (`.astimezone()`, `.replace(tzinfo=...)`)."""

    def compute() -> list[tuple[ast.Call, str]]:
        made_aware: set[int] = set()
        found: list[tuple[ast.Call, str]] = []
        for call in ctx.nodes(ast.Call):
            func = call.func
            if not isinstance(func, ast.Attribute):
                continue
            if isinstance(func.value, ast.Call) and (
                func.attr == "astimezone"
                or (
                    func.attr == "replace"
                    and any(k.arg == "tzinfo" and not _is_none(k.value) for k in call.keywords)
                )
            ):
                made_aware.add(id(func.value))
            name = ctx.qualified_name(func)
            if name and name.startswith("datetime.datetime."):
                found.append((call, name.rsplit(".", 1)[1]))
        return [(c, m) for c, m in found if id(c) not in made_aware]

    return ctx.memo("dtz.calls", compute)


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def tz_argument(call: ast.Call, position: int) -> ast.AST | None:
    """The `tz` argument of `now(tz)` (position 0) or `fromtimestamp(ts, tz)` (position 1)."""
    for keyword in call.keywords:
        if keyword.arg == "tz":
            return keyword.value
        if keyword.arg is None:  # **kwargs: cannot tell, assume it passes tz
            return keyword.value
    if len(call.args) > position:
        return call.args[position]
    if any(isinstance(a, ast.Starred) for a in call.args):
        return call.args[-1]
    return None


def is_naive(call: ast.Call, position: int) -> bool:
    tz = tz_argument(call, position)
    return tz is None or _is_none(tz)
