"""Migration lint: render alembic revisions to SQL and check the SQL with squawk.

Our own revisions are rendered by alembic's offline mode (`migrations.render_sql`). A target's
revisions are NOT imported or run (they are code of the audited tree): each revision file is read
with `ast`, and the `op.*` calls of its `upgrade()` whose arguments are literals and SQLAlchemy
constructs (`sa.Column(...)`, `postgresql.JSONB()`, `sa.text("...")`, `sa.func.now()`) are replayed
on an offline alembic context, which gives the SQL alembic would emit. Anything else (loops, helper
functions, `op.get_bind()` data migrations, names imported from the project, `op.batch_alter_table`)
is listed as not rendered, with its line and why, so the coverage of the lint is visible.

Only names reached through SQLAlchemy's public schema, type and SQL-expression modules are ever
called (no `_private` names, no `sqlalchemy.util`, `engine`, `orm`, ...), with values built the
same way: the lint runs none of the target's code.

Every violation is mapped back to the revision file and line of the statement that produced it.
An inline `-- squawk-ignore RULE` in our own SQL must follow a comment giving its reason; one
without is itself a violation (`ignore-without-reason`).
"""

from __future__ import annotations

import ast
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SQUAWK_TIMEOUT_S = 120
_MARK = "-- gc-source: "
_VERSION_TABLE_REASON = "alembic's own version table (one varchar(32) row, created once, empty)"


class LintError(RuntimeError):
    """The lint cannot run (no squawk, unreadable path); one line."""


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str
    path: str
    line: int | None
    statement: str
    help: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Ignored:
    rule: str
    reason: str
    path: str
    line: int | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class NotRendered:
    path: str
    line: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class LintResult:
    target: str
    files: int
    statements: int
    violations: list[Violation] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    not_rendered: list[NotRendered] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def by_rule(self) -> dict[str, int]:
        return dict(Counter(v.rule for v in self.violations).most_common())

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "files": self.files,
            "statements": self.statements,
            "ok": self.ok,
            "by_rule": self.by_rule(),
            "violations": [v.to_dict() for v in self.violations],
            "ignored": [i.to_dict() for i in self.ignored],
            "not_rendered": [n.to_dict() for n in self.not_rendered],
        }


# -- squawk ----------------------------------------------------------------------------------------
def squawk_binary() -> str:
    here = str(Path(sys.executable).parent)
    found = shutil.which("squawk", path=here + os.pathsep + os.environ.get("PATH", ""))
    if found is None:
        raise LintError("squawk not found (pip install squawk-cli)")
    return found


