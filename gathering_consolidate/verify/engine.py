"""The verify run: a PostgreSQL (the given server, else an embedded one), a database verify
creates (or the given one when it is marked disposable), the target's schema, the app under
uvicorn, the checks one after another, and everything stopped and dropped at the end, also on
failure, timeout and Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gathering_consolidate.verify import checks as checks_mod
from gathering_consolidate.verify.catalog import (
    SchemaError,
    apply_sql_files,
    drop_canary,
    plant_canary,
    schema_files,
)
from gathering_consolidate.verify.checks import Outcome
from gathering_consolidate.verify.context import CheckFailed, NotApplicable, VerifyContext, short
from gathering_consolidate.verify.profile import Profile, ProfileError, fill, load_profile
from gathering_consolidate.verify.results import CheckResult, VerifyResult
from gathering_consolidate.verify.runtime import (
    AppCrashed,
    AppProcess,
    RuntimeStartError,
    spawn,
    stop_process,
)

SETUP_TIMEOUT_S = 180.0


class VerifyError(RuntimeError):
    """The run could not start (bad profile, unreachable database, schema failure, an app that
    never gets healthy); the message is one clear paragraph."""


def resolve_python(python: str | None) -> str:
    """The interpreter to run the target with: a python executable or a virtual environment
    folder (its bin/python); default the toolkit's own interpreter."""
    if not python:
        return sys.executable
    path = Path(python).expanduser()
    if path.is_dir():
        for candidate in (path / "bin" / "python", path / "Scripts" / "python.exe"):
            if candidate.exists():
                return str(candidate.absolute())
        raise VerifyError(f"--python {python}: no bin/python in that folder")
    if not path.exists():
        raise VerifyError(f"--python {python}: no such interpreter")
    return str(path.absolute())


def database_values(url: str) -> dict[str, str]:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    return {
        "database_url": url,
        "db_host": str(params.get("host", "127.0.0.1")),
        "db_port": str(params.get("port", "5432")),
        "db_user": str(params.get("user", os.environ.get("USER", "postgres"))),
        "db_password": str(params.get("password", "")),
        "db_name": str(params.get("dbname", "")),
    }


