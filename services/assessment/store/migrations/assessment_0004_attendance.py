"""Attendance per person and day (corrections replace earlier records).

Revision ID: assessment_0004
Revises: assessment_0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "assessment_0004"
down_revision = "assessment_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attendance_day",
        sa.Column("county_id", sa.String(64), primary_key=True),
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("attendance_day")
