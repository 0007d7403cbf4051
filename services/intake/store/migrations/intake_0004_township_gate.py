"""A gate row per township that serialises duplicate matching of simultaneous reports.

Revision ID: intake_0004
Revises: intake_0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "intake_0004"
down_revision = "intake_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intake_township_gate",
        sa.Column("county_id", sa.String(64), primary_key=True),
        sa.Column("township_id", sa.String(64), primary_key=True),
        sa.Column("submissions", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("intake_township_gate")
