"""Codemod `safe-update-builder`: build dynamic UPDATE SET clauses from allowed columns only."""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import libcst as cst
import sqlglot
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import MetadataWrapper, PositionProvider
from sqlglot import exp

from ..audit.base import Option, module_name
from ..model import Applicability
from ..semantic.imports import module_aliases
from ..sql import classify as cls_
from ..sql.origins import MODEL_KEYS, ClassIndex, collect_classes
from ..sql.sites import FileAnalysis, Hole
from ..suppress import parse_directives
from .base import Changed, Codemod, CodemodProject, Keeps, Outcome, Refused, Rewrite, Unchanged

HELPER = '''\
"""Build the SET clause of a partial UPDATE from allowed columns only.

Written by gathering-consolidate (codemod `safe-update-builder`); it does not depend on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class UnknownColumnError(ValueError):
    """An update names a column that is not in the allowed set."""


def safe_update_builder(
    allowed_columns: Iterable[str], updates: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """`("name = %(name)s, role = %(role)s", {"name": ..., "role": ...})` for the keys of
    `updates`, in their order. Raises UnknownColumnError for a key not in `allowed_columns`, so a
    client-chosen key can never become SQL."""
    allowed = frozenset(allowed_columns)
    fragments: list[str] = []
    params: dict[str, Any] = {}
    for column, value in updates.items():
        if column not in allowed or not _IDENTIFIER.fullmatch(column):
            raise UnknownColumnError(f"unknown column {column!r}")
        fragments.append(f"{column} = %({column})s")
        params[column] = value
    return ", ".join(fragments), params
'''

_SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", "build", "dist", ".tox"}


