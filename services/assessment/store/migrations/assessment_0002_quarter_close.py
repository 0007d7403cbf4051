"""Quarter closes (ScorecardPublished batches).

Revision ID: assessment_0002
Revises: assessment_0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "assessment_0002"
down_revision = "assessment_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarter_close",
        sa.Column("county_id", sa.String(64), primary_key=True),
        sa.Column("quarter", sa.String(8), primary_key=True),
        sa.Column("rules_version", sa.String(64), nullable=False),
        sa.Column("published", sa.Integer, nullable=False),
        sa.Column("closed_by", sa.String(128), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("quarter_close")
