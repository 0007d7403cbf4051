"""Digests of the cross-county records applied: a byte-identical redelivery is not a replay.

Revision ID: collaboration_0006
Revises: collaboration_0005
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "collaboration_0006"
down_revision = "collaboration_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collaboration_received_record",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("collaboration_received_record")
