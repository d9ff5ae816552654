"""`verify` at run time, on the real PostgreSQL: the before app fails the checks it must fail,
the consolidated app passes them all, and the runtime leaves nothing behind when a check's app
is killed, on Ctrl-C, on a busy port, with an app that never gets healthy and with an unreachable
database (each with a clear message).

Every test starts real processes (uvicorn, locust) through the CLI or the library and checks
afterwards, with psutil and the catalog, that no process it saw and no database it created is
left.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import FIXTURE_APP, REPO

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CLI = str(Path(sys.executable).with_name("gathering-consolidate"))
CONSOLIDATED = REPO / "fixtures" / "gathering_app_consolidated"


def _database_exists(admin_url: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            is not None
        )


def _created_database(stderr: str) -> str:
    for line in stderr.splitlines():
        if line.startswith("database ") and " created" in line:
            return line.split()[1]
    raise AssertionError(f"no 'database ... created' line in:\n{stderr}")


def _gone(pids: list[int], timeout: float = 10) -> list[int]:
    """The pids still alive (zombies count as gone) after up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


class _Verify:
    """The CLI in a subprocess, its stderr read line by line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [CLI, "verify", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
        self.lines: list[str] = []
        self.seen: set[int] = set()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        assert self.proc.stderr is not None
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            self.track()
            if text in line:
                return
        raise AssertionError(f"{text!r} never appeared:\n" + "\n".join(self.lines))

    def track(self) -> list[psutil.Process]:
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        self.seen.update(child.pid for child in children)
        return children

    def child(self, word: str, timeout: float = 10) -> psutil.Process:
        """The child process whose command line holds `word` (waits for it to appear)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for child in self.track():
                try:
                    if word in " ".join(child.cmdline()):
                        return child
                except psutil.NoSuchProcess:
                    continue
            time.sleep(0.1)
        raise AssertionError(f"no child process with {word!r}")

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, "\n".join(self.lines) + "\n" + err


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "verify", *args], capture_output=True, text=True, timeout=timeout)


def test_before_app_fails_and_names_what_fails(pg_admin_url):
    from gathering_consolidate.verify import verify

    result = verify(
        FIXTURE_APP, app=None, profile="gathering_app", database_url=pg_admin_url, python=None,
        checks=["auth-contract", "injection", "pipelines", "rate-limit", "startup-guard"],
    )  # fmt: skip
    by_name = {c.name: c for c in result.checks}
    assert not result.passed
    assert {n: c.status for n, c in by_name.items()} == dict.fromkeys(by_name, "fail")
    assert by_name["auth-contract"].summary.startswith("restart: a token issued before the restart")
    assert any("gc_verify_canary: 5 -> 0 rows" in e for e in by_name["injection"].evidence)
    assert any("/agents/search" in e and "500" in e for e in by_name["injection"].evidence)
    assert by_name["pipelines"].summary.startswith("a cyclic pipeline was accepted at creation")
    assert "got no 429" in by_name["rate-limit"].summary
    assert "DISABLE_AUTH=1 and answered /health" in by_name["startup-guard"].summary
    assert not _database_exists(pg_admin_url, result.database.rsplit("/", 1)[1])


def test_after_only_the_codemods_loop_and_injection_pass_auth_and_pipelines_fail(
    pg_admin_url, tmp_path
):
    """What the codemods fix (the blocked event loop, injectable SQL) and what is left for a
    person (users in memory, simulated pipeline runs), shown by the same verify."""
    import shutil

    from gathering_consolidate.codemods.engine import apply, plan_migration
    from gathering_consolidate.verify import verify

    app = tmp_path / "app"
    shutil.copytree(FIXTURE_APP, app, ignore=shutil.ignore_patterns("__pycache__"))
    for codemod in ("async-db", "parameterise-sql"):
        plan = plan_migration(app, codemod, unsafe_fixes=True)
        assert plan.changes and not plan.failures, codemod
        apply(plan)
    result = verify(
        app, app=None, profile="gathering_app", database_url=pg_admin_url, python=None,
        checks=["auth-contract", "event-loop", "injection", "pipelines"],
    )  # fmt: skip
    statuses = {c.name: c.status for c in result.checks}
    assert statuses == {
        "auth-contract": "fail", "event-loop": "pass", "injection": "pass", "pipelines": "fail",
    }, {c.name: c.summary for c in result.checks}  # fmt: skip


