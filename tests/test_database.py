"""gathering_consolidate.database: masked URLs, reachability messages, the embedded server's
lifecycle (stopped and removed on exit, exception, Ctrl-C, SIGTERM) and disposable databases."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from gathering_consolidate.database import (
    DatabaseError,
    Server,
    disposable_database,
    embedded_root,
    ensure_reachable,
    mask_url,
    postgres_server,
    with_database,
)
from tests.conftest import REPO


# -- URLs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:s3cret@h:5432/db", "postgresql://u:***@h:5432/db"),
        (
            "postgresql+psycopg://u:p%40ss@h/db?sslmode=require",
            "postgresql+psycopg://u:***@h/db?sslmode=require",
        ),
        ("postgresql://u@h/db?password=hunter2&x=1", "postgresql://u@h/db?password=***&x=1"),
        (
            "postgresql://postgres:@/postgres?host=/run/pg",
            "postgresql://postgres:@/postgres?host=/run/pg",
        ),
        ("host=h user=u password=hunter2 dbname=d", "host=h user=u password=*** dbname=d"),
        ("host=h password='two words' dbname=d", "host=h password=*** dbname=d"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked
    assert Server(url, embedded=False).masked() == masked


def test_with_database_keeps_credentials_and_socket_host():
    assert (
        with_database("postgresql://u:pw@h:5/old?sslmode=require", "new")
        == "postgresql://u:pw@h:5/new?sslmode=require"
    )
    assert (
        with_database("postgresql://postgres:@/postgres?host=/run/pg", "gc_1")
        == "postgresql://postgres:@/gc_1?host=/run/pg"
    )
    assert "dbname=gc_1" in with_database("host=h user=u dbname=x", "gc_1")


# -- a given server ------------------------------------------------------------------------------
def test_unreachable_server_is_one_clear_line_without_the_password():
    with pytest.raises(DatabaseError) as info, postgres_server("postgresql://u:pw@127.0.0.1:1/db"):
        pytest.fail("must not yield")
    message = str(info.value)
    assert "pw@" not in message
    assert "connection refused" in message
    assert "postgresql://u:***@127.0.0.1:1/db" in message
    assert "\n" not in message


def test_malformed_url_is_reported():
    with pytest.raises(DatabaseError, match="invalid database URL"):
        ensure_reachable("host=h password=topsecret nonsense")


@pytest.mark.postgres
def test_given_server_is_checked_and_yielded(pg_admin_url):
    with postgres_server(pg_admin_url) as server:
        assert server == Server(pg_admin_url, embedded=False)
    missing = with_database(pg_admin_url, "gc_no_such_database_here")
    with pytest.raises(DatabaseError, match="database gc_no_such_database_here does not exist"):
        ensure_reachable(missing)


@pytest.mark.postgres
def test_disposable_database_is_dropped_even_on_error(pg_admin_url):
    with (
        pytest.raises(RuntimeError, match="boom"),
        disposable_database(pg_admin_url, "gctest") as url,
    ):
        name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        assert name.startswith("gctest_")
        with psycopg.connect(url) as conn:  # a session left open is ended by the drop
            conn.execute("CREATE TABLE t (x int)")
            raise RuntimeError("boom")
    with psycopg.connect(pg_admin_url) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    assert found is None
    with pytest.raises(ValueError), disposable_database(pg_admin_url, "Bad-Prefix"):
        pass


# -- the embedded server -------------------------------------------------------------------------
def _postmaster_alive(pgdata: Path) -> bool:
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if str(pgdata) in cmdline and "postgres" in cmdline:
            return True
    return False


def _pgdata(server: Server) -> Path:
    return Path(psycopg.conninfo.conninfo_to_dict(server.url)["host"])


@pytest.fixture(scope="module")
def embedded():
    with postgres_server() as server:
        yield server


@pytest.mark.slow
def test_embedded_server_answers_only_on_a_socket(embedded):
    assert embedded.embedded
    pgdata = _pgdata(embedded)
    assert pgdata.parent == embedded_root()
    with psycopg.connect(embedded.url) as conn:
        listen = conn.execute("SHOW listen_addresses").fetchone()[0]
        assert listen == ""  # no TCP port at all
    with disposable_database(embedded.url) as url, psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0].startswith("gc_")


@pytest.mark.slow
def test_wrong_password_on_the_embedded_server(embedded):
    """The local server trusts 127.0.0.1 (pg_hba: trust), so a password is never checked there;
    the embedded server gets a password rule for one role instead."""
    pgdata = _pgdata(embedded)
    hba = pgdata / "pg_hba.conf"
    original = hba.read_text()
    with psycopg.connect(embedded.url, autocommit=True) as conn:
        conn.execute("CREATE ROLE gc_pw_test LOGIN PASSWORD 'right-one'")
        try:
            hba.write_text("local all gc_pw_test scram-sha-256\n" + original)
            conn.execute("SELECT pg_reload_conf()")
            time.sleep(0.3)
            wrong = embedded.url.replace("postgres:@", "gc_pw_test:wrong-one@")
            with pytest.raises(DatabaseError) as info:
                ensure_reachable(wrong)
            assert "wrong password for gc_pw_test" in str(info.value)
            assert "wrong-one" not in str(info.value)
            ensure_reachable(embedded.url.replace("postgres:@", "gc_pw_test:right-one@"))
        finally:
            hba.write_text(original)
            conn.execute("SELECT pg_reload_conf()")
            conn.execute("DROP ROLE gc_pw_test")


@pytest.mark.slow
def test_embedded_server_stopped_on_sigterm_and_stale_runs_swept():
    """SIGTERM inside the block unwinds it (SystemExit 143) and the server is stopped and removed;
    the start also swept a run folder whose owner process is dead (a SIGKILLed run)."""
    root = embedded_root()
    root.mkdir(parents=True, exist_ok=True)
    modes_before = {p: stat.S_IMODE(p.stat().st_mode) for p in root.parents}
    stale = root / "run-deadbeef0000"
    stale.mkdir(exist_ok=True)
    (stale / "PG_VERSION").write_text("16\n")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    owner = root / ".run-deadbeef0000.owner.json"
    owner.write_text(f'{{"pid": {int(dead.stdout)}, "pgdata": "{stale}"}}')
    handler_before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as info, postgres_server() as server:
        assert not stale.exists() and not owner.exists()
        pgdata = _pgdata(server)
        assert _postmaster_alive(pgdata)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        pytest.fail("SIGTERM did not unwind the block")
    assert info.value.code == 128 + signal.SIGTERM
    assert not pgdata.exists()
    assert not _postmaster_alive(pgdata)
    assert signal.getsignal(signal.SIGTERM) == handler_before
    if not any(root.glob(".run-*.owner.json")):  # no other run: the parents got their modes back
        assert {p: stat.S_IMODE(p.stat().st_mode) for p in root.parents} == modes_before


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from gathering_consolidate.database import postgres_server
    with postgres_server(data_dir=Path(sys.argv[1])) as server:
        print(server.url, flush=True)
        time.sleep(60)
    """
)


@pytest.mark.slow
def test_embedded_server_stopped_on_ctrl_c_in_another_process():
    """Also: a data folder the caller names (`data_dir`) is used, and removed."""
    data_dir = embedded_root() / f"custom-{os.getpid()}-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(data_dir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("postgresql://"), proc.stderr.read()
        pgdata = Path(psycopg.conninfo.conninfo_to_dict(url)["host"])
        assert pgdata == data_dir
        assert _postmaster_alive(pgdata)
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert not pgdata.exists()
    assert not _postmaster_alive(pgdata)