def _squawk(files: list[Path]) -> list[dict[str, Any]]:
    if not files:
        return []
    try:
        proc = subprocess.run(
            [squawk_binary(), "--reporter", "json", *map(str, files)],
            capture_output=True,
            text=True,
            timeout=SQUAWK_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LintError(f"squawk took more than {SQUAWK_TIMEOUT_S} s") from None
    try:
        return json.loads(proc.stdout or "[]")
    except ValueError:
        first = (proc.stderr or proc.stdout).strip().splitlines()[:1]
        raise LintError(f"squawk failed (exit {proc.returncode}): {first}") from None


def _statement_at(lines: list[str], line: int) -> str:
    return lines[line].strip() if 0 <= line < len(lines) else ""


# -- our own revisions -----------------------------------------------------------------------------
def lint_own(profile=None) -> LintResult:
    """Render the toolkit's revisions (upgrade path) and lint them."""
    from .migrations import SCHEMA_DIR, render_sql, revisions
    from .profile import load_profile

    profile = profile or load_profile()
    # Statements alembic itself writes into the rendered SQL, and why their findings are not ours.
    alembic_own = (
        (
            f"CREATE TABLE {profile.version_table_schema}.{profile.version_table}",
            _VERSION_TABLE_REASON,
        ),
    )
    text = render_sql(profile=profile)
    lines = text.splitlines()
    revision_at: list[str | None] = []
    current: str | None = None
    for line in lines:
        if line.startswith("-- Running upgrade"):
            current = line.rsplit("-> ", 1)[1].strip()
        revision_at.append(current)

    def where(line: int) -> str:
        rev = revision_at[line] if 0 <= line < len(revision_at) else None
        versions = SCHEMA_DIR / "versions"
        return str(versions / f"{rev}.py") if rev else "(alembic)"

    ignored, violations = _inline_ignores(lines, where)
    with tempfile.TemporaryDirectory(prefix="gc-lint-") as tmp:
        path = Path(tmp) / "revisions.sql"
        path.write_text(text, encoding="utf-8")
        raw = _squawk([path])
    for item in raw:
        line = int(item.get("line", 0))
        statement = _statement_at(lines, line)
        own = next((why for start, why in alembic_own if _statement_of(lines, line, start)), None)
        if own is not None:
            ignored.append(Ignored(item["rule_name"], own, "(alembic)", line + 1))
            continue
        violations.append(
            Violation(
                item["rule_name"],
                item.get("message", ""),
                where(line),
                line + 1,
                statement,
                item.get("help") or "",
            )
        )
    statements = sum(1 for ln in lines if ln.rstrip().endswith(";"))
    return LintResult(
        "gathering-consolidate revisions", len(revisions(profile)), statements, violations, ignored
    )


def _statement_of(lines: list[str], line: int, start: str) -> bool:
    """Whether the statement holding `line` starts with `start`."""
    i = line
    while i > 0 and lines[i - 1].strip() and not lines[i - 1].rstrip().endswith(";"):
        i -= 1
    return lines[i].strip().startswith(start) if 0 <= i < len(lines) else False


def _inline_ignores(lines: list[str], where) -> tuple[list[Ignored], list[Violation]]:
    ignored: list[Ignored] = []
    problems: list[Violation] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped.startswith("-- squawk-ignore"):
            continue
        rules = stripped.removeprefix("-- squawk-ignore").strip()
        previous = lines[i - 1].strip() if i else ""
        reason = previous[3:].strip() if previous.startswith("-- ") else ""
        if not reason or previous.startswith("-- squawk-ignore"):
            problems.append(
                Violation(
                    "ignore-without-reason",
                    f"`-- squawk-ignore {rules}` has no reason on the line above",
                    where(i),
                    i + 1,
                    stripped,
                )
            )
            continue
        for rule in (r.strip() for r in rules.split(",")):
            ignored.append(Ignored(rule, reason, where(i), i + 1))
    return ignored, problems


# -- a target's revisions or SQL files ---------------------------------------------------------
def lint_path(path: Path) -> LintResult:
    """Lint `.sql` files and alembic revision files (read statically) at `path`."""
    path = Path(path)
    if not path.exists():
        raise LintError(f"{path}: no such file or directory")
    if path.is_file():
        files = [path]
    else:
        files = sorted(
            p
            for p in path.rglob("*")
            if p.suffix in (".py", ".sql")
            and p.is_file()
            and not p.is_symlink()
            and not _hidden(p, path)
        )
    violations: list[Violation] = []
    not_rendered: list[NotRendered] = []
    rendered: list[tuple[Path, Path, str]] = []  # (source, sql file, text)
    statements = 0
    revision_files = 0
    with tempfile.TemporaryDirectory(prefix="gc-lint-") as tmp:
        for n, source in enumerate(files):
            if source.suffix == ".sql":
                try:
                    text = source.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise LintError(f"cannot read {source}: {exc}") from None
                rendered.append((source, source, text))
                statements += text.count(";")
                revision_files += 1
                continue
            try:
                code = source.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise LintError(f"cannot read {source}: {exc}") from None
            try:
                tree = ast.parse(code, filename=str(source))
            except SyntaxError as exc:
                not_rendered.append(
                    NotRendered(str(source), exc.lineno or 0, f"syntax error: {exc.msg}")
                )
                continue
            if not _is_revision(tree):
                continue
            revision_files += 1
            text, count, skipped = render_revision(tree, str(source))
            not_rendered.extend(skipped)
            statements += count
            if count:
                out = Path(tmp) / f"{n:05d}.sql"
                out.write_text(text, encoding="utf-8")
                rendered.append((source, out, text))
        raw = _squawk([sql for _, sql, _ in rendered])
    by_file = {str(sql): (source, text.splitlines()) for source, sql, text in rendered}
    for item in raw:
        source, lines = by_file.get(item.get("file", ""), (Path(item.get("file", "?")), []))
        line = int(item.get("line", 0))
        origin_line = _origin(lines, line) if source.suffix == ".py" else line + 1
        violations.append(
            Violation(
                item["rule_name"],
                item.get("message", ""),
                str(source),
                origin_line,
                _statement_at(lines, line),
                item.get("help") or "",
            )
        )
    violations.sort(key=lambda v: (v.path, v.line or 0, v.rule))
    return LintResult(str(path), revision_files, statements, violations, [], not_rendered)


def _hidden(p: Path, root: Path) -> bool:
    return any(
        part.startswith(".") or part in ("node_modules", "__pycache__")
        for part in p.relative_to(root).parts
    )


def _origin(lines: list[str], line: int) -> int | None:
    for i in range(min(line, len(lines) - 1), -1, -1):
        if lines[i].startswith(_MARK):
            return int(lines[i].rsplit(":", 1)[1])
    return None


def _is_revision(tree: ast.Module) -> bool:
    names = set()
    has_upgrade = False
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.FunctionDef) and node.name == "upgrade":
            has_upgrade = True
    return has_upgrade and "revision" in names


