"""Run the toolkit's alembic revisions against a database: upgrade, downgrade, current, the
offline SQL, the drift check. Plain data out; nothing here prints.

Before any change, the database's revision is read and checked (an unknown revision is refused,
nothing changed) and the data the plan would trip over is looked for (e-mails that differ only in
case, non-integer user ids on the way down): the refusal names the rows and changes nothing.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..database import DatabaseError, ensure_reachable, mask_url
from .profile import Profile, fill, load_profile

SCHEMA_DIR = Path(__file__).resolve().parent
Progress = Callable[[str], None]


class SchemaError(RuntimeError):
    """A schema command cannot go on; one line saying why (and that nothing changed, if so)."""


@dataclass(frozen=True)
class Step:
    revision: str
    direction: str  # "up" | "down"
    description: str
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class MigrationResult:
    database: str  # masked
    profile: str
    start: str | None
    end: str | None
    steps: list[Step] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "profile": self.profile,
            "start": self.start,
            "end": self.end,
            "steps": [s.to_dict() for s in self.steps],
        }


@dataclass(frozen=True)
class Revision:
    id: str
    down: str | None
    description: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CurrentState:
    database: str
    profile: str
    revision: str | None
    head: str
    pending: list[str]

    @property
    def at_head(self) -> bool:
        return self.revision == self.head

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "at_head": self.at_head}


@dataclass(frozen=True)
class DriftProblem:
    kind: str  # revision | table | column | type | nullable | index | constraint
    object: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DriftReport:
    database: str
    profile: str
    revision: str | None
    head: str
    problems: list[DriftProblem]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "profile": self.profile,
            "revision": self.revision,
            "head": self.head,
            "ok": self.ok,
            "problems": [p.to_dict() for p in self.problems],
        }


# -- alembic plumbing ------------------------------------------------------------------------------
def _config(profile: Profile, output: io.StringIO | None = None):
    from alembic.config import Config

    cfg = Config(output_buffer=output, stdout=io.StringIO())
    cfg.set_main_option("script_location", str(SCHEMA_DIR))
    cfg.attributes["profile"] = profile
    return cfg


def _script(profile: Profile):
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config(profile))


def revisions(profile: Profile | None = None) -> list[Revision]:
    """The revisions, base first."""
    script = _script(profile or load_profile())
    out = [
        Revision(r.revision, r.down_revision, _summary(r.module.__doc__ or ""))
        for r in script.walk_revisions()
    ]
    return list(reversed(out))


def _summary(doc: str) -> str:
    """The docstring's first paragraph, on one line."""
    return " ".join(doc.strip().split("\n\n", 1)[0].split())


def _engine(url: str):
    import psycopg
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    return sa.create_engine(
        "postgresql+psycopg://",
        creator=lambda: psycopg.connect(url, connect_timeout=5),
        poolclass=NullPool,
    )


def _read_revision(conn, profile: Profile) -> str | None:
    import sqlalchemy as sa

    table = f"{profile.version_table_schema}.{profile.version_table}"
    exists = conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": table}).scalar()
    if exists is None:
        return None
    query = fill("SELECT version_num FROM {table}", table=table)
    rows = [r[0] for r in conn.execute(sa.text(query))]
    if len(rows) > 1:
        raise SchemaError(f"version table {table} holds {len(rows)} rows ({', '.join(rows)})")
    return rows[0] if rows else None


def _known(profile: Profile, revision: str | None, url: str) -> None:
    if revision is None:
        return
    ids = {r.id for r in revisions(profile)}
    if revision not in ids:
        table = f"{profile.version_table_schema}.{profile.version_table}"
        raise SchemaError(
            f"{mask_url(url)} is at revision {revision!r}, which this gathering-consolidate does"
            f" not know (written to {table} by a newer version or another tool); nothing changed"
        )


def _prepare(url: str, profile: Profile) -> str | None:
    """Reachable, at a known revision: the current revision (None at base)."""
    try:
        ensure_reachable(url)
    except DatabaseError as exc:
        raise SchemaError(str(exc)) from None
    with _engine(url).connect() as conn:
        revision = _read_revision(conn, profile)
        conn.rollback()
    _known(profile, revision, url)
    return revision


