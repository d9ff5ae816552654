"""The revisions on a database holding the before app's data: the round trip keeps every row and
user id, the claim table lets exactly one of two claimants win, bad states are refused before any
change, the drift check sees what differs from the head schema."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from gathering_consolidate.database import disposable_database, postgres_server
from gathering_consolidate.schema import migrations
from gathering_consolidate.schema.migrations import SchemaError
from tests.schema.conftest import apply_before_schema, snapshot

HEAD = migrations.revisions()[-1].id


def _round_trip(url: str) -> None:
    before = snapshot(url)
    up = migrations.upgrade(url)
    assert [s.revision for s in up.steps] == [r.id for r in migrations.revisions()]
    assert migrations.current(url).at_head
    assert snapshot(url) == before
    with psycopg.connect(url) as conn:
        kind = conn.execute(
            "SELECT data_type FROM information_schema.columns"
            " WHERE table_schema = 'auth' AND table_name = 'users' AND column_name = 'id'"
        ).fetchone()[0]
        assert kind == "text"
        # the backfilled blacklist: one row per revoked token, same user ids
        blacklist = conn.execute(
            "SELECT token_id, user_id FROM auth.token_blacklist ORDER BY token_id"
        ).fetchall()
        assert blacklist == before["revoked"]
    assert migrations.check(url).ok
    down = migrations.downgrade(url, "base")
    assert len(down.steps) == len(up.steps)
    assert migrations.current(url).revision is None
    assert snapshot(url) == before
    with psycopg.connect(url) as conn:
        kind = conn.execute(
            "SELECT data_type, column_default FROM information_schema.columns"
            " WHERE table_schema = 'auth' AND table_name = 'users' AND column_name = 'id'"
        ).fetchone()
        assert kind == ("integer", "nextval('auth.users_id_seq'::regclass)")
        # the before app still inserts users the way it did
        conn.execute("INSERT INTO auth.users (email, name, password_hash) VALUES ('d@x', 'D', 'h')")
    again = migrations.upgrade(url)
    assert len(again.steps) == len(up.steps)
    assert migrations.check(url).ok


@pytest.mark.postgres
def test_round_trip_keeps_rows_and_user_ids(before_db):
    _round_trip(before_db)


@pytest.mark.postgres
@pytest.mark.slow
def test_round_trip_on_the_embedded_server():
    with postgres_server() as server, disposable_database(server.url) as url:
        assert server.embedded
        apply_before_schema(url)
        _round_trip(url)


@pytest.mark.postgres
def test_two_claims_of_the_same_run_exactly_one_wins(before_db):
    migrations.upgrade(before_db)
    with psycopg.connect(before_db) as conn:
        action = conn.execute("SELECT min(id) FROM orchestration.scheduled_actions").fetchone()[0]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def claim() -> None:
        with psycopg.connect(before_db) as conn:
            barrier.wait()
            try:
                conn.execute(
                    "INSERT INTO orchestration.execution_log (action_id, scheduled_for)"
                    " VALUES (%s, '2026-12-02T03:00:00+00:00')",
                    (action,),
                )
                conn.commit()
                outcomes.append("won")
            except psycopg.errors.UniqueViolation:
                outcomes.append("lost")

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["lost", "won"]
    with psycopg.connect(before_db) as conn:
        # ON CONFLICT DO NOTHING: the loser sees no row and does not execute
        again = conn.execute(
            "INSERT INTO orchestration.execution_log (action_id, scheduled_for)"
            " VALUES (%s, '2026-12-02T03:00:00+00:00') ON CONFLICT DO NOTHING RETURNING id",
            (action,),
        ).fetchone()
        assert again is None
        # the next slot is a new run
        assert conn.execute(
            "INSERT INTO orchestration.execution_log (action_id, scheduled_for)"
            " VALUES (%s, '2026-12-02T04:00:00+00:00') RETURNING id",
            (action,),
        ).fetchone()
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "UPDATE orchestration.scheduled_actions SET execution_status = 'lost' WHERE id = %s",
                (action,),
            )


def _version_rows(url: str) -> list:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT version_num FROM public.gathering_consolidate_revision"
        ).fetchall()


@pytest.mark.postgres
def test_unknown_revision_is_refused_and_nothing_changes(before_db):
    migrations.upgrade(before_db, "0001")
    with psycopg.connect(before_db) as conn:
        conn.execute("UPDATE public.gathering_consolidate_revision SET version_num = 'ffff_future'")
    before = snapshot(before_db)
    for run in (migrations.upgrade, migrations.downgrade, migrations.current):
        with pytest.raises(SchemaError, match="at revision 'ffff_future', which this") as info:
            run(before_db)
        assert "nothing changed" in str(info.value)
    assert snapshot(before_db) == before
    assert _version_rows(before_db) == [("ffff_future",)]


@pytest.mark.postgres
def test_emails_differing_only_in_case_are_refused_before_any_change(before_db):
    with psycopg.connect(before_db) as conn:
        conn.execute(
            "INSERT INTO auth.users (email, name, password_hash) VALUES ('ADA@example.com', 'A', 'h')"
        )
    before = snapshot(before_db)
    with pytest.raises(
        SchemaError, match=r"differ only in case \(ada@example.com\).*nothing changed"
    ):
        migrations.upgrade(before_db)
    assert snapshot(before_db) == before
    with psycopg.connect(before_db) as conn:
        exists = conn.execute(
            "SELECT to_regclass('public.gathering_consolidate_revision')"
        ).fetchone()
    assert exists == (None,)


@pytest.mark.postgres
def test_downgrade_refused_while_uuid_ids_exist(before_db):
    migrations.upgrade(before_db)
    new_id = str(uuid.uuid4())
    with psycopg.connect(before_db) as conn:
        conn.execute(
            "INSERT INTO auth.users (id, email, name, password_hash) VALUES (%s, 'n@x', 'N', 'h')",
            (new_id,),
        )
        default_id = conn.execute(
            "INSERT INTO auth.users (email, name, password_hash) VALUES ('m@x', 'M', 'h') RETURNING id"
        ).fetchone()[0]
    assert uuid.UUID(default_id)  # the default is a UUID string too
    with pytest.raises(SchemaError, match=f"not integers .*{new_id[:8]}.*nothing changed"):
        migrations.downgrade(before_db, "base")
    assert migrations.current(before_db).at_head
    # going down to a revision above 0001 is fine
    migrations.downgrade(before_db, "0001")
    assert migrations.current(before_db).revision == "0001_users_text_ids"


@pytest.mark.postgres
def test_drift_check_names_what_differs(before_db):
    report = migrations.check(before_db)
    kinds = {p.kind for p in report.problems}
    assert {"revision", "table", "index", "constraint"} <= kinds
    migrations.upgrade(before_db)
    assert migrations.check(before_db).problems == []
    with psycopg.connect(before_db) as conn:
        conn.execute("DROP INDEX auth.users_email_lower_key")
        conn.execute(
            "ALTER TABLE orchestration.execution_log ALTER COLUMN error TYPE integer USING NULL"
        )
        conn.execute("ALTER TABLE orchestration.scheduled_actions DROP COLUMN execution_started_at")
    problems = {(p.kind, p.object) for p in migrations.check(before_db).problems}
    assert problems == {
        ("index", "auth.users_email_lower_key"),
        ("type", "orchestration.execution_log.error"),
        ("column", "orchestration.scheduled_actions.execution_started_at"),
    }


@pytest.mark.postgres
def test_missing_app_schema_is_refused(fresh_database):
    with pytest.raises(SchemaError, match=r"auth\.users does not exist.*nothing changed"):
        migrations.upgrade(fresh_database)
    with pytest.raises(SchemaError, match="unknown revision 'nope'"):
        apply_before_schema(fresh_database, seed=False)
        migrations.upgrade(fresh_database, "nope")


def test_offline_sql_has_every_revision_and_no_percent_doubling():
    text = migrations.render_sql()
    for rev in migrations.revisions():
        assert f"-> {rev.id}" in text
    assert "%%" not in text
    assert text.count("CREATE UNIQUE INDEX CONCURRENTLY") == 1
    assert "SET lock_timeout = '5s';" in text
    down = migrations.render_sql(downgrade=True)
    assert "DROP TABLE IF EXISTS auth.token_blacklist" in down
    partial = migrations.render_sql(start="0003")
    assert "0003_scheduler_claims -> 0004" in partial and "-> 0003_scheduler" not in partial


@pytest.mark.postgres
def test_a_lock_held_elsewhere_times_out_cleanly(before_db, tmp_path):
    """A long transaction holds auth.users: the upgrade waits lock_timeout, then fails with the
    revision named and nothing changed (it never queues forever behind it)."""
    from gathering_consolidate.schema.profile import load_profile, profiles_dir

    text = (profiles_dir() / "gathering.toml").read_text()
    path = tmp_path / "quick.toml"
    path.write_text(text.replace('lock_timeout = "5s"', 'lock_timeout = "300ms"'))
    profile = load_profile(path)
    before = snapshot(before_db)
    with psycopg.connect(before_db) as holder:
        holder.execute("LOCK TABLE circle.members IN ACCESS SHARE MODE")
        with pytest.raises(SchemaError) as info:
            migrations.upgrade(before_db, profile=profile)
        holder.rollback()
    message = str(info.value)
    assert "revision 0001_users_text_ids failed" in message
    assert "lock timeout" in message
    assert "nothing changed" in message
    assert snapshot(before_db) == before
    assert migrations.current(before_db).revision is None
    assert len(migrations.upgrade(before_db, profile=profile).steps) == 5  # fine once released
