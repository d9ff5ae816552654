from __future__ import annotations

import ast
import hashlib
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ...model import Finding, Severity
from ..base import FileContext, Invalid, ProjectCheck, ProjectContext, Valid
from .helpers import imported_name, is_test_path, words

# -- id generation -------------------------------------------------------------------------------

_ID_KEY = re.compile(r"^(?:(?P<entity>[a-z0-9_]+?)_)?(?:id|uid|uuid|pk)$")
_VERBS = frozenset(
    {
        "create",
        "add",
        "new",
        "make",
        "build",
        "generate",
        "insert",
        "save",
        "store",
        "register",
        "init",
        "get",
        "set",
        "put",
        "upsert",
        "record",
        "issue",
        "seed",
        "load",
        "from",
        "to",
        "for",
        "by",
        "in",
    }
)
_GENERIC = frozenset(
    {"store", "db", "cache", "map", "registry", "list", "dict", "index", "table", "data", "record"}
)
_CLASS_SUFFIXES = frozenset(
    {
        "create",
        "update",
        "response",
        "request",
        "model",
        "schema",
        "in",
        "out",
        "db",
        "orm",
        "row",
        "base",
        "public",
        "entity",
        "table",
        "record",
        "data",
    }
)
_WRAPPERS = {"str", "repr", "format"}
_COMPATIBLE = {
    ("uuid string", "uuid"),
    ("uuid", "uuid"),
    ("uuid string", "text"),
    ("random string", "text"),
    ("integer counter", "integer"),
    ("integer counter", "text"),
}


def singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def entity_of(name: str, *, drop: frozenset[str] = _GENERIC) -> str:
    """`_users_store` -> `user`; `create_pipeline_run` -> `pipeline_run`; `UserResponse` ->
    `user`."""
    parts = [singular(w) for w in words(name.rsplit(".", 1)[-1])]
    parts = [p for p in parts if p not in _VERBS and p not in drop]
    return "_".join(parts)


def _generated(ctx: FileContext, node: ast.AST) -> str | None:
    """The format of the id an expression generates, or None if it generates none."""
    if isinstance(node, ast.Call):
        name = imported_name(ctx, node.func)
        if name.startswith("uuid.uuid") and name[-1:].isdigit():
            return "uuid"
        if name in {"secrets.token_hex", "secrets.token_urlsafe", "shortuuid.uuid", "nanoid"}:
            return "random string"
        if isinstance(node.func, ast.Name) and node.func.id in _WRAPPERS and node.args:
            inner = _generated(ctx, node.args[0])
            return "uuid string" if inner in {"uuid", "uuid string"} else inner
    if isinstance(node, ast.Attribute) and node.attr in {"hex", "urn"}:
        return "uuid string" if _generated(ctx, node.value) else None
    if isinstance(node, ast.JoinedStr):
        for value in node.values:
            if isinstance(value, ast.FormattedValue) and _generated(ctx, value.value):
                return "uuid string"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        sides = (node.left, node.right)
        counted = any(
            isinstance(s, ast.Call)
            and isinstance(s.func, ast.Name)
            and s.func.id in {"len", "max", "count"}
            for s in sides
        )
        if counted and any(isinstance(s, ast.Constant) and s.value == 1 for s in sides):
            return "integer counter"
    return None


