"""VFY005 schedules: an app killed while a scheduled action runs executes that scheduled time
exactly once after its restart.

What: creates the profile's `[schedules] body` (a one-off action due `{run_at}`, a few seconds
ahead; `{pipeline_id}` is a pipeline created from `[pipelines] valid`). While it runs, verify
holds a lock on `lock_table` (a table the action's work writes) so the execution is caught in
flight: once `started_sql` sees it started, the app is killed with SIGKILL (a crash: nothing of
its shutdown runs), the lock is released and the app restarted. After `wait_s`,
`executions_sql` must count exactly one execution for that action and scheduled time. Both
queries run on verify's own database connection with `%(action_id)s` bound.

Why: a scheduler that keeps its schedule and its "running" set in process memory forgets the
in-flight execution on a crash and runs the same scheduled time again (or never); with two
replicas it runs everything twice.

Fix: claim each (action, scheduled time) in the database before running it (a unique key: a
second claim fails), record the outcome on that row, and on startup settle the claims a crashed
process left instead of firing them again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gathering_consolidate.verify.catalog import scalar
from gathering_consolidate.verify.checks import Outcome
from gathering_consolidate.verify.context import CheckFailed, NotApplicable, VerifyContext, short

ID = "VFY005"
NAME = "schedules"
SECTION = "schedules"  # the profile section it reads
LEAD_S = 3


def _count(ctx: VerifyContext, query: str, action_id: object) -> int:
    return int(scalar(ctx.database_url, query, {"action_id": action_id}) or 0)


def run(ctx: VerifyContext, out: Outcome):
    import psycopg
    from psycopg import sql

    cfg = ctx.profile.section("schedules")
    missing = [k for k in ("create", "body", "started_sql", "executions_sql") if k not in cfg]
    if missing:
        raise NotApplicable(f"the profile's [schedules] names no {', '.join(missing)}")
    ctx.require_route("POST", str(cfg["create"]), "create a scheduled action")
    headers = ctx.auth_headers()
    wait_s = float(cfg.get("wait_s", 12))
    extra: dict[str, object] = {}
    if "{pipeline_id}" in str(cfg["body"]):
        pipelines = ctx.profile.section("pipelines")
        if "create" not in pipelines or "valid" not in pipelines:
            raise NotApplicable("the schedule body needs {pipeline_id}: [pipelines] create/valid")
        response = ctx.request(
            "POST", str(pipelines["create"]), headers=headers, json=ctx.fill(pipelines["valid"])
        )
        if response.status_code >= 300:
            raise CheckFailed(f"creating the pipeline to schedule answered {response.status_code}")
        extra["pipeline_id"] = response.json().get(str(pipelines.get("id_field", "id")))
    scheduled_for = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=LEAD_S)
    extra["run_at"] = scheduled_for.isoformat()

    lock = None
    if cfg.get("lock_table"):
        schema, _, table = str(cfg["lock_table"]).rpartition(".")
        lock = psycopg.connect(ctx.database_url)
        ident = sql.Identifier(schema, table) if schema else sql.Identifier(table)
        lock.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(ident))
        out.note(f"holding a lock on {cfg['lock_table']} so the execution stays in flight")
    try:
        response = ctx.request(
            "POST", str(cfg["create"]), headers=headers, json=ctx.fill(cfg["body"], **extra)
        )
        if response.status_code >= 300:
            raise CheckFailed(
                f"creating the scheduled action answered {response.status_code}: {short(response.text)}"
            )
        action_id = response.json().get(str(cfg.get("id_field", "id")))
        out.note(f"action {action_id} scheduled for {scheduled_for.isoformat()}")
        started = ctx.poll(
            lambda: _count(ctx, str(cfg["started_sql"]), action_id) > 0,
            timeout=LEAD_S + wait_s, interval=0.2,
        )  # fmt: skip
        if not started:
            raise CheckFailed(
                f"action {action_id} did not start within {LEAD_S + wait_s:g} s of being created"
            )
        out.note(
            f"execution started (started_sql: {_count(ctx, str(cfg['started_sql']), action_id)})"
        )
        ctx.app.kill()
        out.note("app killed (SIGKILL) while the execution was in flight")
    finally:
        if lock is not None:
            lock.rollback()
            lock.close()
    ctx.app.start()
    out.note("app restarted")
    ctx.poll(lambda: False, timeout=wait_s / 2, interval=0.5)  # let the scheduler catch up
    count = _count(ctx, str(cfg["executions_sql"]), action_id)
    out.metrics["executions"] = count
    if count != 1:
        why = (
            "the scheduled time ran again after the crash"
            if count > 1
            else "no execution is recorded for it"
        )
        out.problem(
            f"{count} executions of action {action_id} for {scheduled_for.isoformat()}: {why}"
        )
    else:
        out.note(f"exactly one execution of action {action_id} for {scheduled_for.isoformat()}")
    return out.verdict("a crash during a scheduled run leaves exactly one execution")