def _between(profile: Profile, start: str | None, end: str | None) -> list[str]:
    """Revision ids after `start` up to and including `end` (base first)."""
    ids = [r.id for r in revisions(profile)]
    lo = ids.index(start) + 1 if start else 0
    hi = ids.index(end) + 1 if end else 0
    return ids[lo:hi]


def _resolve(profile: Profile, target: str) -> str | None:
    ids = [r.id for r in revisions(profile)]
    if target == "head":
        return ids[-1]
    if target == "base":
        return None
    matches = [i for i in ids if i == target or i.startswith(target)]
    if len(matches) != 1:
        raise SchemaError(
            f"unknown revision {target!r} (known: head, base, {', '.join(ids)})"
            if not matches
            else f"revision {target!r} is ambiguous: {', '.join(matches)}"
        )
    return matches[0]


# -- preflight -------------------------------------------------------------------------------------
def _preflight(url: str, profile: Profile, plan_up: list[str], plan_down: list[str]) -> None:
    """Refuse, before anything changes, a plan that would stop half-way on the data."""
    import sqlalchemy as sa

    with _engine(url).connect() as conn:
        users = conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": profile.users_table}).scalar()
        if users is None:
            if plan_up:
                raise SchemaError(
                    f"{profile.users_table} does not exist on {mask_url(url)}: apply the app's"
                    f" own schema first (profile {profile.name}); nothing changed"
                )
            return
        email = profile.email_column
        if "0002_users_constraints" in plan_up:
            dupes = conn.execute(
                sa.text(
                    fill(
                        "SELECT lower({email}) FROM {users} GROUP BY lower({email})"
                        " HAVING count(*) > 1 ORDER BY 1 LIMIT 10",
                        email=email,
                        users=profile.users_table,
                    )
                )
            ).scalars()
            found = list(dupes)
            if found:
                raise SchemaError(
                    f"{profile.users_table} holds e-mails that differ only in case"
                    f" ({', '.join(found)}): merge those accounts first; nothing changed"
                )
        if "0001_users_text_ids" in plan_down:
            odd = list(
                conn.execute(
                    sa.text(
                        fill(
                            "SELECT id::text FROM {users}"
                            " WHERE id::text !~ '^[0-9]{{1,9}}$' ORDER BY 1 LIMIT 10",
                            users=profile.users_table,
                        )
                    )
                ).scalars()
            )
            if odd:
                raise SchemaError(
                    f"cannot go below 0001_users_text_ids: {profile.users_table} holds ids that"
                    f" are not integers ({', '.join(odd)}); nothing changed"
                )
        conn.rollback()


# -- commands --------------------------------------------------------------------------------------
def _run(
    url: str,
    profile: Profile,
    direction: str,
    target: str,
    progress: Progress | None,
) -> MigrationResult:
    from alembic import command
    from sqlalchemy.exc import DBAPIError

    start = _prepare(url, profile)
    end = _resolve(profile, target)
    ids = [r.id for r in revisions(profile)]
    pos = {None: -1, **{i: n for n, i in enumerate(ids)}}
    if direction == "up" and pos[end] < pos[start]:
        raise SchemaError(f"the database is at {start}, past {target}: use `schema downgrade`")
    if direction == "down" and pos[end] > pos[start]:
        raise SchemaError(
            f"the database is at {start or 'base'}, below {target}: use `schema upgrade`"
        )
    plan_up = _between(profile, start, end) if direction == "up" else []
    plan_down = _between(profile, end, start) if direction == "down" else []
    _preflight(url, profile, plan_up, plan_down)
    steps: list[Step] = []
    described = {r.id: r.description for r in revisions(profile)}
    clock = [time.perf_counter()]

    def applied(ctx, step, heads, run_args) -> None:
        rev = step.up_revision_id if step.is_upgrade else (step.up_revision_id or "")
        now = time.perf_counter()
        steps.append(Step(rev, direction, described.get(rev, ""), round(now - clock[0], 3)))
        clock[0] = now
        if progress is not None:
            arrow = "upgraded to" if step.is_upgrade else "downgraded from"
            progress(f"{arrow} {rev}: {described.get(rev, '')}")

    cfg = _config(profile)
    cfg.attributes["on_version_apply"] = applied
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            if direction == "up":
                command.upgrade(cfg, end or "base")
            else:
                command.downgrade(cfg, end or "base")
    except DBAPIError as exc:
        plan = plan_up or list(reversed(plan_down))
        failed = plan[len(steps)] if len(steps) < len(plan) else "?"
        try:
            with _engine(url).connect() as conn:
                done = _read_revision(conn, profile) or "base"
        except (DBAPIError, SchemaError):
            done = "unknown"
        reason = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0]
        state = (
            "nothing changed"
            if not steps
            else f"the revisions before it are applied (the database is at {done})"
        )
        raise SchemaError(
            f"revision {failed} failed on {mask_url(url)}: {mask_url(reason)}; its transaction"
            f" was rolled back and its steps are safe to re-run; {state}"
        ) from None
    finally:
        engine.dispose()
    return MigrationResult(mask_url(url), profile.name, start, end, steps)