class SafeUpdateBuilder(Codemod):
    """Rewrite dynamic `SET` builders to validate their columns against an allowlist from the code.

    A builder is a `", ".join(f"{col} = %({col})s" for col in changes)` whose keys come from a
    pydantic model's dump (`payload.model_dump(exclude_unset=True)`), found by the SQL audit's
    site finder. The join becomes `safe_update_builder(ALLOWED, changes)[0]`: the same text for
    every allowed key, `UnknownColumnError` for any other. The allowlist is derived from the code:
    the model's declared fields; when the model allows extra keys (so any column could be set
    before), also every column its UPDATE's table declares in the project's `*.sql` schema, so
    legitimate requests keep working while a key that is not a column name is refused; columns a
    client never sets (the primary key, identity and serial columns, defaults computed by the
    database, references to a users table, `created_by`/`created_at`/`owner_id`) are left out
    unless the model declares them, and the note lists them. In a
    FastAPI route whose model allows extra keys, the statement is wrapped so that an unknown
    column answers 400 (`HTTPException`) instead of a 500.

    The helper (`safe_update_builder`, `UnknownColumnError`) is written into the target package
    (`<package>/safe_sql.py`, option `helper-module`): the migrated code does not depend on this
    tool. Builders over literal fragments (`updates.append("name = %(name)s")`) are safe by
    construction and left alone.

    It refuses, with the reason, when the fragment is not `col = %(col)s`, the separator is not a
    comma, the keys' model (and so the allowlist) cannot be found, or the helper module exists
    with other content.

    Unsafe: a key outside the allowlist that used to reach the database (an extra key naming a
    real column the schema scan did not find) is now refused; review the allowlist in the diff.
    """

    id = "safe-update-builder"
    description = "Validate dynamic UPDATE SET columns against an allowlist derived from the code."
    applicability = Applicability.UNSAFE
    # It works from the SQL site finder, not from findings: it also hardens builders that are
    # safe today (keys of a model that ignores extras), so `fixes` names no rule; SQL001/SQL002
    # findings on a SET builder suggest it in their `fix`.
    fixes = ()
    OPTIONS = {
        "helper-module": Option(
            "", "Dotted module for the helper (default: `<top package>.safe_sql`)."
        )
    }
    CASES = [
        Rewrite(
            before="""
                from fastapi import APIRouter
                from app.schemas import AgentUpdate

                router = APIRouter()


                @router.patch("/agents/{agent_id}")
                def update_agent(agent_id: int, payload: AgentUpdate, db=None):
                    changes = payload.model_dump(exclude_unset=True)
                    # only the fields sent
                    assignments = ", ".join(f"{col} = %({col})s" for col in changes)
                    return db.execute_one(
                        f"UPDATE agents SET {assignments} WHERE id = %(id)s", {**changes, "id": agent_id}
                    )
            """,
            after="""
                from fastapi import APIRouter
                from app.schemas import AgentUpdate
                from app.safe_sql import safe_update_builder

                router = APIRouter()


                @router.patch("/agents/{agent_id}")
                def update_agent(agent_id: int, payload: AgentUpdate, db=None):
                    changes = payload.model_dump(exclude_unset=True)
                    # only the fields sent
                    assignments = safe_update_builder(("name", "role"), changes)[0]
                    return db.execute_one(
                        f"UPDATE agents SET {assignments} WHERE id = %(id)s", {**changes, "id": agent_id}
                    )
            """,
            path="app/api.py",
            files={
                "app/__init__.py": "",
                "app/schemas.py": """
                    from pydantic import BaseModel

                    class AgentUpdate(BaseModel):
                        name: str | None = None
                        role: str | None = None
                """,
            },
        ),
        Rewrite(
            before="""
                from fastapi import APIRouter, HTTPException
                from app.schemas import SettingsUpdate

                router = APIRouter()


                @router.patch("/circles/{circle_id}/settings")
                def update_settings(circle_id: int, payload: SettingsUpdate, db=None):
                    changes = payload.model_dump(exclude_unset=True)
                    set_clause = ", ".join(f"{column} = %({column})s" for column in changes)
                    return db.execute_one(
                        f"UPDATE circles SET {set_clause} WHERE id = %(circle_id)s",
                        {**changes, "circle_id": circle_id},
                    )
            """,
            after="""
                from fastapi import APIRouter, HTTPException
                from app.schemas import SettingsUpdate
                from app.safe_sql import UnknownColumnError, safe_update_builder

                router = APIRouter()


                @router.patch("/circles/{circle_id}/settings")
                def update_settings(circle_id: int, payload: SettingsUpdate, db=None):
                    changes = payload.model_dump(exclude_unset=True)
                    try:
                        set_clause = safe_update_builder(("description", "max_agents"), changes)[0]
                    except UnknownColumnError as exc:
                        raise HTTPException(status_code=400, detail=str(exc)) from exc
                    return db.execute_one(
                        f"UPDATE circles SET {set_clause} WHERE id = %(circle_id)s",
                        {**changes, "circle_id": circle_id},
                    )
            """,
            path="app/api.py",
            files={
                "app/__init__.py": "",
                "app/schemas.py": """
                    from pydantic import BaseModel, ConfigDict

                    class SettingsUpdate(BaseModel):
                        model_config = ConfigDict(extra="allow")
                        description: str | None = None
                        max_agents: int | None = None
                """,
            },
        ),
        Keeps("""
            def update_pipeline(db, pipeline_id, name=None, status=None):
                updates = []
                params = {"id": pipeline_id}
                if name is not None:
                    updates.append("name = %(name)s")
                    params["name"] = name
                if status is not None:
                    updates.append("status = %(status)s")
                    params["status"] = status
                return db.execute_one(
                    f"UPDATE pipelines SET {', '.join(updates)} WHERE id = %(id)s", params
                )
        """),
    ]

    def run(self, project: CodemodProject) -> Iterable[Outcome]:
        trees: dict[str, ast.Module] = {}
        for path, text in project.files.items():
            try:
                trees[path] = ast.parse(text)
            except SyntaxError:
                continue
        classes = []
        aliases: dict[str, str] = {}
        qualifiers = {}
        for path, tree in trees.items():
            module = module_name(path)
            qualify = _qualifier(tree, path, module)
            qualifiers[path] = qualify
            classes += collect_classes(tree, module, qualify)
            aliases.update(dict(module_aliases(tree, module, qualify)))
        index = ClassIndex(classes, aliases)
        helper_users: set[str] = set()
        outcomes: list[Outcome] = []
        for path in sorted(trees):
            project.step("rewriting files", 1, len(trees))
            text = project.files[path]
            if "join" not in text or "SET" not in text.upper():
                continue
            try:
                outcome, used = self._file(
                    path, text, trees[path], qualifiers[path], index, project
                )
            except _Refusal as refusal:
                outcomes.append(Refused(path, refusal.reason, refusal.line))
                continue
            outcomes.append(outcome)
            if used:
                helper_users.add(path)
        if helper_users:
            outcomes.append(self._helper(project, sorted(helper_users)[0]))
        return outcomes

    # -- one file --------------------------------------------------------------------------
    def _file(self, path, text, tree, qualify, index, project) -> tuple[Outcome, bool]:
        module = module_name(path)
        analysis = FileAnalysis(path, module, text, tree, qualify, lambda node: module)
        analysis.index()
        ignored = {
            d.target
            for d in parse_directives(text)
            if any(r in ("SQL", "SQL001", "SQL002") for r in d.rules) and d.reason
        }
        edits: list[_Edit] = []
        refusals: list[tuple[int, str]] = []
        for call, scope in analysis.calls():
            if call.lineno in ignored or not call.args:
                continue
            for template in analysis.sql_templates(call, scope):
                for hole in template:
                    if not isinstance(hole, Hole) or hole.elements is None:
                        continue
                    model = _model_ref(analysis, hole)
                    if model is None:
                        continue
                    try:
                        edits.append(
                            self._edit(analysis, call, template, hole, model, index, project)
                        )
                    except _Refusal as refusal:
                        refusals.append((refusal.line or call.lineno, refusal.reason))
        if not edits:
            if refusals:
                raise _Refusal(refusals[0][1], refusals[0][0])
            return Unchanged(path), False
        helper = self._helper_module(project, path)
        module_cst = cst.parse_module(text)
        rewriter = _Rewriter(edits, helper)
        new = MetadataWrapper(module_cst).visit(rewriter)
        context = CodemodContext(filename=path, full_module_name=module)
        for name in sorted(rewriter.imports):
            AddImportsVisitor.add_needed_import(context, helper, name)
        if rewriter.http_exception_needed:
            AddImportsVisitor.add_needed_import(context, "fastapi", "HTTPException")
        new = AddImportsVisitor(context).transform_module(new)
        warnings = tuple(e.note for e in edits if e.note) + tuple(
            f"line {line}: not rewritten: {reason}" for line, reason in refusals
        )
        return Changed(path, text, new.code, warnings), True

    def _edit(self, analysis, call, template, hole, model, index, project) -> _Edit:
        join = hole.expr
        if not (
            isinstance(join, ast.Call)
            and isinstance(join.func, ast.Attribute)
            and isinstance(join.func.value, ast.Constant)
            and join.func.value.value.strip() == ","
        ):
            raise _Refusal("the fragments are not joined with a comma", call.lineno)
        source = _fragment_source(join.args[0])
        if source is None:
            raise _Refusal(
                'the SET fragments are not `f"{col} = %({col})s" for col in <mapping>`',
                call.lineno,
            )
        fields = index.fields(model)
        if not fields:
            raise _Refusal(f"cannot find the fields of {model}, so no allowlist", call.lineno)
        policy = index.extra_policy(model)
        note = ""
        columns = list(fields)
        if policy == "allow":
            table = _update_table(template)
            declared = _schema_columns(project.root, table) if table else []
            extra = [name for name, why in declared if why is None]
            kept_out = [f"{name} ({why})" for name, why in declared if why and name not in fields]
            columns += [c for c in extra if c not in columns]
            short = model.rsplit(".", 1)[-1]
            note = (
                f"line {call.lineno}: {short} allows extra keys; the allowlist is its fields"
                + (f" plus the columns of {table} in the schema" if extra else "")
                + ("; left out as not client-writable: " + ", ".join(kept_out) if kept_out else "")
                + ": narrow it if some must not be writable"
            )
        scope = analysis.scope_of.get(call)
        wrap = policy == "allow" and scope is not None and scope.is_route
        return _Edit(
            line=join.lineno,
            column=join.col_offset,
            mapping=source,
            columns=tuple(columns),
            wrap=wrap,
            note=note,
        )

    # -- the helper module -----------------------------------------------------------------
    def _helper_module(self, project: CodemodProject, path: str) -> str:
        configured = str(self.options.get("helper-module") or "")
        if configured:
            return configured
        top = path.split("/")[0]
        packages = project.packages()
        package = next((p for p in packages if path.startswith(p + "/")), top)
        return package.replace("/", ".") + ".safe_sql"

    def _helper(self, project: CodemodProject, user: str) -> Outcome:
        module = self._helper_module(project, user)
        path = module.replace(".", "/") + ".py"
        existing = project.files.get(path)
        if existing is None and project.root is not None:
            candidate = project.root / path
            if candidate.is_file():
                existing = candidate.read_text(encoding="utf-8")
        if existing is None:
            return Changed(path, None, HELPER)
        if existing == HELPER or "def safe_update_builder" in existing:
            return Unchanged(path)
        return Refused(path, f"{path} exists and does not define safe_update_builder")


