"""Where does each interpolation land in a SQL statement? (sqlglot, postgres dialect)

`classify(parts)` takes a SQL template: literal text and holes (the `{...}` of an f-string, the
`%s` of Python's `%` formatting, a `.join(...)`), puts a sentinel identifier in each hole, parses
the result with sqlglot and reads where each sentinel landed:

| kind             | where                                                          |
| ---------------- | -------------------------------------------------------------- |
| `identifier`     | a table, schema, column, alias or bind-parameter name          |
| `set_clause`     | a whole `SET` item of an UPDATE (a joined list of assignments) |
| `where_fragment` | a whole condition (or an operand of AND/OR) of WHERE/HAVING/ON |
| `value`          | a literal position, inside quotes or not                       |
| `order_or_limit` | an ORDER BY item or a LIMIT/OFFSET/FETCH count                 |
| `other`          | anywhere else (a function name, a keyword, a comment)          |

When the text does not parse, the result says so (`parsed=False`, `error`) and each hole is
classified from the text around it: inside quotes is a `value`, inside double quotes an
`identifier`, after `ORDER BY`/`LIMIT` an `order_or_limit`, and so on; a hole with no telling
context is `other`, which the audit never treats as safe unless its value is code-chosen.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from .kinds import (  # noqa: F401  (re-exported: the classifier's vocabulary)
    IDENTIFIER,
    KINDS,
    ORDER_OR_LIMIT,
    OTHER,
    SET_CLAUSE,
    VALUE,
    WHERE_FRAGMENT,
)


@dataclass(frozen=True, slots=True)
class Hole:
    """An interpolation in a template; `label` is only for display (the Python expression)."""

    label: str = ""


@dataclass(frozen=True, slots=True)
class SlotClass:
    kind: str
    quoted: bool  # inside a quoted SQL literal ('...', E'...', $$...$$)


@dataclass(frozen=True, slots=True)
class Classification:
    statement: str  # SELECT, INSERT, UPSERT, UPDATE, DELETE, ..., or UNKNOWN
    slots: tuple[SlotClass, ...]  # one per hole, in order
    parsed: bool
    error: str = ""
    sql: str = ""  # the text that was parsed, holes as sentinels


def sentinel(index: int) -> str:
    return f"__gcs{index}__"


_SENTINEL = re.compile(r"__gcs(\d+)__")


def render(parts: Sequence[str | Hole]) -> tuple[str, int]:
    """The template as SQL text with a sentinel per hole, and the number of holes."""
    out: list[str] = []
    n = 0
    for part in parts:
        if isinstance(part, Hole):
            out.append(sentinel(n))
            n += 1
        else:
            out.append(part)
    return "".join(out), n


def classify(parts: Sequence[str | Hole]) -> Classification:
    """Classify every hole of a SQL template (see the module docstring)."""
    text, count = render(parts)
    return classify_text(text, count)


@functools.lru_cache(maxsize=4096)
def classify_text(text: str, count: int) -> Classification:
    """`classify` on already rendered text (cached: real code bases repeat their SQL shapes)."""
    lexical = _lexical_contexts(text, count)
    statements, error = _parse(text)
    found: dict[int, SlotClass] = {}
    statement = "UNKNOWN"
    if statements is not None:
        kinds = [_statement_type(s) for s in statements if s is not None]
        statement = "; ".join(kinds) if kinds else "UNKNOWN"
        for tree in statements:
            if tree is None:
                continue
            for node in tree.walk():
                for key, value in node.args.items():
                    if isinstance(value, str) and "__gcs" in value:
                        for match in _SENTINEL.finditer(value):
                            index = int(match[1])
                            if index < count and index not in found:
                                found[index] = _classify_node(node, key, lexical[index])
    slots = []
    for index in range(count):
        slot = found.get(index)
        if slot is None:
            slot = _from_text(text, index, lexical[index])
        slots.append(slot)
    if statements is None:
        statement = _statement_from_text(text)
    return Classification(statement, tuple(slots), statements is not None, error, text)


# -- parsing -----------------------------------------------------------------------------------
_SQLGLOT_LOG = logging.getLogger("sqlglot")


def _parse(text: str) -> tuple[list[exp.Expression | None] | None, str]:
    level = _SQLGLOT_LOG.level
    _SQLGLOT_LOG.setLevel(logging.CRITICAL)
    try:
        statements = sqlglot.parse(text, read="postgres")
    except Exception as exc:  # consolidate: ignore[EXC001] any sqlglot failure is "does not parse"
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, _ANSI.sub("", message)[:200]
    finally:
        _SQLGLOT_LOG.setLevel(level)
    if any(isinstance(s, exp.Command) for s in statements if s is not None):
        # sqlglot gave up and kept the raw text: classify from the text, but it did not parse.
        return None, "unsupported syntax (parsed as a raw command)"
    return statements, ""


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _statement_type(tree: exp.Expression) -> str:
    if isinstance(tree, exp.Insert):
        return "UPSERT" if tree.args.get("conflict") else "INSERT"
    if isinstance(tree, (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery)):
        return "SELECT"
    names = {
        exp.Update: "UPDATE",
        exp.Delete: "DELETE",
        exp.Merge: "MERGE",
        exp.Create: "CREATE",
        exp.Drop: "DROP",
        exp.Alter: "ALTER",
        exp.TruncateTable: "TRUNCATE",
        exp.Copy: "COPY",
        exp.Values: "VALUES",
    }
    for cls, name in names.items():
        if isinstance(tree, cls):
            return name
    return type(tree).__name__.upper()


_FIRST_WORD = re.compile(r"^[\s(]*([A-Za-z]+)")


def _statement_from_text(text: str) -> str:
    match = _FIRST_WORD.match(_strip_comments(text))
    if not match:
        return "UNKNOWN"
    word = match[1].upper()
    if word == "INSERT" and re.search(r"(?i)\bON\s+CONFLICT\b", text):
        return "UPSERT"
    return word


def _strip_comments(text: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", " ", text, flags=re.S)


# -- classification by tree position -----------------------------------------------------------
_TRANSPARENT = (
    exp.Cast,
    exp.TryCast,
    exp.Paren,
    exp.Neg,
    exp.Bracket,
    exp.Collate,
)
_COMPARISONS = (
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.Like,
    exp.ILike,
    exp.SimilarTo,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
    exp.ArrayContainsAll,
    exp.ArrayContainedBy,
    exp.ArrayOverlaps,
    exp.JSONBContains,
    exp.JSONBContainsAnyTopKeys,
    exp.JSONBContainsAllTopKeys,
    exp.JSONBContainsTopKey,
    exp.RegexpLike,
    exp.RegexpILike,
    exp.DPipe,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
)
_STRINGS = (exp.Literal, exp.RawString, exp.ByteString, exp.HexString, exp.National)
_CONDITIONS = (exp.Where, exp.Having, exp.Qualify)
_JSON = (exp.JSONExtract, exp.JSONExtractScalar, exp.JSONBExtract, exp.JSONBExtractScalar)


def _classify_node(node: exp.Expression, key: str, lexical: _Lexical) -> SlotClass:
    quoted = lexical.quote == "'"
    if quoted:  # whatever sqlglot made of a quoted literal (a JSON path, an interval), a value
        return SlotClass(VALUE, True)
    if lexical.quote == "-":
        return SlotClass(OTHER, False)
    if lexical.quote == '"':
        return SlotClass(IDENTIFIER, False)
    if isinstance(node, _STRINGS):
        if isinstance(node, exp.Literal) and not node.is_string:
            return SlotClass(VALUE, quoted)
        return SlotClass(VALUE, True)
    if isinstance(node, exp.Identifier):
        parent = node.parent
        if isinstance(parent, exp.Placeholder):
            return SlotClass(IDENTIFIER, quoted)  # %(name)s: the name of a bind parameter
        if isinstance(parent, exp.Column) and node.arg_key == "this":
            return SlotClass(_position_of(parent), quoted)
        return SlotClass(IDENTIFIER, quoted)
    if isinstance(node, exp.Placeholder):
        return SlotClass(IDENTIFIER, quoted)
    if isinstance(node, exp.Anonymous) and key == "this":
        return SlotClass(OTHER, quoted)  # a function name
    if isinstance(node, exp.Var):
        return SlotClass(_position_of(node), quoted)
    return SlotClass(OTHER, quoted)


def _position_of(node: exp.Expression) -> str:
    """The kind of a bare column reference (or bare word) by where it sits."""
    child = node
    parent = child.parent
    while isinstance(parent, _TRANSPARENT) or (
        isinstance(parent, (exp.Func, exp.Anonymous))
        and not isinstance(parent, (exp.Any, exp.All, exp.Binary, exp.Predicate, *_JSON))
    ):
        child, parent = parent, parent.parent
    if parent is None:
        return OTHER
    key = child.arg_key
    if isinstance(parent, exp.Update) and key == "expressions":
        return SET_CLAUSE
    if isinstance(parent, exp.EQ) and isinstance(parent.parent, (exp.Update, exp.OnConflict)):
        return IDENTIFIER if key == "this" else VALUE
    if isinstance(parent, _CONDITIONS) or (isinstance(parent, exp.Join) and key == "on"):
        return WHERE_FRAGMENT
    if isinstance(parent, (exp.And, exp.Or, exp.Not, exp.Xor)):
        return WHERE_FRAGMENT
    if isinstance(parent, exp.Ordered) and isinstance(parent.parent, exp.OnConflict):
        return IDENTIFIER  # ON CONFLICT (key)
    if isinstance(parent, (exp.Ordered, exp.Order)):
        return ORDER_OR_LIMIT
    if isinstance(parent, (exp.Limit, exp.Offset, exp.Fetch)):
        return ORDER_OR_LIMIT
    if isinstance(parent, _JSON):
        return VALUE if key == "expression" else IDENTIFIER
    if isinstance(parent, (exp.Any, exp.All)):
        return VALUE
    if isinstance(parent, exp.In):
        return IDENTIFIER if key == "this" else VALUE
    if isinstance(parent, exp.Between):
        return IDENTIFIER if key == "this" else VALUE
    if isinstance(parent, _COMPARISONS):
        return IDENTIFIER if key == "this" else VALUE
    if isinstance(parent, exp.Tuple):
        return VALUE if isinstance(parent.parent, exp.Values) else IDENTIFIER
    if isinstance(parent, exp.Values):
        return VALUE
    if isinstance(
        parent,
        (
            exp.Select,
            exp.Group,
            exp.Schema,
            exp.Returning,
            exp.Distinct,
            exp.Alias,
            exp.TableAlias,
            exp.Table,
            exp.Column,
            exp.Dot,
            exp.Star,
        ),
    ):
        return IDENTIFIER
    return OTHER


# -- classification from the text --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Lexical:
    quote: str  # "'" inside a string literal, '"' inside a quoted identifier, "-" in a comment
    before: str  # the SQL text before the hole, outside literals, uppercased, last 80 chars


def _lexical_contexts(text: str, count: int) -> list[_Lexical]:
    """For each sentinel: is it inside quotes or a comment, and what code precedes it."""
    result: dict[int, _Lexical] = {}
    state = ""  # "", "'", '"', "--", "/*", or "$tag$"
    code: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        if text.startswith("__gcs", i):
            match = _SENTINEL.match(text, i)
            if match:
                index = int(match[1])
                quote = {"'": "'", '"': '"', "--": "-", "/*": "-"}.get(state, "")
                if state.startswith("$"):
                    quote = "'"
                before = "".join(code[-200:]).upper()
                result.setdefault(index, _Lexical(quote, before[-80:]))
                if not state:
                    code.append(" __HOLE__ ")
                i = match.end()
                continue
        ch = text[i]
        if state == "":
            if ch == "'":
                state = "'"
                code.append(" 'LIT' ")
            elif ch == '"':
                state = '"'
                code.append(' "ID" ')
            elif text.startswith("--", i):
                state = "--"
                i += 1
            elif text.startswith("/*", i):
                state = "/*"
                i += 1
            elif ch == "$":
                match = re.match(r"\$[A-Za-z_]*\$", text[i:])
                if match:
                    state = match[0]
                    code.append(" 'LIT' ")
                    i += len(match[0])
                    continue
                code.append(ch)
            else:
                code.append(ch)
        elif state == "'":
            if ch == "'" and text.startswith("''", i):
                i += 1
            elif ch == "'":
                state = ""
        elif state == '"':
            if ch == '"':
                state = ""
        elif state == "--":
            if ch == "\n":
                state = ""
        elif state == "/*":
            if text.startswith("*/", i):
                state = ""
                i += 1
        elif text.startswith(state, i):
            i += len(state)
            state = ""
            continue
        i += 1
    return [result.get(k, _Lexical("", "")) for k in range(count)]


_TAIL_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern + r"\s*(?:\(\s*)?(?:__HOLE__\s*)?$"), kind)
    for pattern, kind in (
        (r"\bORDER\s+BY\b.*", ORDER_OR_LIMIT),
        (r"\b(?:LIMIT|OFFSET|FETCH\s+FIRST)", ORDER_OR_LIMIT),
        (r"\bSET", SET_CLAUSE),
        (r"\b(?:WHERE|HAVING|AND|OR|ON|NOT)", WHERE_FRAGMENT),
        (r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE|EXISTS)", IDENTIFIER),
        (r"(?:=|<>|!=|<|>|<=|>=|\bLIKE|\bILIKE|\bIN|\bVALUES|\bANY|,)", VALUE),
        (r"\bSELECT", IDENTIFIER),
        (r"\.", IDENTIFIER),
    )
)


def _from_text(text: str, index: int, lexical: _Lexical) -> SlotClass:
    """Classify a hole the parse did not place (the text does not parse, or it sits in a
    comment): quotes first, then the keyword before it."""
    if lexical.quote == "'":
        return SlotClass(VALUE, True)
    if lexical.quote == '"':
        return SlotClass(IDENTIFIER, False)
    if lexical.quote == "-":
        return SlotClass(OTHER, False)
    before = lexical.before.rstrip()
    for pattern, kind in _TAIL_RULES:
        if pattern.search(before):
            return SlotClass(kind, False)
    return SlotClass(OTHER, False)