def run_setup(commands: list[list[str]], *, cwd: Path, env: dict[str, str]) -> list[str]:
    """The profile's setup commands (alembic, seed scripts) in the target's environment."""
    import tempfile

    done = []
    for argv in commands:
        with tempfile.TemporaryFile() as log:
            proc = spawn(argv, cwd=cwd, env={**os.environ, **env}, stdout=log)
            try:
                code = proc.wait(timeout=SETUP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise SchemaError(
                    f"setup command {' '.join(argv)} did not finish within {SETUP_TIMEOUT_S:.0f} s"
                ) from None
            finally:  # also on Ctrl-C; a no-op once it exited (what it left in its group goes)
                stop_process(proc)
            if code != 0:
                log.seek(0)
                tail = log.read().decode(errors="replace").strip().splitlines()[-8:]
                shown = "\n".join("    " + line for line in tail)
                raise SchemaError(f"setup command {' '.join(argv)} exited with {code}:\n{shown}")
        done.append(" ".join(argv))
    return done


def verify(
    target: Path,
    *,
    app: str | None,
    profile: str | Path | None,
    database_url: str | None,
    python: str | None,
    checks: list[str] | None,
    progress: Callable[[str], None] | None = None,
    workers: int = 0,
    detect_blocking: bool = False,
    disposable: bool = False,
) -> VerifyResult:
    """Verify the app in `target` (see the module docstring). Raises `VerifyError` when the run
    cannot start; a check that cannot finish is an "error" result, the others still run."""
    try:
        selected = checks_mod.select(checks)
    except ValueError as exc:
        raise VerifyError(str(exc)) from None
    if workers < 0:
        raise VerifyError("--workers must be 0 or more")
    say = progress or (lambda _message: None)
    with session(
        target, app=app, profile=profile, database_url=database_url, python=python,
        progress=progress, workers=workers, detect_blocking=detect_blocking,
        disposable=disposable,
    ) as (ctx, result):  # fmt: skip
        for module in selected:
            result.checks.append(_run_check(ctx, module, say))
    return result


def draft_profile(
    target: Path,
    *,
    app: str | None,
    profile: str | Path | None,
    database_url: str | None,
    python: str | None,
    progress: Callable[[str], None] | None = None,
    disposable: bool = False,
) -> str:
    """Start the app as `verify` does and draft a profile (TOML text) from its OpenAPI."""
    from gathering_consolidate.verify.draft import draft_from_openapi

    with session(
        target, app=app, profile=profile, database_url=database_url, python=python,
        progress=progress, disposable=disposable,
    ) as (ctx, _result):  # fmt: skip
        return draft_from_openapi(ctx.openapi(), app=ctx.app.app, base=ctx.profile)


@contextlib.contextmanager
def session(
    target: Path,
    *,
    app: str | None,
    profile: str | Path | None,
    database_url: str | None,
    python: str | None,
    progress: Callable[[str], None] | None = None,
    workers: int = 0,
    detect_blocking: bool = False,
    disposable: bool = False,
):
    """A database with the target's schema and the app running on it, as a `VerifyContext`
    (and the `VerifyResult` to fill); everything is stopped and dropped on exit."""
    from gathering_consolidate.database import (
        DatabaseError,
        disposable_database,
        mask_url,
        postgres_server,
    )

    say = progress or (lambda _message: None)
    target = Path(target).absolute()
    if not target.is_dir():
        raise VerifyError(f"{target} is not a directory")
    try:
        prof = load_profile(profile)
    except ProfileError as exc:
        raise VerifyError(str(exc)) from None
    app_spec = app or prof.get("target", "app")
    if not app_spec or ":" not in str(app_spec):
        raise VerifyError("--app MODULE:ATTR is required (the profile names no [target] app)")
    interpreter = resolve_python(python)
    cwd = (target / str(prof.get("target", "cwd", "."))).resolve()
    if not cwd.is_dir():
        raise VerifyError(f"the profile's [target] cwd {cwd} is not a directory")

    result = VerifyResult(
        target=str(target), app=str(app_spec), profile=prof.source, database="(none)"
    )
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(postgres_server(database_url))
            say(f"PostgreSQL: {server.masked()}{' (embedded)' if server.embedded else ''}")
            if disposable:
                db_url = server.url
                say("using the given database as is (--disposable)")
            else:
                db_url = stack.enter_context(disposable_database(server.url, prefix="gc_verify"))
                say(f"database {_dbname(db_url)} created (dropped at the end)")
        except DatabaseError as exc:
            raise VerifyError(f"database: {exc}") from None
        result.database = mask_url(db_url)
        values: dict[str, object] = {
            **database_values(db_url), "python": interpreter, "target": str(target),
        }  # fmt: skip
        env = {k: str(v) for k, v in fill(prof.section("env"), values).items()}
        try:
            patterns = [str(p) for p in prof.get("database", "schema", [])]
            if patterns:
                applied = apply_sql_files(db_url, schema_files(target, patterns))
                say(f"schema: applied {', '.join(applied)}")
            setup = fill(prof.get("database", "setup", []), values)
            if setup:
                for line in run_setup([[str(a) for a in argv] for argv in setup], cwd=cwd, env=env):
                    say(f"setup: {line}")
            plant_canary(db_url)
            if disposable:
                stack.callback(drop_canary, db_url)
        except SchemaError as exc:
            raise VerifyError(str(exc)) from None

        proc = AppProcess(
            app=str(app_spec), cwd=cwd, env=env, port=int(prof.get("target", "port", 0)),
            health_path=prof.health_path, python=interpreter,
            startup_timeout=float(prof.get("target", "startup_timeout", 30)),
        )  # fmt: skip
        stack.callback(proc.discard_log)
        stack.callback(proc.stop)
        say(f"starting {app_spec} with {interpreter}")
        try:
            proc.start()
        except RuntimeStartError as exc:
            raise VerifyError(f"the app did not start: {exc}") from None
        say(f"app healthy at {proc.base_url}{prof.health_path}")
        ctx = VerifyContext(
            target=target, cwd=cwd, profile=prof, app=proc, database_url=db_url,
            values=values, python=interpreter, workers=workers,
            detect_blocking=detect_blocking, progress=progress,
        )  # fmt: skip
        stack.callback(ctx.close)
        yield ctx, result


def _dbname(url: str) -> str:
    return database_values(url)["db_name"]


class CheckTimeout(Exception):
    """A check ran past its time limit (`[target] check_timeout`, default 300 s)."""


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Raise `CheckTimeout` in the main thread after `seconds` (SIGALRM); elsewhere, no limit
    (each wait of a check is bounded on its own anyway)."""
    import signal
    import threading

    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise CheckTimeout

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _run_check(ctx: VerifyContext, module, say: Callable[[str], None]) -> CheckResult:
    import httpx
    import psycopg

    say(f"{module.ID} {module.NAME} ...")
    out = Outcome()
    started = time.monotonic()
    limit = float(ctx.profile.get("target", "check_timeout", 300))
    try:
        with _time_limit(limit):
            reason = ctx.profile.get(module.SECTION, "not_applicable")
            if reason:
                raise NotApplicable(f"{reason} (the profile says so)")
            if not ctx.app.alive:  # a previous check killed it, or it crashed
                ctx.app.stop()
                ctx.app.start()
            status, summary = module.run(ctx, out)
    except NotApplicable as exc:
        status, summary = "not-applicable", str(exc)
    except CheckFailed as exc:
        out.problem(str(exc))
        status, summary = "fail", str(exc)
    except CheckTimeout:
        status, summary = "error", f"the check did not finish within {limit:g} s (stopped)"
    except (AppCrashed, RuntimeStartError) as exc:
        lines = str(exc).splitlines()
        out.evidence.extend(line.strip() for line in lines[1:] if line.strip())
        status, summary = "error", lines[0].rstrip(":")
    except psycopg.Error as exc:  # a profile query (started_sql, ...) or the catalog snapshot
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        status, summary = "error", f"database: {first}"
    except ValueError as exc:  # an answer that is not the JSON the profile describes
        status, summary = "error", f"unexpected answer from the app: {short(str(exc))}"
    except httpx.HTTPError as exc:
        crashed = ctx.app.returncode
        if crashed is not None:
            how = f"signal {-crashed}" if crashed < 0 else f"exit code {crashed}"
            status, summary = "error", f"the app process ended during the check ({how})"
            out.evidence.extend(line.strip() for line in ctx.app.output().splitlines()[-10:])
        else:
            status, summary = (
                "error",
                f"HTTP request failed: {type(exc).__name__}: {short(str(exc))}",
            )
    duration = time.monotonic() - started
    say(f"{module.ID} {module.NAME}: {status} ({duration:.1f} s)")
    return checks_mod.result(module, status, summary, out, duration)


__all__ = ["Profile", "VerifyError", "verify"]
