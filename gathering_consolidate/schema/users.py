"""Import users from an in-memory store's export into the users table (head schema).

The export is JSON in the shape of the fixture app's store (`_users_store`: e-mail -> record), a
list of records, or `{"users": [...]}`; a record has `id` (kept: the API's string id),
`email`, `name`, `password_hash` (kept as is: bcrypt `$2b$...`, argon2 `$argon2id$...`; anything
that does not look like a hash is refused, plain-text passwords never reach the table),
optional `is_active`, `is_admin`, and `created_at` (ISO 8601 with a time zone).

All records are checked before the database is touched; a malformed one is reported with its
position and nothing is written. The import is one transaction and idempotent: a record already
present with the same id, e-mail and hash is left alone; the same id with other data, or the same
e-mail (ignoring case) under another id, is a conflict and nothing is written.
"""

from __future__ import annotations

import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..database import DatabaseError, ensure_reachable, mask_url
from .profile import Profile, fill, load_profile

_HASH = re.compile(
    r"\$(2[abxy]\$\d\d\$[./A-Za-z0-9]{53}|argon2(id|i|d)\$.+|scrypt\$.+|pbkdf2[-_].+)"
)
_ID = re.compile(r"[^\s]{1,255}")
_KNOWN = {"id", "email", "name", "password_hash", "is_active", "is_admin", "created_at"}


class UserImportError(ValueError):
    """The dump or the import cannot be used; one line with the record's position."""


@dataclass(frozen=True)
class UserRecord:
    position: str  # "record #3 (key 'ada@example.com')"
    id: str
    email: str
    name: str
    password_hash: str
    is_active: bool
    is_admin: bool
    created_at: datetime | None


