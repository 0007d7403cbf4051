"""Transfers each county sent or received, and the sending county's read-only outcome trail.

Revision ID: collaboration_0004
Revises: collaboration_0003
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "collaboration_0004"
down_revision = "collaboration_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collaboration_transfer",
        sa.Column("county_id", sa.String(64), primary_key=True),
        sa.Column("transfer_id", sa.String(64), primary_key=True),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("other_county", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "collaboration_transfer_step",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("transfer_id", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(40), nullable=False),
        sa.Column("decision", sa.String(40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_collaboration_transfer_step_transfer",
        "collaboration_transfer_step",
        ["county_id", "transfer_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_collaboration_transfer_step_transfer", "collaboration_transfer_step")
    op.drop_table("collaboration_transfer_step")
    op.drop_table("collaboration_transfer")
