"""Schema profiles: the table and column names the revisions work on (`rules/schema/*.toml`).

A profile is validated whole when loaded: every name must be a lower-case SQL identifier (tables
`schema.table`, columns `schema.table.column`), so the revisions can put names into SQL text
without quoting, and a typo is a `ProfileError` naming the key, not a failed migration.

The active profile is handed to the revisions through `active()` while alembic runs them
(`use(profile)` sets it for the duration of one command).
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PROFILE = "gathering"
_IDENT = r"[a-z_][a-z0-9_]{0,62}"
_TABLE = re.compile(rf"{_IDENT}\.{_IDENT}")
_COLUMN = re.compile(rf"{_IDENT}\.{_IDENT}\.{_IDENT}")
_NAME = re.compile(_IDENT)
_DURATION = re.compile(r"\d+(ms|s|min)?")
_ON_DELETE = ("CASCADE", "SET NULL", "RESTRICT", "NO ACTION")
_TYPE = re.compile(r"text|varchar\((\d+)\)|character varying\((\d+)\)")


class ProfileError(ValueError):
    """A schema profile that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Reference:
    """A column holding a user id, and its foreign key to the users table."""

    column: str  # schema.table.column
    constraint: str
    on_delete: str

    @property
    def table(self) -> str:
        return self.column.rsplit(".", 1)[0]

    @property
    def name(self) -> str:
        return self.column.rsplit(".", 1)[1]


@dataclass(frozen=True)
class Profile:
    name: str
    path: Path
    version_table: str
    version_table_schema: str
    lock_timeout: str
    statement_timeout: str
    users_table: str
    users_id_sequence: str
    email_column: str
    password_hash_column: str
    password_hash_type: str
    references: tuple[Reference, ...]
    blacklist_table: str
    blacklist_backfill_from: str
    blacklist_backfill_columns: tuple[str, ...]
    actions_table: str
    execution_log_table: str
    runs_table: str
    logs_table: str
    logs_table_preexists: bool
    logs_timestamp_column: str
    runs_log_column: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def password_hash_needs_widening(self) -> bool:
        match = _TYPE.fullmatch(self.password_hash_type)
        length = match and (match.group(1) or match.group(2))
        return bool(length) and int(length) < 255

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("extra", "path")}
        data["path"] = str(self.path)
        data["references"] = [r.__dict__ for r in self.references]
        return data


def profiles_dir() -> Path:
    from ..config import rules_dir

    return rules_dir() / "schema"


def load_profile(name_or_path: str | Path | None = None) -> Profile:
    """A profile by name (`rules/schema/<name>.toml`) or path; the fixture app's by default."""
    if name_or_path is None:
        name_or_path = DEFAULT_PROFILE
    candidate = Path(name_or_path)
    if candidate.suffix != ".toml" and candidate.parent == Path("."):
        path = profiles_dir() / f"{candidate}.toml"
        if not path.is_file():
            known = sorted(p.stem for p in profiles_dir().glob("*.toml"))
            raise ProfileError(
                f"unknown schema profile {name_or_path!r} (known: {', '.join(known)})"
            )
    else:
        path = candidate
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"cannot read schema profile {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from None
    return _parse(document, path)


