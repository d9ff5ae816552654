"""schema import-users: the store's export into auth.users, ids and hashes kept, idempotent, one
transaction; a bad record is named by its position and nothing is written."""

from __future__ import annotations

import json
import uuid

import bcrypt
import psycopg
import pytest

from gathering_consolidate.schema import migrations
from gathering_consolidate.schema.users import UserImportError, import_users, read_dump
from tests.schema.conftest import snapshot

HASH = bcrypt.hashpw(b"correct horse", bcrypt.gensalt(4)).decode()


def _store(n: int = 3) -> dict[str, dict]:
    """The shape of the fixture app's `_users_store` (e-mail -> record), exported as JSON."""
    users = {}
    for i in range(n):
        email = f"user{i}@example.com"
        users[email] = {
            "id": str(uuid.uuid4()),
            "email": email,
            "name": f"User {i}",
            "password_hash": HASH,
            "is_active": True,
            "created_at": "2026-12-01T09:30:00+00:00",
        }
    return users


@pytest.mark.parametrize(
    ("dump", "message"),
    [
        ("[1, 2", "not valid JSON"),
        ('"x"', "expected an object"),
        ('[{"id": "a", "email": "a@x", "name": "A"}]', "record #1: `password_hash` must be"),
        (
            '[{"id": "a", "email": "a@x", "name": "A", "password_hash": "hunter2"}]',
            "record #1: `password_hash` does not look like a password hash",
        ),
        (
            json.dumps([{"id": "a b", "email": "a@x", "password_hash": HASH}]),
            "record #1: `id` 'a b' has spaces",
        ),
        (
            json.dumps({"a@x": {"id": "a", "email": "b@x", "password_hash": HASH}}),
            "record #1 (key 'a@x'): the key and `email` 'b@x' differ",
        ),
        (
            json.dumps(
                [
                    {"id": "a", "email": "a@x", "password_hash": HASH},
                    {
                        "id": "b",
                        "email": "b@x",
                        "password_hash": HASH,
                        "created_at": "2026-12-01T09:30",
                    },
                ]
            ),
            "record #2: `created_at` '2026-12-01T09:30' has no time zone",
        ),
        (
            json.dumps(
                [
                    {"id": "a", "email": "Ada@Example.com", "password_hash": HASH},
                    {"id": "b", "email": "b@x", "password_hash": HASH},
                    {"id": "c", "email": "ada@example.COM", "password_hash": HASH},
                ]
            ),
            "record #1 and record #3 have e-mails that differ only in case",
        ),
        (
            json.dumps([{"id": "a", "email": "a@x", "password_hash": HASH, "role": "x"}]),
            "unknown field",
        ),
    ],
)
def test_malformed_dumps_name_the_record(dump, message):
    with pytest.raises(UserImportError) as info:
        read_dump(dump, source="dump.json")
    assert message in str(info.value)
    assert str(info.value).startswith("dump.json: ")


@pytest.mark.postgres
def test_import_keeps_ids_and_hashes_and_is_idempotent(before_db):
    store = _store()
    records = read_dump(json.dumps(store))
    with pytest.raises(
        UserImportError, match="is at base: run `gathering-consolidate schema upgrade`"
    ):
        import_users(before_db, records)
    migrations.upgrade(before_db)
    first = import_users(before_db, records)
    assert (first.inserted, first.unchanged) == (3, 0)
    again = import_users(before_db, records)
    assert (again.inserted, again.unchanged) == (0, 3)
    with psycopg.connect(before_db) as conn:
        rows = conn.execute(
            "SELECT id, email, password_hash, created_at::text FROM auth.users"
            " WHERE email LIKE 'user%%' ORDER BY email"
        ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (u["id"], u["email"], u["password_hash"]) for u in store.values()
    ]
    assert all(r[3].startswith("2026-12-01 09:30:00") for r in rows)
    assert bcrypt.checkpw(b"correct horse", rows[0][2].encode())


@pytest.mark.postgres
def test_conflicts_write_nothing(before_db):
    migrations.upgrade(before_db)
    before = snapshot(before_db)
    store = _store(2)
    # the second record's e-mail belongs to a seeded account, in another case
    store["user1@example.com"]["email"] = "ADA@example.com"
    records = read_dump(json.dumps(list(store.values())))
    with pytest.raises(
        UserImportError, match=r"record #2: ADA@example\.com already belongs to user '1'"
    ):
        import_users(before_db, records)
    assert snapshot(before_db) == before  # the first record was not written either
    same_id = [dict(next(iter(_store(1).values())), id="2")]  # id of a seeded user, other e-mail
    with pytest.raises(
        UserImportError, match=r"id '2' is already in auth\.users with another e-mail"
    ):
        import_users(before_db, read_dump(json.dumps(same_id)))
    assert snapshot(before_db) == before