# -- the static renderer ---------------------------------------------------------------------------
class _Unrenderable(Exception):
    pass


_SA_MODULES = (
    "sqlalchemy",
    "sqlalchemy.types",
    "sqlalchemy.schema",
    "sqlalchemy.sql",
    "sqlalchemy.sql.expression",
    "sqlalchemy.sql.functions",
    "sqlalchemy.sql.sqltypes",
    "sqlalchemy.dialects",
    "sqlalchemy.dialects.postgresql",
)
_OPS = frozenset(
    {
        "add_column",
        "alter_column",
        "bulk_insert",
        "create_check_constraint",
        "create_exclude_constraint",
        "create_foreign_key",
        "create_index",
        "create_primary_key",
        "create_table",
        "create_table_comment",
        "create_unique_constraint",
        "drop_column",
        "drop_constraint",
        "drop_index",
        "drop_table",
        "drop_table_comment",
        "execute",
        "f",
        "inline_literal",
        "rename_table",
    }
)


class _OpSentinel:
    """`op` as the revision imported it."""


class _Unknown:
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _safe_module(obj) -> bool:
    import types

    return isinstance(obj, types.ModuleType) and obj.__name__ in _SA_MODULES


def _safe_callable(obj) -> bool:
    import sqlalchemy as sa
    from sqlalchemy.sql.functions import _FunctionGenerator

    if isinstance(obj, _FunctionGenerator):
        return True
    if isinstance(obj, type):
        return issubclass(obj, (sa.types.TypeEngine, sa.schema.SchemaItem, sa.sql.ClauseElement))
    module = getattr(obj, "__module__", "") or ""
    name = getattr(obj, "__name__", "") or ""
    return (
        callable(obj)
        and not name.startswith("_")
        and module.startswith(("sqlalchemy.sql.", "sqlalchemy.dialects.postgresql"))
    )


_MAX_TEXT = 1_000_000  # characters of one string a revision may build