@dataclass(frozen=True)
class ImportResult:
    database: str
    table: str
    inserted: int
    unchanged: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def read_dump(text: str, *, source: str = "dump") -> list[UserRecord]:
    """Parse and check every record; raise `UserImportError` naming the first bad one."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UserImportError(f"{source}: not valid JSON: {exc}") from None
    if isinstance(data, dict) and set(data) == {"users"} and isinstance(data["users"], list):
        data = data["users"]
    if isinstance(data, dict):
        items = [(f"record #{n} (key {k!r})", k, v) for n, (k, v) in enumerate(data.items(), 1)]
    elif isinstance(data, list):
        items = [(f"record #{n}", None, v) for n, v in enumerate(data, 1)]
    else:
        raise UserImportError(
            f"{source}: expected an object (e-mail -> user), a list of users or"
            f' {{"users": [...]}}, got {type(data).__name__}'
        )
    records = [_record(source, where, key, value) for where, key, value in items]
    _no_duplicates(source, records)
    return records


def _record(source: str, position: str, key: str | None, value: Any) -> UserRecord:
    where = f"{source}: {position}"
    if not isinstance(value, dict):
        raise UserImportError(f"{where}: expected an object, got {type(value).__name__}")
    unknown = sorted(set(value) - _KNOWN)
    if unknown:
        raise UserImportError(f"{where}: unknown field(s) {', '.join(unknown)}")

    def text(name: str) -> str:
        v = value.get(name)
        if not isinstance(v, str) or not v.strip():
            raise UserImportError(f"{where}: `{name}` must be a non-empty string")
        return v

    user_id = text("id")
    if not _ID.fullmatch(user_id):
        raise UserImportError(f"{where}: `id` {user_id!r} has spaces or is over 255 characters")
    email = text("email").strip()
    if "@" not in email or len(email) > 255:
        raise UserImportError(f"{where}: `email` {email!r} is not an e-mail address")
    if key is not None and key.strip().lower() != email.lower():
        raise UserImportError(f"{where}: the key and `email` {email!r} differ")
    password_hash = text("password_hash")
    if not _HASH.fullmatch(password_hash):
        raise UserImportError(
            f"{where}: `password_hash` does not look like a password hash (bcrypt $2b$...,"
            " argon2 $argon2id$..., scrypt, pbkdf2); plain-text passwords are never imported"
        )
    name = value.get("name", "")
    if not isinstance(name, str):
        raise UserImportError(f"{where}: `name` must be a string")
    flags = {}
    for flag, default in (("is_active", True), ("is_admin", False)):
        v = value.get(flag, default)
        if not isinstance(v, bool):
            raise UserImportError(f"{where}: `{flag}` must be true or false")
        flags[flag] = v
    created = value.get("created_at")
    created_at = None
    if created is not None:
        if not isinstance(created, str):
            raise UserImportError(f"{where}: `created_at` must be an ISO 8601 string")
        try:
            created_at = datetime.fromisoformat(created)
        except ValueError:
            raise UserImportError(f"{where}: `created_at` {created!r} is not ISO 8601") from None
        if created_at.tzinfo is None:
            raise UserImportError(
                f"{where}: `created_at` {created!r} has no time zone (which one was it?)"
            )
    return UserRecord(position, user_id, email, name, password_hash, created_at=created_at, **flags)


def _no_duplicates(source: str, records: list[UserRecord]) -> None:
    by_id: dict[str, UserRecord] = {}
    by_email: dict[str, UserRecord] = {}
    for r in records:
        if r.id in by_id:
            raise UserImportError(
                f"{source}: {by_id[r.id].position} and {r.position} have the same id {r.id!r}"
            )
        folded = r.email.lower()
        if folded in by_email:
            first = by_email[folded]
            raise UserImportError(
                f"{source}: {first.position} and {r.position} have e-mails that differ only in case"
                f" ({first.email}, {r.email}): one account per address; merge them first"
            )
        by_id[r.id] = r
        by_email[folded] = r


def import_users(
    url: str, records: list[UserRecord], *, profile: Profile | None = None
) -> ImportResult:
    """Insert the records in one transaction (see the module docstring)."""
    import psycopg

    from .migrations import SchemaError, current

    profile = profile or load_profile()
    table = profile.users_table
    try:
        ensure_reachable(url)
        state = current(url, profile=profile)
    except (DatabaseError, SchemaError) as exc:
        raise UserImportError(str(exc)) from None
    if state.revision is None:
        raise UserImportError(
            f"{mask_url(url)} is at base: run `gathering-consolidate schema upgrade` first"
            f" ({table}.id must hold text ids)"
        )
    schema, name = table.split(".", 1)
    email, password = profile.email_column, profile.password_hash_column
    try:
        with psycopg.connect(url) as conn:
            columns = {
                row[0]: row[1:]
                for row in conn.execute(
                    "SELECT column_name, is_nullable, column_default FROM information_schema.columns"
                    " WHERE table_schema = %s AND table_name = %s",
                    (schema, name),
                )
            }
            wanted = ["id", email, "name", password, "is_active", "is_admin", "created_at"]
            present = [c for c in wanted if c in columns]
            required = [
                c
                for c, (nullable, default) in columns.items()
                if nullable == "NO" and default is None and c not in present
            ]
            if required:
                raise UserImportError(
                    f"{table} requires column(s) the dump has no value for: {', '.join(required)}"
                )
            ids = [r.id for r in records]
            folded = [r.email.lower() for r in records]
            existing = conn.execute(
                fill(
                    "SELECT id::text, {email}, {password} FROM {users}"
                    " WHERE id::text = ANY(%s) OR lower({email}) = ANY(%s)",
                    users=table,
                    email=email,
                    password=password,
                ),
                (ids, folded),
            ).fetchall()
            by_id = {row[0]: row for row in existing}
            by_email = {row[1].lower(): row for row in existing}
            to_insert = []
            unchanged = 0
            for r in records:
                same_id, same_email = by_id.get(r.id), by_email.get(r.email.lower())
                if same_id is not None:
                    same_hash = hmac.compare_digest(same_id[2].encode(), r.password_hash.encode())
                    if same_id[1].lower() != r.email.lower() or not same_hash:
                        raise UserImportError(
                            f"{r.position}: id {r.id!r} is already in {table} with another"
                            " e-mail or password hash; nothing written"
                        )
                    unchanged += 1
                elif same_email is not None:
                    raise UserImportError(
                        f"{r.position}: {r.email} already belongs to user {same_email[0]!r} in"
                        f" {table} (e-mails are unique ignoring case); nothing written"
                    )
                else:
                    to_insert.append(r)
            values = {
                "id": lambda r: r.id,
                email: lambda r: r.email,
                "name": lambda r: r.name,
                password: lambda r: r.password_hash,
                "is_active": lambda r: r.is_active,
                "is_admin": lambda r: r.is_admin,
                "created_at": lambda r: r.created_at,
            }
            slots = ", ".join("%s" if c != "created_at" else "coalesce(%s, now())" for c in present)
            statement = fill(
                "INSERT INTO {users} ("
                + ", ".join(f"{{c{i}}}" for i in range(len(present)))
                + f") VALUES ({slots})",
                users=table,
                **{f"c{i}": c for i, c in enumerate(present)},
            )
            with conn.cursor() as cur:
                cur.executemany(statement, [[values[c](r) for c in present] for r in to_insert])
            conn.commit()
    except psycopg.errors.UniqueViolation as exc:
        raise UserImportError(
            f"a user was added to {table} during the import ({_first(exc)}); nothing written"
        ) from None
    except psycopg.Error as exc:
        raise UserImportError(
            f"import into {table} failed: {_first(exc)}; nothing written"
        ) from None
    return ImportResult(mask_url(url), table, len(to_insert), unchanged)


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