def _parse(doc: dict[str, Any], path: Path) -> Profile:
    def section(name: str) -> dict[str, Any]:
        value = doc.get(name)
        if not isinstance(value, dict):
            raise ProfileError(f"{path}: missing section [{name}]")
        return value

    def get(sec: str, key: str, pattern: re.Pattern[str] | None, *, empty: bool = False) -> str:
        value = section(sec).get(key)
        if not isinstance(value, str):
            raise ProfileError(f"{path}: [{sec}] {key} must be a string")
        if empty and value == "":
            return value
        if pattern is not None and not pattern.fullmatch(value):
            raise ProfileError(f"{path}: [{sec}] {key} = {value!r} is not a lower-case SQL name")
        return value

    known = {"profile", "users", "token_blacklist", "scheduler", "pipeline_logs"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ProfileError(f"{path}: unknown section(s) {', '.join(unknown)}")
    references = []
    for i, ref in enumerate(section("users").get("references", [])):
        where = f"{path}: [[users.references]] #{i + 1}"
        if not isinstance(ref, dict):
            raise ProfileError(f"{where} must be a table")
        column, constraint = ref.get("column", ""), ref.get("constraint", "")
        on_delete = str(ref.get("on_delete", "NO ACTION")).upper()
        if not isinstance(column, str) or not _COLUMN.fullmatch(column):
            raise ProfileError(f"{where}: column {column!r} must be schema.table.column")
        if not isinstance(constraint, str) or not _NAME.fullmatch(constraint):
            raise ProfileError(f"{where}: constraint {constraint!r} is not a lower-case SQL name")
        if on_delete not in _ON_DELETE:
            raise ProfileError(f"{where}: on_delete must be one of {', '.join(_ON_DELETE)}")
        references.append(Reference(column, constraint, on_delete))
    for key in ("lock_timeout", "statement_timeout"):
        if not _DURATION.fullmatch(str(section("profile").get(key, ""))):
            raise ProfileError(f"{path}: [profile] {key} must look like 5s, 500ms or 2min")
    password_type = get("users", "password_hash_type", None).lower()
    if not _TYPE.fullmatch(password_type):
        raise ProfileError(
            f"{path}: [users] password_hash_type must be text or varchar(N), got {password_type!r}"
        )
    columns = section("token_blacklist").get("backfill_columns", [])
    backfill_from = get("token_blacklist", "backfill_from", _TABLE, empty=True)
    if backfill_from and (
        not isinstance(columns, list)
        or len(columns) != 4
        or not all(isinstance(c, str) and _NAME.fullmatch(c) for c in columns)
    ):
        raise ProfileError(
            f"{path}: [token_blacklist] backfill_columns must name 4 columns"
            " (token id, user id, expiry, revocation time)"
        )
    preexists = section("pipeline_logs").get("logs_table_preexists", False)
    if not isinstance(preexists, bool):
        raise ProfileError(f"{path}: [pipeline_logs] logs_table_preexists must be true or false")
    return Profile(
        name=get("profile", "name", _NAME),
        path=path,
        version_table=get("profile", "version_table", _NAME),
        version_table_schema=get("profile", "version_table_schema", _NAME),
        lock_timeout=section("profile")["lock_timeout"],
        statement_timeout=section("profile")["statement_timeout"],
        users_table=get("users", "table", _TABLE),
        users_id_sequence=get("users", "id_sequence", _TABLE),
        email_column=get("users", "email_column", _NAME),
        password_hash_column=get("users", "password_hash_column", _NAME),
        password_hash_type=password_type,
        references=tuple(references),
        blacklist_table=get("token_blacklist", "table", _TABLE),
        blacklist_backfill_from=backfill_from,
        blacklist_backfill_columns=tuple(columns) if backfill_from else (),
        actions_table=get("scheduler", "actions_table", _TABLE),
        execution_log_table=get("scheduler", "execution_log_table", _TABLE),
        runs_table=get("pipeline_logs", "runs_table", _TABLE),
        logs_table=get("pipeline_logs", "logs_table", _TABLE),
        logs_table_preexists=preexists,
        logs_timestamp_column=get("pipeline_logs", "timestamp_column", _NAME),
        runs_log_column=get("pipeline_logs", "runs_log_column", _NAME, empty=True),
    )


_ACTIVE: contextvars.ContextVar[Profile | None] = contextvars.ContextVar(
    "gathering_consolidate_schema_profile", default=None
)


def active() -> Profile:
    """The profile of the running schema command (the default one outside of any)."""
    profile = _ACTIVE.get()
    return profile if profile is not None else load_profile()


@contextlib.contextmanager
def use(profile: Profile) -> Iterator[Profile]:
    token = _ACTIVE.set(profile)
    try:
        yield profile
    finally:
        _ACTIVE.reset(token)


# What a name slot may hold: a (schema-qualified) lower-case identifier, a column type the profile
# allows, a number or duration, an ON DELETE action. Profiles are validated when loaded; this is
# the last gate before the text becomes SQL.
_VALUE = re.compile(
    r"[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*){0,2}|(?:varchar|character varying)\(\d+\)"
    r"|\d+(?:ms|s|min)?|CASCADE|SET NULL|RESTRICT|NO ACTION"
)


def fill(template: str, **names: str) -> str:
    """`template` (a revision's constant) with `{name}` slots filled by checked names."""
    for key, value in names.items():
        if not isinstance(value, str) or not _VALUE.fullmatch(value):
            raise ValueError(f"schema profile value {key}={value!r} is not a lower-case SQL name")
    return template.format(**names)


def short(table: str) -> str:
    """`schema.table` -> `table` (index and constraint names are per schema)."""
    return table.split(".", 1)[1]
