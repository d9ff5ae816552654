"""Codemod `parameterise-sql`: bind interpolated SQL values as query parameters (fixes SQL001/2)."""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import MetadataWrapper, PositionProvider

from ..audit.base import Option
from ..model import Applicability
from .base import Codemod, CodemodProject, Keeps, Refuse, Refuses, Rewrite

_PLACEHOLDER = re.compile(r"%%|%\((?P<name>[^)]*)\)[sbt]|%[sbt]")
_STR_TYPES = {"str"}
_NUMERIC_TYPES = {"int", "float"}
_MARK = "\x00"  # stands for one new placeholder while counting
_PSYCOPG_SQL = "psycopg_sql"


class ParameteriseSql(Codemod):
    """Turn values formatted into SQL text into bound parameters of the same call.

    For each SQL001/SQL002 site with a value slot, where the SQL is written in the call itself
    (an f-string, or implicitly concatenated strings and f-strings):

    - a quoted literal holding interpolations (`'{since}'`, `'%{q}%'`) becomes one placeholder and
      its content one parameter: the expression itself when it is a parameter annotated `str`,
      `str(expr)` otherwise, an f-string (`f"%{q}%"`) when the literal has text around it. A psycopg
      `str` parameter is sent as an untyped literal, so PostgreSQL reads it exactly as it read the
      quoted text (`''` and, with parameters, `%%` are unescaped);
    - an unquoted interpolation (`id = {agent_id}`) becomes a placeholder only when it is a
      parameter annotated `int` or `float`.

    Placeholders follow the call's style: `%s` with a tuple or list of parameters (the new value
    is inserted at its position), `%(name)s` with a dict; a call without parameters gets a tuple,
    and every other `%` of its SQL is doubled, as psycopg then requires.

    It refuses, with the reason, when the SQL is built away from the call (in a variable), the
    parameters are not a literal tuple/list/dict, the sink does not take parameters (asyncpg's
    `$1` style, SQLAlchemy `text()`), a literal spans strings or is an `E'...'` string, or an
    unquoted value has no numeric annotation. Identifier slots are left alone (they need a review
    or `safe-update-builder`).

    With `-O compose-identifiers=true`, a site whose only unsafe slots are names (`FROM
    {table}`, `ORDER BY {col}`) is composed with psycopg instead:
    `psycopg_sql.SQL("... ORDER BY {} DESC").format(psycopg_sql.Identifier(col))`, string
    constants in it as `psycopg_sql.SQL(CONST)`. Off by default because it is not always
    equivalent: a quoted identifier keeps its case and cannot carry a schema (`"a.b"` is one
    name), and the sink must accept psycopg `Composable` objects (psycopg's own `execute` does;
    a wrapper that treats the SQL as a string does not). It refuses names glued to other text.

    Unsafe: a value that was not a string is now bound as its text (`str(x)`), as before, but a
    value the code relied on being spliced as SQL (deliberately) stops working; review the diff.
    """

    id = "parameterise-sql"
    description = "Bind values formatted into SQL text (f-strings, %, +) as query parameters."
    applicability = Applicability.UNSAFE
    fixes = ("SQL001", "SQL002")
    OPTIONS = {
        "compose-identifiers": Option(
            False,
            "Also rewrite sites whose only unsafe slots are names (`FROM {table}`, `ORDER BY"
            " {col}`) to psycopg `sql.SQL(...).format(sql.Identifier(...))` composition.",
        )
    }
    CASES = [
        Rewrite(
            before="""
                from fastapi import APIRouter
                router = APIRouter()
                COLUMNS = "id, name"

                @router.get("/agents/search")
                def search(q: str, db=None):
                    # match anywhere in the name or role
                    return db.execute(
                        f"SELECT {COLUMNS} FROM agents WHERE name ILIKE '%{q}%' OR role ILIKE '%{q}%' ORDER BY name"
                    )
            """,
            after="""
                from fastapi import APIRouter
                router = APIRouter()
                COLUMNS = "id, name"

                @router.get("/agents/search")
                def search(q: str, db=None):
                    # match anywhere in the name or role
                    return db.execute(
                        f"SELECT {COLUMNS} FROM agents WHERE name ILIKE %s OR role ILIKE %s ORDER BY name",
                        (f"%{q}%", f"%{q}%")
                    )
            """,
        ),
        Rewrite(
            before="""
                RUNS = "circle.pipeline_runs"

                def count_since(db, pipeline_id: int, since: str) -> int:
                    row = db.execute_one(
                        f"SELECT count(*) AS n FROM {RUNS} "
                        f"WHERE pipeline_id = %s AND created_at >= '{since}'",  # ISO timestamp
                        (pipeline_id,),
                    )
                    return row["n"]
            """,
            after="""
                RUNS = "circle.pipeline_runs"

                def count_since(db, pipeline_id: int, since: str) -> int:
                    row = db.execute_one(
                        f"SELECT count(*) AS n FROM {RUNS} "
                        "WHERE pipeline_id = %s AND created_at >= %s",  # ISO timestamp
                        (pipeline_id, since),
                    )
                    return row["n"]
            """,
        ),
        Rewrite(
            before="""
                def by_status(db, status, limit: int):
                    return db.execute(
                        f"SELECT * FROM runs WHERE status = '{status}' AND kind = %(kind)s LIMIT {limit}",
                        {"kind": "nightly"},
                    )
            """,
            after="""
                def by_status(db, status, limit: int):
                    return db.execute(
                        f"SELECT * FROM runs WHERE status = %(status)s AND kind = %(kind)s LIMIT {limit}",
                        {"kind": "nightly", "status": str(status)},
                    )
            """,
        ),
        Rewrite(
            before="""
                def by_id(db, run_id: int):
                    return db.execute_one(f"SELECT * FROM runs WHERE id = {run_id} AND note LIKE '%x'")
            """,
            after="""
                def by_id(db, run_id: int):
                    return db.execute_one("SELECT * FROM runs WHERE id = %s AND note LIKE '%%x'", (run_id,))
            """,
        ),
        Rewrite(
            before="""
                import psycopg

                RUNS = "circle.pipeline_runs"

                def runs(conn: psycopg.Connection, pipeline_id, order_by):
                    return conn.execute(
                        f"SELECT * FROM {RUNS} WHERE pipeline_id = %s ORDER BY {order_by} DESC",
                        (pipeline_id,),
                    )
            """,
            after="""
                import psycopg
                from psycopg import sql as psycopg_sql

                RUNS = "circle.pipeline_runs"

                def runs(conn: psycopg.Connection, pipeline_id, order_by):
                    return conn.execute(
                        psycopg_sql.SQL("SELECT * FROM {} WHERE pipeline_id = %s ORDER BY {} DESC").format(psycopg_sql.SQL(RUNS), psycopg_sql.Identifier(order_by)),
                        (pipeline_id,),
                    )
            """,
            options={"compose-identifiers": True},
        ),
        Keeps(
            """
            import psycopg

            def runs(conn: psycopg.Connection, order_by):
                return conn.execute(f"SELECT * FROM runs ORDER BY {order_by} DESC")
            """
        ),
        Keeps("""
            def by_name(db, name):
                return db.execute("SELECT * FROM agents WHERE name = %s", (name,))
        """),
        Keeps("""
            def by_name(db, name):
                sql = f"SELECT * FROM agents WHERE name = '{name}'"  # consolidate: ignore[SQL001] reviewed
                return db.execute(sql)
        """),
        Refuses(
            """
            def by_name(db, name):
                sql = f"SELECT * FROM agents WHERE name = '{name}'"
                return db.execute(sql)
            """,
            reason="built away from the call",
        ),
        Refuses(
            """
            def by_name(db, name, params):
                return db.execute(f"SELECT * FROM agents WHERE name = '{name}' AND x = %s", params)
            """,
            reason="not a literal tuple",
        ),
        Refuses(
            """
            def by_id(db, agent_id):
                return db.execute(f"SELECT * FROM agents WHERE id = {agent_id}")
            """,
            reason="unquoted value",
        ),
    ]

    def __init__(self, options=None) -> None:
        super().__init__(options)
        self._warnings: dict[str, list[str]] = {}

    def transform(self, source: str, path: str, project: CodemodProject) -> str:
        findings = [
            f
            for f in project.audit(self.fixes).findings
            if f.location.path == path and f.rule in self.fixes
        ]
        targets: dict[int, set[str]] = {}
        names: dict[int, set[str]] = {}
        for finding in findings:
            slots = [
                s
                for s in finding.evidence.get("slots", [])
                if s["verdict"] != "safe" and not s.get("element_of")
            ]
            values = {s["expr"] for s in slots if s["kind"] == "value"}
            if values:
                targets.setdefault(finding.location.line, set()).update(values)
            elif self.options["compose-identifiers"] and all(
                s["kind"] in ("identifier", "order_or_limit") for s in slots
            ):
                names.setdefault(finding.location.line, set()).update(s["expr"] for s in slots)
        if not targets and not names:
            return source
        if re.search(r"^\s*(?:import asyncpg|from asyncpg)", source, re.M):
            raise Refuse(
                "asyncpg uses numbered ($1) placeholders, which this codemod does not write"
            )
        module = cst.parse_module(source)
        if names and not any("psycopg" in text for text in project.files.values()):
            raise Refuse("the project does not use psycopg, so identifiers cannot be composed")
        rewriter = _Rewriter(targets, _string_constants(source), _signatures(project), names)
        new = MetadataWrapper(module).visit(rewriter)
        if rewriter.composed:
            context = CodemodContext(filename=path, full_module_name=None)
            AddImportsVisitor.add_needed_import(context, "psycopg", "sql", asname=_PSYCOPG_SQL)
            new = AddImportsVisitor(context).transform_module(new)
            rewriter.refusals += [
                (
                    line,
                    "composed with sql.Identifier: a mixed-case or schema-qualified name now"
                    " needs quoting as such, and the sink must accept psycopg Composable objects",
                )
                for line in rewriter.composed
            ]
        if rewriter.refusals and not rewriter.changed:
            line, reason = rewriter.refusals[0]
            raise Refuse(reason, line)
        self._warnings[path] = [
            f"line {line}: {'note' if line in rewriter.composed else 'not rewritten'}: {r}"
            for line, r in rewriter.refusals
        ]
        return new.code

    def warnings_for(self, path: str) -> list[str]:
        return self._warnings.get(path, [])