@dataclass(frozen=True)
class _Edit:
    line: int
    column: int
    mapping: str  # source of the mapping whose keys are the columns
    columns: tuple[str, ...]
    wrap: bool
    note: str


class _Refusal(Exception):
    def __init__(self, reason: str, line: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.line = line


def _qualifier(tree: ast.Module, path: str, module: str):
    from ..audit.base import FileContext

    ctx = FileContext(path, "", tree)
    return ctx.qualified_name


def _model_ref(analysis: FileAnalysis, hole: Hole) -> str | None:
    """The model whose dump's keys fill the join's identifier holes, if that is what they are."""
    for element in hole.elements or []:
        for part in element:
            if isinstance(part, Hole):
                for origin in analysis.hole_origins(part):
                    if origin.kind == MODEL_KEYS and origin.ref:
                        return origin.ref
    return None


def _fragment_source(iterable: ast.AST) -> str | None:
    """`f"{k} = %({k})s" for k in M` (or `M.keys()`, `k, _ in M.items()`) -> the source of M."""
    if not isinstance(iterable, (ast.GeneratorExp, ast.ListComp)) or len(iterable.generators) != 1:
        return None
    gen = iterable.generators[0]
    if gen.ifs or gen.is_async:
        return None
    target = gen.target
    mapping = gen.iter
    if isinstance(target, ast.Tuple) and len(target.elts) == 2:
        target = target.elts[0]
        if not (
            isinstance(mapping, ast.Call)
            and isinstance(mapping.func, ast.Attribute)
            and mapping.func.attr == "items"
        ):
            return None
        mapping = mapping.func.value
    elif (
        isinstance(mapping, ast.Call)
        and isinstance(mapping.func, ast.Attribute)
        and mapping.func.attr == "keys"
        and not mapping.args
    ):
        mapping = mapping.func.value
    if not isinstance(target, ast.Name):
        return None
    elt = iterable.elt
    if not isinstance(elt, ast.JoinedStr):
        return None
    values = elt.values
    shape = [
        ("hole", target.id),
        ("text", " = %("),
        ("hole", target.id),
        ("text", ")s"),
    ]
    got = []
    for value in values:
        if isinstance(value, ast.Constant):
            got.append(("text", value.value))
        elif (
            isinstance(value, ast.FormattedValue)
            and isinstance(value.value, ast.Name)
            and value.conversion == -1
            and value.format_spec is None
        ):
            got.append(("hole", value.value.id))
        else:
            return None
    if got != shape:
        return None
    return ast.unparse(mapping)


def _update_table(template: list) -> str | None:
    parts = [p if isinstance(p, str) else cls_.Hole() for p in template]
    text, _ = cls_.render(parts)
    try:
        tree = sqlglot.parse_one(text, read="postgres")
    except Exception:  # consolidate: ignore[EXC001] no table, no schema columns
        return None
    if isinstance(tree, exp.Update) and isinstance(tree.this, exp.Table):
        table = tree.this
        return f"{table.db}.{table.name}" if table.db else table.name
    return None


def _schema_columns(root: Path | None, table: str) -> list[tuple[str, str | None]]:
    """Columns of `table` declared by CREATE TABLE / ALTER TABLE ADD COLUMN in the project's
    `*.sql` files (the first 500 found), each with why a client must not write it (identity,
    ownership, audit), or None."""
    if root is None or not root.is_dir():
        return []
    wanted = table.lower()
    columns: list[tuple[str, str | None]] = []
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if not name.endswith(".sql"):
                continue
            seen += 1
            if seen > 500:
                return columns
            try:
                text = (Path(dirpath) / name).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            text = re.sub(r"--[^\n]*|/\*.*?\*/", " ", text, flags=re.S)
            for statement in text.split(";"):
                if wanted.split(".")[-1] not in statement.lower():
                    continue
                try:
                    tree = sqlglot.parse_one(statement, read="postgres")
                except Exception:  # consolidate: ignore[EXC001] not every statement parses
                    continue
                known = {name for name, _ in columns}
                columns += [c for c in _declared(tree, wanted) if c[0] not in known]
    return columns


_SERIAL = {"SERIAL", "BIGSERIAL", "SMALLSERIAL"}


def _not_client_writable(column: exp.ColumnDef) -> str | None:
    """Why a column is the database's or the server's to set, not a client's: the primary key,
    an identity or serial, a default computed by the database (`now()`, `gen_random_uuid()`),
    a reference to a users table, or an audit name (`created_by`, `created_at`)."""
    kind = column.args.get("kind")
    if kind is not None and kind.sql(dialect="postgres").upper() in _SERIAL:
        return "serial"
    name = column.name.lower()
    for constraint in column.args.get("constraints") or []:
        inner = constraint.args.get("kind")
        if isinstance(inner, exp.PrimaryKeyColumnConstraint):
            return "primary key"
        if isinstance(inner, exp.GeneratedAsIdentityColumnConstraint):
            return "identity"
        if isinstance(inner, exp.DefaultColumnConstraint) and isinstance(inner.this, exp.Func):
            return "set by the database"
        if isinstance(inner, exp.Reference) and "user" in inner.sql(dialect="postgres").lower():
            return "ownership"
    if name.endswith("_by") or name.startswith("owner") or name in ("created_at", "updated_at"):
        return "audit" if name.endswith(("_at", "_by")) else "ownership"
    return None


def _declared(tree: exp.Expression | None, wanted: str) -> list[tuple[str, str | None]]:
    if tree is None:
        return []
    target = tree.find(exp.Table)
    if target is None:
        return []
    name = f"{target.db}.{target.name}".lower() if target.db else target.name.lower()
    if name != wanted and name.split(".")[-1] != wanted:
        return []
    if isinstance(tree, (exp.Create, exp.Alter)):
        return [(d.name, _not_client_writable(d)) for d in tree.find_all(exp.ColumnDef)]
    return []


class _Rewriter(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, edits: list[_Edit], helper: str) -> None:
        super().__init__()
        self.edits = {(e.line, e.column): e for e in edits}
        self.helper = helper
        self.imports: set[str] = set()
        self.http_exception_needed = False
        self._wrap_pending: list[bool] = []

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self._wrap_pending.append(False)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        position = self.get_metadata(PositionProvider, original_node).start
        edit = self.edits.get((position.line, position.column))
        if edit is None:
            return updated_node
        self.imports.add("safe_update_builder")
        columns = cst.Tuple(
            [
                cst.Element(
                    cst.SimpleString(f'"{c}"'),
                    comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
                    if i < len(edit.columns) - 1
                    else (cst.Comma() if len(edit.columns) == 1 else cst.MaybeSentinel.DEFAULT),
                )
                for i, c in enumerate(edit.columns)
            ]
        )
        call = cst.Call(
            cst.Name("safe_update_builder"),
            args=[
                cst.Arg(columns, comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
                cst.Arg(cst.parse_expression(edit.mapping)),
            ],
        )
        if edit.wrap and self._wrap_pending:
            self._wrap_pending[-1] = True
            self.imports.add("UnknownColumnError")
        return cst.Subscript(call, [cst.SubscriptElement(cst.Index(cst.Integer("0")))])

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.BaseStatement:
        wrap = self._wrap_pending.pop() if self._wrap_pending else False
        if not wrap:
            return updated_node
        self.http_exception_needed = True
        handler = cst.parse_statement(
            "try:\n    pass\nexcept UnknownColumnError as exc:\n"
            "    raise HTTPException(status_code=400, detail=str(exc)) from exc\n"
        )
        assert isinstance(handler, cst.Try)
        return handler.with_changes(
            body=cst.IndentedBlock([updated_node.with_changes(leading_lines=[])]),
            leading_lines=updated_node.leading_lines,
        )
