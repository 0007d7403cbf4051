"""Letters between counties (协查函): one row per county and letter, for help given and received.

Revision ID: assessment_0010
Revises: assessment_0009
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "assessment_0010"
down_revision = "assessment_0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    moment = sa.DateTime(timezone=True)
    op.create_table(
        "help_letter",
        sa.Column("county_id", sa.String(64), primary_key=True),
        sa.Column("letter_id", sa.String(64), primary_key=True),
        sa.Column("side", sa.String(8), primary_key=True),
        sa.Column("zone_id", sa.String(64), nullable=False, server_default="*"),
        sa.Column("kind", sa.String(32), nullable=False, server_default=""),
        sa.Column("counterpart_county", sa.String(64), nullable=False, server_default=""),
        sa.Column("sent_at", moment, nullable=True),
        sa.Column("sent_quarter", sa.String(8), nullable=True),
        sa.Column("sent_event", sa.String(64), nullable=True),
        sa.Column("answered_at", moment, nullable=True),
        sa.Column("answered_quarter", sa.String(8), nullable=True),
        sa.Column("answered_event", sa.String(64), nullable=True),
        sa.Column("overdue_at", moment, nullable=True),
        sa.Column("overdue_quarter", sa.String(8), nullable=True),
        sa.Column("overdue_event", sa.String(64), nullable=True),
    )
    op.create_index("ix_help_letter_county", "help_letter", ["county_id"])


def downgrade() -> None:
    op.drop_index("ix_help_letter_county", "help_letter")
    op.drop_table("help_letter")