def upgrade(
    url: str,
    target: str = "head",
    *,
    profile: Profile | None = None,
    progress: Progress | None = None,
) -> MigrationResult:
    return _run(url, profile or load_profile(), "up", target, progress)


def downgrade(
    url: str,
    target: str = "base",
    *,
    profile: Profile | None = None,
    progress: Progress | None = None,
) -> MigrationResult:
    return _run(url, profile or load_profile(), "down", target, progress)


def current(url: str, *, profile: Profile | None = None) -> CurrentState:
    profile = profile or load_profile()
    revision = _prepare(url, profile)
    head = revisions(profile)[-1].id
    return CurrentState(
        mask_url(url), profile.name, revision, head, _between(profile, revision, head)
    )


def render_sql(
    *,
    profile: Profile | None = None,
    start: str | None = None,
    end: str = "head",
    downgrade: bool = False,
) -> str:
    """The SQL the revisions run (alembic's offline mode), from `start` (base) to `end`; with
    `downgrade`, from `end` back down to `start`."""
    from alembic import command

    profile = profile or load_profile()
    end_id = _resolve(profile, end)
    start_id = _resolve(profile, start) if start else None
    buffer = io.StringIO()
    cfg = _config(profile, buffer)
    if downgrade:
        command.downgrade(cfg, f"{end_id}:{start_id or 'base'}", sql=True)
    elif start_id:
        command.upgrade(cfg, f"{start_id}:{end_id}", sql=True)
    else:
        command.upgrade(cfg, end_id or "base", sql=True)
    return buffer.getvalue()


def check(url: str, *, profile: Profile | None = None) -> DriftReport:
    """Compare the database with the head schema: revision, tables, columns (alembic's
    autogenerate comparison), indexes and constraints (by name, valid)."""
    import sqlalchemy as sa
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from .models import expected_constraints, expected_indexes, head_metadata

    profile = profile or load_profile()
    revision = _prepare(url, profile)
    head = revisions(profile)[-1].id
    problems: list[DriftProblem] = []
    if revision != head:
        problems.append(
            DriftProblem(
                "revision",
                f"{profile.version_table_schema}.{profile.version_table}",
                f"at {revision or 'base'}, head is {head}"
                f" ({len(_between(profile, revision, head))} revision(s) to apply)",
            )
        )
    metadata = head_metadata(profile)
    modelled = {(t.schema, t.name): {c.name for c in t.columns} for t in metadata.tables.values()}

    def include(obj, name, type_, reflected, compare_to) -> bool:
        if type_ == "table":
            return (obj.schema, name) in modelled
        if type_ == "column":
            return not (reflected and compare_to is None)  # the app's own columns
        return False  # indexes and constraints: checked by name below

    def same_type(context, inspected_column, metadata_column, inspected_type, metadata_type):
        ints = (sa.Integer, sa.BigInteger, sa.SmallInteger)
        if isinstance(inspected_type, ints) and isinstance(metadata_type, ints):
            return False  # integer and bigint keys hold the same ids
        if isinstance(inspected_type, sa.String) and isinstance(metadata_type, sa.String):
            return False  # varchar(n) in an app's older table, text in a new one
        return None

    engine = _engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn,
                opts={
                    "include_schemas": True,
                    "include_object": include,
                    "include_name": lambda name, type_, parent: (
                        type_ != "schema" or name in {s for s, _ in modelled}
                    ),
                    "compare_type": same_type,
                },
            )
            for diff in _flatten(compare_metadata(ctx, metadata)):
                problems.append(_describe(diff))
            problems.extend(
                _catalog_problems(conn, profile, expected_indexes, expected_constraints)
            )
            conn.rollback()
    finally:
        engine.dispose()
    return DriftReport(mask_url(url), profile.name, revision, head, problems)


