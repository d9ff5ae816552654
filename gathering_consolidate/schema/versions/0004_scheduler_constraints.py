"""Scheduler: validate the execution columns' constraints; index the runs still marked running.

Revision ID: 0004_scheduler_constraints
Revises: 0003_scheduler_claims
Create Date: 2026-12-02

VALIDATE CONSTRAINT takes a lock that lets reads and writes go on. The partial index finds the
claims a crashed replica left 'running' (the recovery sweep) without scanning the log.

Downgrade: the index goes; validated constraints stay validated (0003's downgrade drops them).
"""

from gathering_consolidate.schema import ops
from gathering_consolidate.schema.profile import active, short

revision = "0004_scheduler_constraints"
down_revision = "0003_scheduler_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    p = active()
    ops.timeouts(p)
    for constraint in ("execution_status_check", "last_execution_id_fkey"):
        ops.execute(
            f"ALTER TABLE {{actions}} VALIDATE CONSTRAINT {{a}}_{constraint}",
            actions=p.actions_table,
            a=short(p.actions_table),
        )
    log = p.execution_log_table
    ops.create_index_concurrently(
        f"{short(log)}_running_idx", log, "started_at", where="status = 'running'"
    )


def downgrade() -> None:
    p = active()
    ops.timeouts(p)
    log = p.execution_log_table
    ops.drop_index_concurrently(f"{short(log)}_running_idx", log)
