"""Clues with their disposal deadlines.

Revision ID: cases_0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "cases_0001"
down_revision = None
branch_labels = ("cases",)
depends_on = "runtime_0001"


def upgrade() -> None:
    op.create_table(
        "clue",
        sa.Column("clue_id", sa.String(64), primary_key=True),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("township_id", sa.String(64), nullable=False),
        sa.Column("source_report_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("allegation_categories", sa.Text, nullable=False),
        sa.Column("subject_cadre_level", sa.String(32), nullable=False),
        sa.Column("real_name", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("rule_version", sa.String(64), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disposal_due_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_clue_scope", "clue", ["county_id", "zone_id", "clue_id"])


def downgrade() -> None:
    op.drop_table("clue")
