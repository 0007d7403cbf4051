"""Outbox rows carry the moment they were written, so the relay's backlog has an age.

`occurred_at` is the event's own time (a breach is stamped with its due moment, a relayed
step with the step's time), so it cannot tell how long a row has waited for the relay.
Nullable: rows written before this revision have no such moment (they are published
within seconds of a healthy start and are never read for it again).

Revision ID: runtime_0003
Revises: runtime_0002
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "runtime_0003"
down_revision = "runtime_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "outbox_message", sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("outbox_message") as batch:
        batch.drop_column("recorded_at")