def _flatten(diffs):
    for diff in diffs:
        if isinstance(diff, list):
            yield from diff
        else:
            yield diff


def _describe(diff) -> DriftProblem:
    kind = diff[0]
    if kind == "add_table":
        table = diff[1]
        return DriftProblem("table", f"{table.schema}.{table.name}", "missing")
    if kind == "remove_table":
        table = diff[1]
        return DriftProblem("table", f"{table.schema}.{table.name}", "not in the head schema")
    if kind == "add_column":
        _, schema, table, column = diff
        return DriftProblem("column", f"{schema}.{table}.{column.name}", "missing")
    if kind == "modify_type":
        _, schema, table, column, _info, old, new = diff
        return DriftProblem("type", f"{schema}.{table}.{column}", f"is {old}, expected {new}")
    if kind == "modify_nullable":
        _, schema, table, column, _info, old, new = diff
        word = "nullable" if old else "NOT NULL"
        want = "nullable" if new else "NOT NULL"
        return DriftProblem("nullable", f"{schema}.{table}.{column}", f"is {word}, expected {want}")
    return DriftProblem("other", str(diff[1:2]), repr(diff))


def _catalog_problems(conn, profile, expected_indexes, expected_constraints) -> list[DriftProblem]:
    import sqlalchemy as sa

    problems = []
    for index in expected_indexes(profile):
        schema = index.table.split(".", 1)[0]
        row = conn.execute(
            sa.text(
                "SELECT i.indisvalid, i.indisunique, pg_get_indexdef(i.indexrelid),"
                " i.indrelid::regclass::text FROM pg_index AS i"
                " JOIN pg_class AS c ON c.oid = i.indexrelid"
                " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
                " WHERE n.nspname = :schema AND c.relname = :name"
            ),
            {"schema": schema, "name": index.name},
        ).first()
        where = f"{schema}.{index.name}"
        if row is None:
            problems.append(DriftProblem("index", where, f"missing (on {index.table})"))
            continue
        valid, unique, definition, table = row
        if not valid:
            problems.append(DriftProblem("index", where, "INVALID (a failed concurrent build)"))
        if unique != index.unique:
            problems.append(
                DriftProblem("index", where, f"unique is {unique}, expected {index.unique}")
            )
        if _normal(index.columns) not in _normal(definition) or table != index.table:
            problems.append(DriftProblem("index", where, f"is `{definition}`"))
    for constraint in expected_constraints(profile):
        row = conn.execute(
            sa.text(
                "SELECT contype, convalidated FROM pg_constraint"
                " WHERE conname = :name AND conrelid = to_regclass(:table)"
            ),
            {"name": constraint.name, "table": constraint.table},
        ).first()
        where = f"{constraint.table}.{constraint.name}"
        if row is None:
            problems.append(DriftProblem("constraint", where, "missing"))
        elif row[0] != constraint.kind:
            problems.append(
                DriftProblem("constraint", where, f"kind {row[0]}, expected {constraint.kind}")
            )
        elif not row[1]:
            problems.append(DriftProblem("constraint", where, "NOT VALID (never validated)"))
    return problems


def _normal(sql: str) -> str:
    """An index definition without casts, parentheses and spaces, for a containment test."""
    for cast in ("::character varying", "::text"):
        sql = sql.replace(cast, "")
    return "".join(ch for ch in sql if ch not in "() ")


def apply_sql_files(url: str, folder: Path) -> list[str]:
    """Apply `folder`'s *.sql files in name order (an app's own schema, as its runner would),
    each as one script in autocommit mode; the names applied."""
    import psycopg

    files = sorted(p for p in Path(folder).glob("*.sql") if p.is_file())
    if not files:
        raise SchemaError(f"no .sql files in {folder}")
    with psycopg.connect(url, autocommit=True) as conn:
        for path in files:
            try:
                conn.execute(path.read_text(encoding="utf-8"))
            except psycopg.Error as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                raise SchemaError(f"{path}: {first}") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise SchemaError(f"cannot read {path}: {exc}") from None
    return [p.name for p in files]