def _import_names(tree: ast.Module) -> dict[str, object]:
    import importlib

    names: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                target = alias.name if alias.asname else alias.name.split(".")[0]
                if target in _SA_MODULES:
                    names[bound] = importlib.import_module(target)
                else:
                    names[bound] = _Unknown(f"`{bound}` comes from `{alias.name}`, not evaluated")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                bound = alias.asname or alias.name
                if node.module == "alembic" and alias.name == "op":
                    names[bound] = _OpSentinel()
                elif node.module in _SA_MODULES and not alias.name.startswith("_"):
                    module = importlib.import_module(node.module)
                    value = getattr(module, alias.name, None)
                    if value is None:
                        try:
                            value = importlib.import_module(f"{node.module}.{alias.name}")
                        except ImportError:
                            value = None
                    ok = value is not None and (_safe_module(value) or _safe_callable(value))
                    names[bound] = value if ok else _Unknown(f"`{bound}` from `{node.module}`")
                else:
                    names[bound] = _Unknown(f"`{bound}` comes from `{node.module}`, not evaluated")
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                names[alias.asname or alias.name] = _Unknown(
                    f"`{alias.asname or alias.name}` is a relative import, not evaluated"
                )
    return names


class _Renderer:
    def __init__(self, names: dict[str, object], operations) -> None:
        self.names = dict(names)
        self.op = operations

    # expressions
    def eval(self, node: ast.expr):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items = [self.eval(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise _Unrenderable("`**` in a dict literal")
            return {self.eval(k): self.eval(v) for k, v in zip(node.keys, node.values, strict=True)}
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            value = self.eval(node.operand)
            if isinstance(value, (int, float)):
                return -value
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.eval(node.left), self.eval(node.right)
            if isinstance(left, str) and isinstance(right, str):
                if len(left) + len(right) > _MAX_TEXT:  # `s = s + s` repeated: bounded
                    raise _Unrenderable("a string longer than the lint reads")
                return left + right
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                if isinstance(value, ast.Constant):
                    parts.append(str(value.value))
                else:
                    inner = self.eval(value.value)
                    if not isinstance(inner, (str, int, float)):
                        raise _Unrenderable("an f-string with a non-literal value")
                    parts.append(str(inner))
            text = "".join(parts)
            if len(text) > _MAX_TEXT:
                raise _Unrenderable("a string longer than the lint reads")
            return text
        if isinstance(node, ast.Name):
            if node.id in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[node.id]
            if node.id not in self.names:
                raise _Unrenderable(f"`{node.id}` is not defined in the revision")
            value = self.names[node.id]
            if isinstance(value, _Unknown):
                raise _Unrenderable(value.reason)
            return value
        if isinstance(node, ast.Attribute):
            return self._attribute(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise _Unrenderable(f"a {type(node).__name__} expression")

    def _attribute(self, node: ast.Attribute):
        from sqlalchemy.sql.functions import _FunctionGenerator

        if node.attr.startswith("_"):
            raise _Unrenderable(f"private name `{node.attr}`")
        base = self.eval(node.value)
        if isinstance(base, _OpSentinel):
            if node.attr not in _OPS:
                raise _Unrenderable(f"`op.{node.attr}` (not a schema operation)")
            return getattr(self.op, node.attr)
        if _safe_module(base) or isinstance(base, _FunctionGenerator):
            value = getattr(base, node.attr, None)
            if value is None and _safe_module(base):
                import importlib

                try:
                    value = importlib.import_module(f"{base.__name__}.{node.attr}")
                except ImportError:
                    value = None
            if value is not None and (_safe_module(value) or _safe_callable(value)):
                return value
        raise _Unrenderable(f"attribute `{ast.unparse(node)}`")

    def _call(self, node: ast.Call):
        func = self.eval(node.func)
        is_op = getattr(func, "__self__", None) is self.op
        if not (is_op or _safe_callable(func)):
            raise _Unrenderable(f"call to `{ast.unparse(node.func)}`")
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
            k.arg is None for k in node.keywords
        ):
            raise _Unrenderable("`*args` or `**kwargs` in a call")
        args = [self.eval(a) for a in node.args]
        kwargs = {k.arg: self.eval(k.value) for k in node.keywords}
        return func(*args, **kwargs)

    # statements
    def run(self, body: list[ast.stmt], source: str, out: io.StringIO, skipped: list) -> int:
        count = 0
        for stmt in body:
            if isinstance(stmt, ast.Pass) or (
                isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            ):
                continue
            if isinstance(stmt, ast.Return):
                break
            try:
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
                    callee = stmt.value.func
                    if not (
                        isinstance(callee, ast.Attribute)
                        and isinstance(self.names.get(getattr(callee.value, "id", "")), _OpSentinel)
                    ):
                        raise _Unrenderable(f"call to `{ast.unparse(callee)}` (not an op.* call)")
                    out.write(f"{_MARK}{source}:{stmt.lineno}\n")
                    self.eval(stmt.value)
                    count += 1
                elif isinstance(stmt, ast.Assign) and all(
                    isinstance(t, ast.Name) for t in stmt.targets
                ):
                    try:
                        value = self.eval(stmt.value)
                    except _Unrenderable as exc:
                        value = _Unknown(f"`{ast.unparse(stmt.targets[0])}` = {exc}")
                    for target in stmt.targets:
                        self.names[target.id] = value
                elif isinstance(stmt, ast.With) and _is_autocommit(stmt):
                    with self.op.get_context().autocommit_block():
                        count += self.run(stmt.body, source, out, skipped)
                elif isinstance(stmt, ast.With):
                    raise _Unrenderable(f"`with {ast.unparse(stmt.items[0])}` block")
                else:
                    kind = type(stmt).__name__.lower()
                    raise _Unrenderable(
                        f"`{kind}` statement (not followed: only op.* calls and assignments are)"
                    )
            except _Unrenderable as exc:
                skipped.append(NotRendered(source, stmt.lineno, str(exc)))
            except Exception as exc:  # consolidate: ignore[EXC001] SQLAlchemy/alembic reject the revision's arguments (any error type): that statement is listed as not rendered, the rest goes on
                skipped.append(
                    NotRendered(source, stmt.lineno, f"alembic could not render it: {exc!r}"[:300])
                )
        return count


def _is_autocommit(stmt: ast.With) -> bool:
    return len(stmt.items) == 1 and ast.unparse(stmt.items[0].context_expr) == (
        "op.get_context().autocommit_block()"
    )


def render_revision(tree: ast.Module, source: str) -> tuple[str, int, list[NotRendered]]:
    """The SQL of the revision's `upgrade()` as alembic's offline mode writes it, each statement
    after a `-- gc-source: FILE:LINE` marker; the number of op calls rendered; what was not."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    out = io.StringIO()
    ctx = MigrationContext.configure(
        dialect_name="postgresql",
        opts={"as_sql": True, "output_buffer": out, "literal_binds": True},
    )
    operations = Operations(ctx)
    names = _import_names(tree)
    renderer = _Renderer(names, operations)
    # module-level constants (revision ids, enum value lists, table names)
    for node in tree.body:
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            try:
                value = renderer.eval(node.value)
            except _Unrenderable as exc:
                value = _Unknown(f"`{ast.unparse(node.targets[0])}` = {exc}")
            except Exception as exc:  # consolidate: ignore[EXC001] a module constant SQLAlchemy rejects only makes the statements using it not rendered
                value = _Unknown(f"`{ast.unparse(node.targets[0])}`: {exc!r}"[:200])
            for target in node.targets:
                renderer.names[target.id] = value
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            renderer.names[node.name] = _Unknown(
                f"`{node.name}` is a helper of the revision, not followed"
            )
    upgrade = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade")
    skipped: list[NotRendered] = []
    with ctx.begin_transaction():
        count = renderer.run(upgrade.body, source, out, skipped)
    return out.getvalue(), count, skipped