def _owner_names(ctx: FileContext, node: ast.AST) -> list[str]:
    """Names around a generated id that say whose id it is, nearest first."""
    names: list[str] = []
    parent = ctx.parents.get(node)
    while parent is not None and not isinstance(parent, ast.stmt):
        if isinstance(parent, ast.Call):
            func = parent.func
            names.append(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
        parent = ctx.parents.get(parent)
    if isinstance(parent, (ast.Assign, ast.AnnAssign)):
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        for target in targets:
            if isinstance(target, ast.Name):
                names.append(target.id)
            elif isinstance(target, ast.Subscript):
                base = target.value
                names.append(
                    base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
                )
            elif isinstance(target, ast.Attribute):
                base = target.value
                if isinstance(base, ast.Name) and base.id != "self":
                    names.append(base.id)
    scope = ctx.symbol_for(node).split(".")
    names.append(scope[-1])
    classes = {c.name for c in ctx.nodes(ast.ClassDef)}
    if len(scope) > 1 and scope[-2] in classes:  # the enclosing class, not the module's name
        names.append(scope[-2])
    return [n for n in names if n]


def _id_key(ctx: FileContext, top: ast.AST) -> tuple[str, str] | None:
    """`(key, entity hint)` when `top` is stored as an id: a `"id"`/`"user_id"` dict entry, an
    `id=`/`user_id=` keyword, or an assignment to `id`, `user_id`, `x.id`, `x["id"]`."""
    parent = ctx.parents.get(top)
    key: str | None = None
    if isinstance(parent, ast.Dict):
        for k, v in zip(parent.keys, parent.values, strict=True):
            if v is top and isinstance(k, ast.Constant) and isinstance(k.value, str):
                key = k.value
    elif isinstance(parent, ast.keyword):
        key = parent.arg
    elif isinstance(parent, (ast.Assign, ast.AnnAssign)):
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        for target in targets:
            if isinstance(target, ast.Name):
                key = target.id
            elif isinstance(target, ast.Attribute):
                key = target.attr
            elif isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
                key = str(target.slice.value)
    if not key:
        return None
    match = _ID_KEY.match("_".join(words(key)))
    if not match:
        return None
    return key, entity_of(match["entity"] or "")


@dataclass
class Generation:
    finding: Finding
    generated: str
    entities: list[str]


@dataclass
class Declaration:
    entity: str
    column: str
    format: str
    where: str


@dataclass
class IdFacts:
    generations: list[Generation] = field(default_factory=list)
    declarations: list[Declaration] = field(default_factory=list)


# -- declarations: SQL DDL, SQLAlchemy models, alembic -------------------------------------------

_CREATE_TABLE = re.compile(
    r"CREATE\s+(?:UNLOGGED\s+|TEMP(?:ORARY)?\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"(?P<name>[\w.\"]+)\s*\(",
    re.IGNORECASE,
)
_CONSTRAINT = re.compile(r"^(?:PRIMARY|FOREIGN|UNIQUE|CHECK|CONSTRAINT|EXCLUDE|LIKE)\b", re.I)
_REFERENCES = re.compile(r"REFERENCES\s+(?P<table>[\w.\"]+)", re.IGNORECASE)


def sql_type_format(sql_type: str) -> str | None:
    t = sql_type.lower()
    if re.match(r"(?:big|small)?serial\d?\b|int[248]?\b|integer\b|bigint\b|smallint\b", t):
        return "integer"
    if t.startswith("uuid"):
        return "uuid"
    if re.match(r"text\b|varchar|character|char\b|citext", t):
        return "text"
    return None


def _table_entity(name: str) -> str:
    return entity_of(name.replace('"', "").rsplit(".", 1)[-1], drop=frozenset())


def sql_declarations(text: str, where: str, first_line: int = 1) -> list[Declaration]:
    """Id columns of the `CREATE TABLE` statements in `text`: `id` gives the table's entity,
    `user_id ... REFERENCES users` gives `user`."""
    found: list[Declaration] = []
    for match in _CREATE_TABLE.finditer(text):
        start = match.end()
        depth, end = 1, start
        while end < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        table = match["name"].replace('"', "")
        offset = start
        for part in _split_top_level(text[start : end - 1]):
            stripped = re.sub(r"--[^\n]*", "", part).strip()
            column_at = offset + part.find(stripped[:1]) if stripped else offset
            offset += len(part) + 1
            if not stripped or _CONSTRAINT.match(stripped):
                continue
            pieces = stripped.split(None, 2)
            if len(pieces) < 2:
                continue
            column, column_type = pieces[0].strip('"').lower(), " ".join(pieces[1:])
            fmt = sql_type_format(column_type)
            key = _ID_KEY.match(column)
            if fmt is None or key is None:
                continue
            reference = _REFERENCES.search(column_type)
            if key["entity"]:
                entity = (
                    _table_entity(reference["table"]) if reference else entity_of(key["entity"])
                )
            else:
                entity = _table_entity(table)
            line = first_line + text.count("\n", 0, column_at)
            found.append(Declaration(entity, f"{table}.{column}", fmt, f"{where}:{line}"))
    return found


def _split_top_level(body: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in body:
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current.append(char)
    parts.append("".join(current))
    return parts


_ORM_TYPES = {
    "integer": "integer",
    "biginteger": "integer",
    "smallinteger": "integer",
    "int": "integer",
    "uuid": "uuid",
    "string": "text",
    "text": "text",
    "unicode": "text",
    "str": "text",
}


def _orm_format(node: ast.AST | None) -> str | None:
    if node is None:
        return None
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Subscript):  # Mapped[int]
        return _orm_format(node.slice)
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return _ORM_TYPES.get(name.lower())


def _python_declarations(ctx: FileContext) -> list[Declaration]:
    found: list[Declaration] = []
    for node in ctx.nodes(ast.Constant):
        if isinstance(node.value, str) and _CREATE_TABLE.search(node.value):
            found.extend(sql_declarations(node.value, ctx.path, node.lineno))
    for cls in ctx.nodes(ast.ClassDef):
        table = next(
            (
                s.value.value
                for s in cls.body
                if isinstance(s, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__tablename__" for t in s.targets)
                and isinstance(s.value, ast.Constant)
                and isinstance(s.value.value, str)
            ),
            None,
        )
        if table is None:
            continue
        for stmt in cls.body:
            target = stmt.target if isinstance(stmt, ast.AnnAssign) else None
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target = stmt.targets[0]
            if not isinstance(target, ast.Name) or not _ID_KEY.match(target.id.lower()):
                continue
            value = stmt.value
            fmt = None
            if isinstance(value, ast.Call) and value.args:
                fmt = _orm_format(value.args[0])
            if fmt is None and isinstance(stmt, ast.AnnAssign):
                fmt = _orm_format(stmt.annotation)
            if fmt:
                where = f"{ctx.path}:{stmt.lineno}"
                key = _ID_KEY.match(target.id.lower())
                entity = entity_of(key["entity"]) if key and key["entity"] else None
                for owner in [entity] if entity else [_table_entity(table), entity_of(cls.name)]:
                    found.append(Declaration(owner, f"{table}.{target.id}", fmt, where))
    for call in ctx.nodes(ast.Call):
        if isinstance(call.func, ast.Attribute) and call.func.attr != "create_table":
            continue  # its qualified name ends with another attribute
        if not (imported_name(ctx, call.func) or "").endswith("op.create_table"):
            continue
        if not (call.args and isinstance(call.args[0], ast.Constant)):
            continue
        table = str(call.args[0].value)
        for column in call.args[1:]:
            if (
                isinstance(column, ast.Call)
                and len(column.args) > 1
                and isinstance(column.args[0], ast.Constant)
            ):
                name = str(column.args[0].value).lower()
                key = _ID_KEY.match(name)
                fmt = _orm_format(column.args[1])
                if key and fmt:
                    entity = entity_of(key["entity"]) if key["entity"] else _table_entity(table)
                    where = f"{ctx.path}:{column.lineno}"
                    found.append(Declaration(entity, f"{table}.{name}", fmt, where))
    return found


def _sql_sources(project: ProjectContext) -> list[tuple[str, str]]:
    """`(relative path, text)` of the `*.sql` files of the project tree (a schema directory,
    migrations). Only for a tree on disk: in-memory sources have no files around them."""

    def compute() -> list[tuple[str, str]]:
        root = Path(project.root)
        if not any((root / p).is_file() for p in list(project.tiers)[:20]):
            return []
        found: list[tuple[str, str]] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not d.startswith(".")
                and d not in {"node_modules", "__pycache__", "venv", "build", "dist"}
                and not os.path.exists(os.path.join(dirpath, d, "pyvenv.cfg"))
            )
            for name in sorted(filenames):
                if not name.endswith(".sql") or len(found) >= 1000:
                    continue
                path = Path(dirpath) / name
                try:
                    info = path.lstat()  # only regular files: never a FIFO, device or symlink
                    if not stat.S_ISREG(info.st_mode) or info.st_size > 2_000_000:
                        continue
                    text = path.read_text(encoding="utf-8", errors="replace")
                except OSError:
                    continue
                found.append((path.relative_to(root).as_posix(), text))
        return found

    return project.memoized("aut005.sql", compute)


class UnstableIdFormat(ProjectCheck):
    """An id is generated in a format the persistence layer stores differently.

    For example `str(uuid4())` for a user whose table has `id SERIAL`, or a `len(store) + 1`
    counter for a `uuid` column.

    ## Why is this bad?
    The in-memory implementation hands out ids that clients store, put in URLs and tokens
    (`sub`), and that tests pin. When the data moves to the table the schema already declares,
    every id changes format: old tokens and links break, and any code that parses or compares
    ids the old way fails. The mismatch has to be planned into the migration.

    An id generation is `uuid.uuid4()` (any `uuid.uuidN`), `str(uuid4())`, `uuid4().hex`, an
    f-string around one, `secrets.token_hex/token_urlsafe`, or a `len(...) + 1` counter, stored
    under an id key: a `"id"`/`"user_id"` dict entry, an `id=`/`user_id=` keyword, or an
    assignment to `id`, `user_id`, `obj.id`, `obj["id"]`. Its entity comes from the key
    (`user_id` -> user) or, for a bare `id`, from the names around it (the variable, container or
    class it is stored in, the enclosing function and class: `create_user` -> user; not the
    module's name). A key that names the format (`uuid=uuid4()`, `event_uuid`) is a uuid column
    by definition and is not reported.

    The persistence layer's formats come from `CREATE TABLE` statements (in `*.sql` files of the
    project tree and in Python strings), SQLAlchemy models (`__tablename__` with `Integer`/`UUID`
    columns or `Mapped[int]`) and alembic `op.create_table`: `id` columns give the table's entity
    (`auth.users` -> user), `user_id ... REFERENCES auth.users` gives user. Reported at the
    generating call when a declared format for the entity differs (a uuid string in a `text`
    column, or a uuid in a `uuid` column, is fine). Test code is not reported.
    Evidence: `entity`, `generated`, `declared`, `column`, `declared_at`.

    ## Known problems
    Only the `id`/`<entity>_id` columns of `CREATE TABLE` are read; a type changed later by
    `ALTER TABLE` is not followed.
    """

    id, name = "AUT005", "unstable-id-format"
    severity = Severity.MEDIUM
    collector = "aut005"
    VALID = [
        Valid(
            """
            from uuid import uuid4

            def create_session(user_id):
                return {"id": str(uuid4()), "user_id": user_id}
            """,
            files={
                "app/schema.py": '''
                    SCHEMA = """
                    CREATE TABLE sessions (id UUID PRIMARY KEY, user_id INTEGER NOT NULL);
                    """
                ''',
            },
        ),
        Valid("""
            import uuid

            def new_upload(name):
                return {"file_id": uuid.uuid4().hex, "name": name}
        """),
        Valid("""
            import secrets

            def request_id(request):
                request_id = request.headers.get("x-request-id") or secrets.token_hex(8)
                return request_id
        """),
        Valid(
            """
            from uuid import uuid4

            def log_incident_event(db, description):
                uuid = uuid4()
                db.add(EventCreate(uuid=uuid, description=description))

            def log_case_event(db, description):
                id = str(uuid4())
                return {"id": id, "description": description}
            """,
            path="app/event/service.py",
            files={
                "app/schema.py": '''
                    SCHEMA = """
                    CREATE TABLE service (id INTEGER PRIMARY KEY);
                    """
                ''',
            },
        ),
    ]
    INVALID = [
        Invalid(
            """
            from uuid import uuid4

            _users_store = {}

            def create_user(email):
                user = {
                    "id": str(uuid4()),
                    "email": email,
                }
                _users_store[email] = user
                return user
            """,
            path="app/auth.py",
            files={
                "app/db/schema.py": '''
                    USERS = """
                    CREATE TABLE IF NOT EXISTS auth.users (
                        id SERIAL PRIMARY KEY,
                        email VARCHAR(255) NOT NULL UNIQUE
                    );
                    """
                ''',
            },
            line=7,
            evidence={
                "entity": "user",
                "generated": "uuid string",
                "declared": "integer",
                "column": "auth.users.id",
                "declared_at": "app/db/schema.py:3",
            },
        ),
        Invalid(
            """
            from sqlalchemy import Column, Integer
            from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
            import uuid

            class Base(DeclarativeBase):
                pass

            class Agent(Base):
                __tablename__ = "agents"
                id: Mapped[int] = mapped_column(primary_key=True)

            def register_agent(name):
                return Agent(id=uuid.uuid4(), name=name)
            """,
            line=13,
            evidence={"entity": "agent", "generated": "uuid", "declared": "integer"},
        ),
        Invalid(
            """
            _tasks = {}

            def add_task(title):
                task_id = len(_tasks) + 1
                _tasks[task_id] = title
            """,
            files={
                "migrations/0001.py": """
                    import sqlalchemy as sa
                    from alembic import op

                    def upgrade():
                        op.create_table("tasks", sa.Column("id", sa.UUID(), primary_key=True))
                """,
            },
            evidence={"entity": "task", "generated": "integer counter", "declared": "uuid"},
        ),
    ]

    def cache_inputs(self, project: ProjectContext) -> str:
        """The schema files are read in `finish`: their content is part of the cache key."""
        digest = hashlib.sha256()
        for path, text in _sql_sources(project):
            digest.update(f"{path}\0{text}\0".encode())
        return digest.hexdigest()

    @classmethod
    def collect(cls, ctx: FileContext) -> IdFacts:
        facts = IdFacts(declarations=_python_declarations(ctx))
        if is_test_path(ctx.path):
            return facts
        seen: set[int] = set()
        for node in ctx.nodes(ast.Call, ast.BinOp):
            generated = _generated(ctx, node)
            if not generated:
                continue
            top = node
            while True:
                parent = ctx.parents.get(top)
                if parent is None or id(parent) in seen:
                    break
                if (
                    isinstance(parent, (ast.Call, ast.Attribute, ast.JoinedStr))
                    and _generated(ctx, parent)
                ) or isinstance(parent, ast.FormattedValue):
                    top = parent
                    continue
                break
            if id(top) in seen:
                continue
            seen.add(id(top))
            stored = _id_key(ctx, top)
            if stored is None:
                continue
            key, hint = stored
            if generated in {"uuid", "uuid string"} and words(key)[-1:] == ["uuid"]:
                continue  # `uuid=uuid4()`: the key names the format it stores
            entities = [hint] if hint else [entity_of(n) for n in _owner_names(ctx, top)]
            entities = list(dict.fromkeys(e for e in entities if e))
            generated = _generated(ctx, top) or generated
            facts.generations.append(
                Generation(
                    ctx.finding(
                        cls,
                        top,
                        f"`{key}` is generated as a {generated}",
                        evidence={"key": key, "generated": generated},
                    ),
                    generated,
                    entities,
                )
            )
        return facts

    def finish(self, facts: Mapping[str, Any], project: ProjectContext) -> Iterator[Finding]:
        declared: dict[str, list[Declaration]] = {}
        python = [d for fact in facts.values() for d in fact.declarations]
        schema = [d for path, text in _sql_sources(project) for d in sql_declarations(text, path)]
        for declaration in [*python, *schema]:
            declared.setdefault(declaration.entity, []).append(declaration)
        for path in sorted(facts):
            for generation in facts[path].generations:
                conflict = next(
                    (
                        (entity, d)
                        for entity in generation.entities
                        for d in declared.get(entity, [])
                        if (generation.generated, d.format) not in _COMPATIBLE
                    ),
                    None,
                )
                if conflict is None:
                    continue
                entity, declaration = conflict
                finding = generation.finding
                yield replace(
                    finding,
                    message=f"{entity} ids are generated as a {generation.generated} here but"
                    f" `{declaration.column}` stores them as {declaration.format}"
                    f" ({declaration.where}); the format changes when the data is persisted",
                    evidence={
                        **finding.evidence,
                        "entity": entity,
                        "declared": declaration.format,
                        "column": declaration.column,
                        "declared_at": declaration.where,
                    },
                )