# -- helpers -----------------------------------------------------------------------------------
def _string_constants(source: str) -> dict[str, str]:
    """Module-level names bound once to a string literal (their text is known)."""
    tree = ast.parse(source)
    found: dict[str, list[object]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found.setdefault(target.id, []).append(node.value)
    out: dict[str, str] = {}
    for name, values in found.items():
        if len(values) == 1:
            value = values[0]
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                out[name] = value.value
    return out


def _signatures(project: CodemodProject) -> dict[str, bool]:
    """Method name -> whether one of its definitions in the project takes a parameters argument
    (a second positional parameter after self, not `*args`). Names the project does not define
    are library calls (psycopg's `execute(query, params)`)."""
    out: dict[str, bool] = {}
    for text in project.files.values():
        if "def " not in text:
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
                if args and args[0] in ("self", "cls"):
                    args = args[1:]
                takes = len(args) >= 2 and node.args.vararg is None
                out[node.name] = out.get(node.name, False) or takes
    return out


@dataclass
class _Piece:
    """One string literal of the SQL argument: a SimpleString or a FormattedString."""

    node: cst.SimpleString | cst.FormattedString


def _pieces(node: cst.BaseExpression) -> list[_Piece] | None:
    if isinstance(node, (cst.SimpleString, cst.FormattedString)):
        if isinstance(node, cst.SimpleString) and "b" in node.prefix.lower():
            return None
        if isinstance(node, cst.FormattedString) and "b" in node.start.lower():
            return None
        return [_Piece(node)]
    if isinstance(node, cst.ConcatenatedString):
        left = _pieces(node.left)
        right = _pieces(node.right)
        if left is None or right is None:
            return None
        return left + right
    return None


def _simple_text(node: cst.SimpleString) -> str:
    return str(node.evaluated_value)


def _raw_text(text: str) -> str:
    """The value of f-string text as written (escapes of quotes and braces undone)."""
    return text.replace("{{", "{").replace("}}", "}").replace("\\'", "'").replace('\\"', '"')


def _expr_key(node: cst.BaseExpression) -> str:
    code = cst.Module(body=[]).code_for_node(node)
    try:
        return ast.unparse(ast.parse(code.strip(), mode="eval"))
    except SyntaxError:
        return code


class _Rewriter(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(
        self,
        targets: dict[int, set[str]],
        constants: dict[str, str],
        signatures: dict[str, bool],
        names: dict[int, set[str]] | None = None,
    ) -> None:
        super().__init__()
        self.targets = targets
        self.names = names or {}
        self.composed: list[int] = []
        self.constants = constants
        self.signatures = signatures
        self.refusals: list[tuple[int, str]] = []
        self.changed = False
        self._annotations: list[dict[str, str]] = [{}]

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        annotations: dict[str, str] = {}
        params = node.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            if param.annotation is not None:
                annotations[param.name.value] = cst.Module(body=[]).code_for_node(
                    param.annotation.annotation
                )
        self._annotations.append(annotations)

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        self._annotations.pop()
        return updated_node

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        line = self.get_metadata(PositionProvider, original_node).start.line
        wanted = self.targets.get(line)
        if not wanted and line in self.names and updated_node.args:
            try:
                new = self._compose(updated_node, self.names[line])
            except Refuse as refusal:
                self.refusals.append((line, refusal.reason))
                return updated_node
            self.names.pop(line)
            self.composed.append(line)
            self.changed = True
            return new
        if not wanted or not updated_node.args:
            return updated_node
        try:
            new = self._rewrite(updated_node, wanted)
        except Refuse as refusal:
            self.refusals.append((line, refusal.reason))
            return updated_node
        self.targets.pop(line, None)
        self.changed = True
        return new

    # -- the rewrite -----------------------------------------------------------------------
    def _rewrite(self, call: cst.Call, wanted: set[str]) -> cst.Call:
        sql_arg = call.args[0]
        if sql_arg.keyword is not None or sql_arg.star:
            raise Refuse("the SQL is not the first positional argument")
        pieces = _pieces(sql_arg.value)
        if pieces is None:
            raise Refuse(
                "the SQL is built away from the call (in a variable or a helper); bind the value"
                " where the text is built"
            )
        method = call.func.attr.value if isinstance(call.func, cst.Attribute) else ""
        if isinstance(call.func, cst.Name):
            raise Refuse(f"`{call.func.value}()` is not known to take query parameters")
        if method in ("executemany", "executescript") or not self.signatures.get(method, True):
            raise Refuse(f"`{method}()` does not take a parameters argument")
        params_arg, params_index = self._params(call)
        had_params = params_arg is not None
        if params_arg is not None and not isinstance(
            params_arg.value, (cst.Tuple, cst.List, cst.Dict)
        ):
            raise Refuse(
                "the parameters are not a literal tuple, list or dict; add the value to them by hand"
            )
        # The SQL text as psycopg will see it, to find quotes and count placeholders.
        texts = self._texts(pieces)
        full = "".join(t for piece in texts for t, _ in piece)
        named_style = bool(re.search(r"%\([^)]*\)[sbt]", full.replace("%%", "")))
        if params_arg is not None and isinstance(params_arg.value, cst.Dict):
            named_style = True
        elif params_arg is not None:
            named_style = False
        existing_names = {
            m["name"] for m in _PLACEHOLDER.finditer(full) if m["name"]
        } | self._dict_keys(params_arg)
        new_values: list[tuple[str, cst.BaseExpression]] = []  # (name, value) in SQL order
        new_pieces: list[cst.BaseExpression] = []
        rewritten = False
        scanner = _QuoteScanner()
        for piece, piece_texts in zip(pieces, texts, strict=True):
            in_quote = scanner.in_quote
            scanner.feed("".join(t for t, _ in piece_texts))
            if not isinstance(piece.node, cst.FormattedString):
                new_pieces.append(piece.node)
                continue
            node, values = self._rewrite_fstring(
                piece.node, piece_texts, wanted, had_params, named_style, existing_names, in_quote
            )
            if values:
                rewritten = True
            new_values += values
            new_pieces.append(node)
        if not rewritten:
            raise Refuse("no interpolated value of this call can be bound")
        if not had_params:
            self._check_percent_free(new_pieces)
            new_pieces = [_double_percent(p) for p in new_pieces]
        positions = _positions(new_pieces)
        marks = iter(f"%({name})s" if named_style else "%s" for name, _ in new_values)
        new_pieces = [_finish_fstring(_fill_marks(p, marks)) for p in new_pieces]
        new_sql = _rebuild_concat(sql_arg.value, new_pieces)
        args = list(call.args)
        args[0] = sql_arg.with_changes(value=new_sql)
        if params_arg is None:
            return call.with_changes(args=_append_arg(call, args, _tuple(v for _, v in new_values)))
        assert params_index is not None
        value = params_arg.value
        if isinstance(value, cst.Dict):
            elements = list(value.elements)
            for name, expr in new_values:
                elements = _insert(
                    elements, len(elements), cst.DictElement(cst.SimpleString(f'"{name}"'), expr)
                )
        else:
            assert isinstance(value, (cst.Tuple, cst.List))
            elements = list(value.elements)
            for position, (_, expr) in zip(positions, new_values, strict=True):
                elements = _insert(elements, position, cst.Element(expr))
        args[params_index] = params_arg.with_changes(value=value.with_changes(elements=elements))
        return call.with_changes(args=args)

    def _compose(self, call: cst.Call, wanted: set[str]) -> cst.Call:
        """`f"... ORDER BY {col}"` -> `psycopg_sql.SQL("... ORDER BY {}").format(
        psycopg_sql.Identifier(col))`; string constants become `psycopg_sql.SQL(CONST)`."""
        sql_arg = call.args[0]
        pieces = _pieces(sql_arg.value)
        if pieces is None or sql_arg.keyword is not None:
            raise Refuse("the SQL is built away from the call (in a variable or a helper)")
        template = ""
        args: list[cst.BaseExpression] = []
        for piece in pieces:
            node = piece.node
            if isinstance(node, cst.SimpleString):
                template += _simple_text(node).replace("{", "{{").replace("}", "}}")
                continue
            texts = _fstring_texts(node)
            for part, text in zip(node.parts, texts, strict=True):
                if isinstance(part, cst.FormattedStringText):
                    template += str(text).replace("{", "{{").replace("}", "}}")
                    continue
                assert isinstance(part, cst.FormattedStringExpression)
                if part.conversion or part.format_spec:
                    raise Refuse("an interpolation with a conversion or format spec")
                key = _expr_key(part.expression)
                if key in wanted:
                    args.append(_psycopg("Identifier", part.expression))
                elif (
                    isinstance(part.expression, cst.Name)
                    and part.expression.value in self.constants
                ):
                    args.append(_psycopg("SQL", part.expression))
                else:
                    raise Refuse(f"`{key}` is neither a name to quote nor a string constant")
                template += "{}"
        for match in re.finditer(r"\{\}", template):
            before, after = template[: match.start()][-1:], template[match.end() :][:1]
            if re.match(r"[\w.\"']", before) or re.match(r"[\w.\"']", after):
                raise Refuse("a name is interpolated into a larger name or a quoted string")
        literal = repr(template)
        if literal.startswith("'") and '"' not in template and "'" not in template:
            literal = '"' + literal[1:-1] + '"'
        composed = cst.Call(
            cst.Attribute(
                cst.Call(
                    cst.Attribute(cst.Name(_PSYCOPG_SQL), cst.Name("SQL")),
                    [cst.Arg(cst.SimpleString(literal))],
                ),
                cst.Name("format"),
            ),
            [
                cst.Arg(a, comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
                if i < len(args) - 1
                else cst.Arg(a)
                for i, a in enumerate(args)
            ],
        )
        new_args = list(call.args)
        new_args[0] = sql_arg.with_changes(value=composed)
        return call.with_changes(args=new_args)

    def _params(self, call: cst.Call) -> tuple[cst.Arg | None, int | None]:
        for index, arg in enumerate(call.args[1:], start=1):
            if arg.keyword is None and not arg.star:
                return (arg, index) if index == 1 else (None, None)
            if arg.keyword is not None and arg.keyword.value in ("params", "parameters", "args"):
                return arg, index
            if arg.star:
                raise Refuse("the parameters are passed with * or **")
        return None, None

    def _dict_keys(self, arg: cst.Arg | None) -> set[str]:
        keys: set[str] = set()
        if arg is not None and isinstance(arg.value, cst.Dict):
            for element in arg.value.elements:
                if isinstance(element, cst.DictElement) and isinstance(
                    element.key, cst.SimpleString
                ):
                    keys.add(str(element.key.evaluated_value))
        return keys

    def _texts(self, pieces: Sequence[_Piece]) -> list[list[tuple[str, object]]]:
        """Per piece, per part: (text as SQL sees it, the part). Expressions become `?`."""
        out: list[list[tuple[str, object]]] = []
        for piece in pieces:
            node = piece.node
            if isinstance(node, cst.SimpleString):
                out.append([(_simple_text(node), node)])
                continue
            parts: list[tuple[str, object]] = []
            for part in node.parts:
                if isinstance(part, cst.FormattedStringText):
                    parts.append((_raw_text(part.value), part))
                else:
                    parts.append(("?", part))
            out.append(parts)
        return out

    def _rewrite_fstring(
        self,
        node: cst.FormattedString,
        texts: list[tuple[str, object]],
        wanted: set[str],
        had_params: bool,
        named_style: bool,
        names: set[str],
        initial_in_quote: bool,
    ) -> tuple[cst.BaseExpression, list[tuple[str, cst.BaseExpression]]]:
        parts = list(node.parts)
        values: list[tuple[str, cst.BaseExpression]] = []
        # Where each part starts in the f-string's text, and the quote state at each expression.
        i = 0
        new_parts: list[cst.BaseFormattedStringContent] = []
        state = _QuoteScanner()
        if initial_in_quote:
            state.in_quote, state.quote_opened_here = True, False
        while i < len(parts):
            part = parts[i]
            if isinstance(part, cst.FormattedStringText):
                state.feed(_raw_text(part.value))
                new_parts.append(part)
                i += 1
                continue
            assert isinstance(part, cst.FormattedStringExpression)
            key = _expr_key(part.expression)
            if state.in_quote:
                if not state.quote_opened_here or state.escape_string:
                    if key in wanted:
                        raise Refuse("the quoted literal spans several strings or is an E'' string")
                    new_parts.append(part)
                    i += 1
                    continue
                end = _closing(parts, i)
                if end is None:
                    if key in wanted:
                        raise Refuse("the quoted literal does not end in the same string")
                    new_parts.append(part)
                    i += 1
                    continue
                close_index, close_offset = end
                literal = parts[i:close_index]
                if not any(
                    isinstance(p, cst.FormattedStringExpression)
                    and _expr_key(p.expression) in wanted
                    for p in literal
                ):
                    new_parts.append(part)
                    i += 1
                    continue
                # Drop the opening quote from the text before, build the value, close after.
                opening = new_parts.pop()
                assert isinstance(opening, cst.FormattedStringText)
                open_at = _last_quote(opening.value)
                head, tail = opening.value[:open_at], opening.value[open_at + 1 :]
                closing = parts[close_index]
                assert isinstance(closing, cst.FormattedStringText)
                before_close = closing.value[:close_offset]
                after_close = closing.value[close_offset + 1 :]
                content: list[cst.BaseFormattedStringContent] = []
                if tail:
                    content.append(cst.FormattedStringText(tail))
                content += literal
                if before_close:
                    content.append(cst.FormattedStringText(before_close))
                name = _param_name(literal, names)
                value = self._value_for(content, node, had_params)
                values.append((name, value))
                placeholder = _MARK
                new_parts.append(cst.FormattedStringText(head + placeholder))
                new_parts.append(cst.FormattedStringText(after_close))
                state = _QuoteScanner()
                state.feed(_raw_text(after_close))
                i = close_index + 1
                continue
            if key in wanted:
                annotation = self._annotations[-1].get(key)
                if annotation not in _NUMERIC_TYPES or part.conversion or part.format_spec:
                    raise Refuse(
                        f"unquoted value `{key}` of unknown type: binding it may change the"
                        " SQL's meaning"
                    )
                name = _unique(key, names)
                values.append((name, part.expression))
                new_parts.append(cst.FormattedStringText(_MARK))
                state.feed("%s")
                i += 1
                continue
            state.feed("?")
            new_parts.append(part)
            i += 1
        return node.with_changes(parts=new_parts), values

    def _value_for(
        self,
        content: list[cst.BaseFormattedStringContent],
        node: cst.FormattedString,
        had_params: bool,
    ) -> cst.BaseExpression:
        def unescape(text: str) -> str:
            text = text.replace("''", "'")
            return text.replace("%%", "%") if had_params else text

        cleaned: list[cst.BaseFormattedStringContent] = []
        for part in content:
            if isinstance(part, cst.FormattedStringText):
                if unescape(part.value):
                    cleaned.append(cst.FormattedStringText(unescape(part.value)))
            else:
                cleaned.append(part)
        if (
            len(cleaned) == 1
            and isinstance(cleaned[0], cst.FormattedStringExpression)
            and cleaned[0].conversion is None
            and cleaned[0].format_spec is None
        ):
            expression = cleaned[0].expression
            key = _expr_key(expression)
            if self._annotations[-1].get(key) in _STR_TYPES:
                return expression
            return cst.Call(cst.Name("str"), args=[cst.Arg(expression)])
        return node.with_changes(parts=cleaned)

    def _check_percent_free(self, pieces: Sequence[cst.BaseExpression]) -> None:
        for piece in pieces:
            if isinstance(piece, cst.FormattedString):
                for part in piece.parts:
                    if isinstance(part, cst.FormattedStringExpression):
                        expr = part.expression
                        if isinstance(expr, cst.Name) and expr.value in self.constants:
                            if "%" in self.constants[expr.value]:
                                raise Refuse(
                                    f"`{expr.value}` contains `%`; parameters would change it"
                                )
                            continue
                        raise Refuse(
                            f"adding parameters changes how a `%` in `{_expr_key(expr)}` is read"
                        )


class _QuoteScanner:
    """Tracks whether SQL text is inside a '...' literal (and where it opened)."""

    def __init__(self) -> None:
        self.in_quote = False
        self.quote_opened_here = True
        self.escape_string = False
        self.double = False
        self.comment = False

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            ch = text[i]
            if self.comment:
                if ch == "\n":
                    self.comment = False
            elif self.double:
                if ch == '"':
                    self.double = False
            elif self.in_quote:
                if ch == "'" and text[i + 1 : i + 2] == "'":
                    i += 1
                elif ch == "'":
                    self.in_quote = False
            elif ch == "'":
                self.in_quote = True
                self.quote_opened_here = True
                self.escape_string = i > 0 and text[i - 1] in "eE"
            elif ch == '"':
                self.double = True
            elif text.startswith("--", i):
                self.comment = True
            i += 1


def _closing(parts: Sequence[cst.BaseFormattedStringContent], start: int) -> tuple[int, int] | None:
    """(part index, offset) of the quote closing the literal the expression at `start` is in."""
    for index in range(start + 1, len(parts)):
        part = parts[index]
        if not isinstance(part, cst.FormattedStringText):
            continue
        text = part.value
        j = 0
        while j < len(text):
            if text[j] == "'":
                if text[j + 1 : j + 2] == "'":
                    j += 2
                    continue
                return index, j
            j += 1
    return None


def _last_quote(text: str) -> int:
    """The offset of the quote that opens the literal still open at the end of `text`."""
    scanner_positions: list[int] = []
    in_quote = False
    j = 0
    while j < len(text):
        if text[j] == "'":
            if in_quote and text[j + 1 : j + 2] == "'":
                j += 2
                continue
            in_quote = not in_quote
            if in_quote:
                scanner_positions.append(j)
        j += 1
    if not scanner_positions:
        raise Refuse("cannot find where the quoted literal starts")
    return scanner_positions[-1]


def _param_name(literal: Sequence[cst.BaseFormattedStringContent], names: set[str]) -> str:
    for part in literal:
        if isinstance(part, cst.FormattedStringExpression):
            expr = part.expression
            base = (
                expr.value
                if isinstance(expr, cst.Name)
                else (expr.attr.value if isinstance(expr, cst.Attribute) else "value")
            )
            return _unique(base, names)
    return _unique("value", names)


def _unique(base: str, names: set[str]) -> str:
    base = re.sub(r"\W", "_", base) or "value"
    name = base
    n = 2
    while name in names:
        name = f"{base}_{n}"
        n += 1
    names.add(name)
    return name


def _positions(pieces: Sequence[cst.BaseExpression]) -> list[int]:
    """The index, among all positional placeholders of the new SQL, of each new one (marked)."""
    text = ""
    for piece in pieces:
        if isinstance(piece, cst.SimpleString):
            text += _simple_text(piece)
        elif isinstance(piece, cst.FormattedString):
            for part in piece.parts:
                text += part.value if isinstance(part, cst.FormattedStringText) else "?"
    out: list[int] = []
    count = 0
    for match in re.finditer(r"%%|%\([^)]*\)[sbt]|%[sbt]|" + _MARK, text):
        if match[0] == _MARK:
            out.append(count)
            count += 1
        elif match[0] != "%%":
            count += 1
    return out


def _fill_marks(piece: cst.BaseExpression, marks) -> cst.BaseExpression:
    if not isinstance(piece, cst.FormattedString):
        return piece
    parts = []
    for part in piece.parts:
        if isinstance(part, cst.FormattedStringText) and _MARK in part.value:
            pieces = part.value.split(_MARK)
            text = pieces[0]
            for rest in pieces[1:]:
                text += next(marks) + rest
            part = cst.FormattedStringText(text)
        parts.append(part)
    return piece.with_changes(parts=parts)


def _psycopg(name: str, value: cst.BaseExpression) -> cst.Call:
    return cst.Call(cst.Attribute(cst.Name(_PSYCOPG_SQL), cst.Name(name)), [cst.Arg(value)])


def _fstring_texts(node: cst.FormattedString) -> list[object]:
    """The value of each text part of an f-string (escapes applied), None for expressions."""
    code = cst.Module(body=[]).code_for_node(node)
    try:
        joined = ast.parse(code.strip(), mode="eval").body
    except SyntaxError as exc:
        raise Refuse(f"cannot read the f-string: {exc}") from None
    values = list(joined.values) if isinstance(joined, ast.JoinedStr) else []
    out: list[object] = []
    index = 0
    for part in node.parts:
        if isinstance(part, cst.FormattedStringText):
            if index < len(values) and isinstance(values[index], ast.Constant):
                out.append(values[index].value)  # type: ignore[attr-defined]
                index += 1
            else:
                raise Refuse("cannot align the f-string's parts")
        else:
            if index < len(values) and isinstance(values[index], ast.FormattedValue):
                out.append(None)
                index += 1
            else:
                raise Refuse("cannot align the f-string's parts")
    return out


def _finish_fstring(node: cst.BaseExpression) -> cst.BaseExpression:
    if not isinstance(node, cst.FormattedString):
        return node
    parts = list(node.parts)
    merged: list[cst.BaseFormattedStringContent] = []
    for part in parts:
        if isinstance(part, cst.FormattedStringText):
            if not part.value:
                continue
            if merged and isinstance(merged[-1], cst.FormattedStringText):
                merged[-1] = cst.FormattedStringText(merged[-1].value + part.value)
                continue
        merged.append(part)
    if all(isinstance(p, cst.FormattedStringText) for p in merged):
        text = "".join(p.value for p in merged)  # type: ignore[attr-defined]
        prefix = node.start[:-1].replace("f", "").replace("F", "")
        quote = node.start[-1] if node.start[-3:] not in ('"""', "'''") else node.start[-3:]
        if node.start.endswith(('"""', "'''")):
            prefix = node.start[:-3].replace("f", "").replace("F", "")
        return cst.SimpleString(prefix + quote + text.replace("{{", "{").replace("}}", "}") + quote)
    return node.with_changes(parts=merged)


def _double_percent(piece: cst.BaseExpression) -> cst.BaseExpression:
    """Escape `%` for psycopg (a call that had no parameters gets some), keeping new `%s`."""

    def escape(text: str) -> str:
        return text.replace("%", "%%")

    if isinstance(piece, cst.SimpleString):
        return piece.with_changes(value=piece.prefix + escape(piece.value[len(piece.prefix) :]))
    if isinstance(piece, cst.FormattedString):
        return piece.with_changes(
            parts=[
                cst.FormattedStringText(escape(p.value))
                if isinstance(p, cst.FormattedStringText)
                else p
                for p in piece.parts
            ]
        )
    return piece


def _rebuild_concat(
    original: cst.BaseExpression, pieces: list[cst.BaseExpression]
) -> cst.BaseExpression:
    iterator = iter(pieces)

    def rebuild(node: cst.BaseExpression) -> cst.BaseExpression:
        if isinstance(node, cst.ConcatenatedString):
            return node.with_changes(left=rebuild(node.left), right=rebuild(node.right))
        return next(iterator)

    return rebuild(original)


def _tuple(values) -> cst.Tuple:
    items = list(values)
    elements = []
    for i, value in enumerate(items):
        last = i == len(items) - 1
        comma = (
            cst.Comma()
            if last and len(items) == 1
            else (
                cst.MaybeSentinel.DEFAULT
                if last
                else cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            )
        )
        elements.append(cst.Element(value, comma=comma))
    return cst.Tuple(elements)


def _append_arg(call: cst.Call, args: list[cst.Arg], value: cst.BaseExpression) -> list[cst.Arg]:
    last = args[-1]
    multiline = "\n" in cst.Module(body=[]).code_for_node(last.whitespace_after_arg) or isinstance(
        call.whitespace_before_args, cst.ParenthesizedWhitespace
    )
    if isinstance(last.comma, cst.Comma):
        new = cst.Arg(value, comma=last.comma, whitespace_after_arg=last.whitespace_after_arg)
        args[-1] = last.with_changes(whitespace_after_arg=cst.SimpleWhitespace(""))
        return [*args, new]
    after = call.whitespace_before_args if multiline else cst.SimpleWhitespace(" ")
    args[-1] = last.with_changes(
        comma=cst.Comma(whitespace_after=after), whitespace_after_arg=cst.SimpleWhitespace("")
    )
    return [*args, cst.Arg(value, whitespace_after_arg=last.whitespace_after_arg)]


def _insert(elements: list, position: int, element):
    """Insert an element into a tuple/list/dict literal, keeping the layout of the others: one
    line stays one line (`a, b`), one element per line stays so (commas and comments kept)."""
    if not elements:
        if isinstance(element, cst.Element):
            return [element.with_changes(comma=cst.Comma())]
        return [element]
    position = min(position, len(elements))

    def code(node) -> str:
        return cst.Module(body=[]).code_for_node(node)

    commas = [e.comma for e in elements if isinstance(e.comma, cst.Comma)]
    multiline = next((c for c in commas if "\n" in code(c)), None)
    if multiline is not None and isinstance(
        multiline.whitespace_after, cst.ParenthesizedWhitespace
    ):
        multiline = multiline.with_changes(  # the layout without the comments
            whitespace_after=multiline.whitespace_after.with_changes(
                first_line=cst.TrailingWhitespace(), empty_lines=[]
            )
        )
    items = [*elements[:position], element, *elements[position:]]
    out = []
    if multiline is not None:
        trailing = isinstance(elements[-1].comma, cst.Comma)
        for i, item in enumerate(items):
            last = i == len(items) - 1
            has_comma = isinstance(item.comma, cst.Comma)
            if last:
                out.append(
                    item if has_comma or not trailing else item.with_changes(comma=multiline)
                )
            elif has_comma and "\n" in code(item.comma):
                out.append(item)
            else:
                out.append(item.with_changes(comma=multiline))
        return out
    spaced = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    for i, item in enumerate(items):
        last = i == len(items) - 1
        out.append(item.with_changes(comma=cst.MaybeSentinel.DEFAULT if last else spaced))
    return out