@pytest.mark.skipif(
    not (CONSOLIDATED / "gathering").is_dir(), reason="the consolidated fixture is not there"
)
def test_consolidated_app_passes_every_check(pg_admin_url):
    from gathering_consolidate.verify import verify

    result = verify(
        CONSOLIDATED, app=None, profile="gathering_app_consolidated", database_url=pg_admin_url,
        python=None, checks=None,
    )  # fmt: skip
    failing = {c.name: (c.status, c.summary) for c in result.checks if c.status != "pass"}
    assert failing == {}
    event_loop = next(c for c in result.checks if c.name == "event-loop")
    assert event_loop.metrics["health_p95_ms"] < event_loop.metrics["health_limit_ms"]


def test_app_killed_during_a_check_is_an_error_and_nothing_is_left(pg_admin_url):
    run = _Verify(str(FIXTURE_APP), "--profile", "gathering_app", "--database-url", pg_admin_url,
                  "--check", "event-loop", "-f", "json")  # fmt: skip
    run.wait_for("event-loop: locust")
    run.child("locust")
    run.child("uvicorn").send_signal(signal.SIGKILL)
    code, out, err = run.finish()
    assert code == 1, err
    check = json.loads(out)["checks"][0]
    assert check["status"] == "error"
    assert "the app process ended (signal 9)" in check["summary"]
    assert _gone(sorted(run.seen)) == []
    assert not _database_exists(pg_admin_url, _created_database(err))


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_stops_every_process_and_drops_the_database(pg_admin_url, sig, code):
    run = _Verify(str(FIXTURE_APP), "--profile", "gathering_app", "--database-url", pg_admin_url,
                  "--check", "event-loop")  # fmt: skip
    run.wait_for("event-loop: locust")
    run.child("locust")
    run.proc.send_signal(sig)
    returncode, _out, err = run.finish(timeout=60)
    assert returncode == code, err
    if sig == signal.SIGINT:
        assert "interrupted: the app and locust were stopped and the database dropped" in err
    assert _gone(sorted(run.seen)) == []
    assert not _database_exists(pg_admin_url, _created_database(err))


