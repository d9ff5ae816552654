from __future__ import annotations

import ast
from collections.abc import Iterator

from ...model import Finding, Severity
from ..astutil import FUNCTION_DEFS, is_test_path, own_nodes
from ..base import FileContext, Invalid, Valid
from .helpers import StubCheck, in_test_double, is_abstract, markers_between


class StubbedBranch(StubCheck):
    """A branch of a function is left as `pass` under a TODO that says its work is missing.

    ## Why is this bad?
    `delete_document()` deletes the database row and, "when a storage plugin is enabled", the
    external file, except that branch is `# TODO: implement deleting the external document` and
    `pass`. The function returns normally, the caller reports the deletion, and the file stays
    where it was. The `else` branch usually logs the case it does handle, so the silent one is
    the one that claims to work.

    Reported at the `def` line when an `if`/`elif`/`else` block consists only of `pass` or `...`
    and its own comments (between its header and its last line) carry a marker: a strong one
    ("not implemented", "placeholder", "stub", "simulated", ...) or a `TODO`/`FIXME`/`XXX`/`HACK`
    that says the work is missing ("implement", "actually", "call the", "for now", ...).

    Not reported: an empty branch without such a comment (`else: pass` that means "nothing to
    do"), a TODO about something else (`# TODO: maybe log this`), a whole function body (STB003
    covers routes; an empty method is an interface), abstract methods, test code and test doubles.
    Evidence: `marker`, `branch` (its line), `route`.
    """

    id, name = "STB005", "stubbed-branch"
    severity = Severity.MEDIUM
    VALID = [
        Valid("""
            def close(conn):
                if conn is None:
                    # nothing to close
                    pass
                else:
                    conn.close()
        """),
        Valid("""
            def sync(items, client):
                for item in items:
                    if item.skip:
                        # TODO: maybe log the skipped items
                        pass
                    else:
                        client.push(item)
        """),
    ]
    INVALID = [
        Invalid(
            """
            import logging
            log = logging.getLogger(__name__)

            def delete_document(document, db_session):
                \"\"\"Deletes an existing document.\"\"\"
                plugin = get_active_plugin(db_session, "storage")
                if plugin:
                    # TODO: implement deleting the external document
                    # plugin.instance.delete(document.resource_id)
                    pass
                else:
                    log.warning("Document not deleted. No storage plugin enabled.")
                delete(db_session, document.id)
            """,
            line=4,
            evidence={
                "marker": (
                    "TODO: implement deleting the external document"
                    " plugin.instance.delete(document.resource_id)"
                ),
                "branch": 8,
            },
        ),
    ]

    @classmethod
    def candidates(cls, ctx: FileContext) -> Iterator[Finding]:
        if is_test_path(ctx.path):
            return
        for func in ctx.nodes(*FUNCTION_DEFS):
            if in_test_double(ctx, func) or is_abstract(ctx, func):
                continue
            for first, last in _empty_branches(ctx, func):
                decisive = [
                    m for m in markers_between(ctx, first, last) if m.strong or m.missing_work
                ]
                if decisive:
                    yield ctx.finding(
                        cls,
                        func,
                        f"`{func.name}` leaves a branch as `pass` that says its work is missing"
                        f" ({decisive[0].text!r})",
                        evidence={"marker": decisive[0].text, "branch": first},
                        snippet=ctx.lines[func.lineno - 1],
                    )
                    break


def _empty(block: list[ast.stmt]) -> bool:
    return bool(block) and all(
        isinstance(s, ast.Pass)
        or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and s.value.value is ...)
        for s in block
    )


def _empty_branches(ctx: FileContext, func: ast.AST) -> Iterator[tuple[int, int]]:
    """`(first, last)` lines of every empty `if`/`elif`/`else` block in `func`'s own code."""
    for node in own_nodes(func, ctx):
        if not isinstance(node, ast.If):
            continue
        if _empty(node.body):
            yield (node.test.end_lineno or node.lineno) + 1, node.body[-1].end_lineno or 0
        if _empty(node.orelse):
            yield (node.body[-1].end_lineno or node.lineno) + 1, node.orelse[-1].end_lineno or 0
