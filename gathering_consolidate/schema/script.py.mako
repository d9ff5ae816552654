"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Zero-downtime rules for every revision here (gathering_consolidate/schema/README.md): set the
timeouts first (ops.timeouts), add columns nullable, backfill, add constraints NOT VALID and
validate them in a later revision, build indexes with ops.create_index_concurrently (outside the
transaction), never rename, and write a downgrade that works. Names come from the profile
(profile.active()), never literals, so the revision serves any app laid out like the fixture.
"""

from alembic import op
${imports if imports else ""}
from gathering_consolidate.schema import ops
from gathering_consolidate.schema.profile import active

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    p = active()
    ops.timeouts(p)
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    p = active()
    ops.timeouts(p)
    ${downgrades if downgrades else "pass"}
