"""Per-case finishes and breaches of time limits (disposal/investigation within limit).

Revision ID: assessment_0005
Revises: assessment_0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "assessment_0005"
down_revision = "assessment_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "limit_clock",
        sa.Column("county_id", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("clock", sa.String(32), primary_key=True),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("township_id", sa.String(64), nullable=False),
        sa.Column("quarter", sa.String(8), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_limit_clock_quarter", "limit_clock", ["county_id", "quarter"])
    op.create_table(
        "limit_breach",
        sa.Column("county_id", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("clock", sa.String(32), primary_key=True),
        sa.Column("deadline_id", sa.String(64), primary_key=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("limit_breach")
    op.drop_index("ix_limit_clock_quarter", "limit_clock")
    op.drop_table("limit_clock")