def test_busy_port_is_a_clear_error(pg_admin_url, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        profile = tmp_path / "busy.toml"
        profile.write_text(textwrap.dedent(f"""\
            [target]
            app = "gathering.api.main:app"
            port = {port}
            [database]
            schema = ["schema/*.sql"]
            [env]
            DATABASE_URL = "{{database_url}}"
            """))  # fmt: skip
        result = _run(str(FIXTURE_APP), "--profile", str(profile), "--database-url", pg_admin_url)
    assert result.returncode == 2, result.stderr
    assert f"error: the app did not start: port 127.0.0.1:{port} is busy" in result.stderr
    assert not _database_exists(pg_admin_url, _created_database(result.stderr))


def test_app_that_never_gets_healthy_is_stopped(pg_admin_url, tmp_path):
    module = f"never_healthy_{secrets.token_hex(4)}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent("""\
        from fastapi import FastAPI
        from fastapi.responses import JSONResponse

        app = FastAPI()

        @app.get("/health")
        async def health():
            return JSONResponse({"status": "starting"}, status_code=503)
        """))  # fmt: skip
    profile = tmp_path / "never.toml"
    profile.write_text('[target]\nhealth = "/health"\nstartup_timeout = 3\n')
    result = _run(str(tmp_path), "--app", f"{module}:app", "--profile", str(profile),
                  "--database-url", pg_admin_url)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "did not answer /health below 500 within 3 s" in result.stderr
    left = [
        p for p in psutil.process_iter(["cmdline"]) if module in " ".join(p.info["cmdline"] or [])
    ]
    assert left == []
    assert not _database_exists(pg_admin_url, _created_database(result.stderr))


def test_unreachable_database_is_a_clear_error():
    result = _run(str(FIXTURE_APP), "--profile", "gathering_app",
                  "--database-url", "postgresql://postgres@127.0.0.1:1/test")  # fmt: skip
    assert result.returncode == 2
    assert (
        "error: database: cannot connect to postgresql://postgres@127.0.0.1:1/test" in result.stderr
    )
    assert "connection refused" in result.stderr


def test_detect_blocking_lists_the_blocking_call_with_its_audit_finding(pg_admin_url, tmp_path):
    """A tiny app whose async handler sleeps synchronously: blockbuster (in record mode) catches
    `time.sleep` on the event loop at the handler's line, which the audit flags as ASY."""
    from gathering_consolidate.verify import verify

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "tiny"\nversion = "0"\n')
    (tmp_path / "tiny_app.py").write_text(textwrap.dedent("""\
        import time

        from fastapi import FastAPI

        app = FastAPI()


        @app.get("/health")
        async def health():
            return {"ok": True}


        @app.get("/work")
        async def work():
            time.sleep(0.05)
            return {"done": True}
        """))  # fmt: skip
    profile = tmp_path / "tiny.toml"
    profile.write_text(textwrap.dedent("""\
        [target]
        app = "tiny_app:app"
        [load]
        endpoints = [{ name = "work", path = "/work" }]
        users = 4
        run_time = 3
        """))  # fmt: skip
    result = verify(
        tmp_path, app=None, profile=profile, database_url=pg_admin_url, python=None,
        checks=["event-loop"], detect_blocking=True,
    )  # fmt: skip
    check = result.checks[0]
    sites = [e for e in check.evidence if e.startswith("blocking: ")]
    assert any(s.startswith("blocking: tiny_app.py:15 work(): time.sleep") for s in sites), sites
    assert any("tiny_app.py:15" in s and "matches ASY" in s for s in sites), sites
    assert check.metrics["blocking_sites"] >= 1


def test_init_profile_drafts_a_loadable_profile_from_the_running_app(pg_admin_url, tmp_path):
    from gathering_consolidate.verify.profile import load_profile

    result = _run(str(FIXTURE_APP), "--profile", "gathering_app", "--database-url", pg_admin_url,
                  "--init-profile", "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    draft = tmp_path / "draft.toml"
    draft.write_text(result.stdout)
    profile = load_profile(draft)
    assert profile.get("target", "app") == "gathering.api.main:app"
    assert profile.get("auth", "register")["path"] == "/auth/register"
    assert profile.get("auth", "login")["form"] == {"username": "{email}", "password": "{password}"}
    assert profile.get("auth", "contract") == load_profile("gathering_app").get("auth", "contract")


@pytest.mark.skipif(
    not (os.environ.get("GC_TEST_TEMPLATE_BACKEND") and os.environ.get("GC_TEST_TEMPLATE_PYTHON")),
    reason="GC_TEST_TEMPLATE_BACKEND / GC_TEST_TEMPLATE_PYTHON name no prepared template "
    "(see rules/targets/full_stack_fastapi_template.toml)",
)
def test_full_stack_template_in_its_own_environment(pg_admin_url):
    """An app nobody here wrote, with its dependencies in its own virtualenv (--python): its
    users live in PostgreSQL, so the auth contract holds across a restart; the other checks
    pass or are not applicable with the profile's reason, except the rate limit it lacks."""
    from gathering_consolidate.verify import verify

    result = verify(
        Path(os.environ["GC_TEST_TEMPLATE_BACKEND"]), app=None,
        profile="full_stack_fastapi_template", database_url=pg_admin_url,
        python=os.environ["GC_TEST_TEMPLATE_PYTHON"], checks=None,
    )  # fmt: skip
    statuses = {c.name: c.status for c in result.checks}
    assert statuses == {
        "auth-contract": "pass", "event-loop": "pass", "injection": "pass",
        "pipelines": "not-applicable", "schedules": "not-applicable",
        "rate-limit": "fail", "startup-guard": "pass",
    }, {c.name: c.summary for c in result.checks}  # fmt: skip
