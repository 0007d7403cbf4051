"""Links between clues (repeated reports, duplicates, related clues) and clue priority.

Revision ID: cases_0004
Revises: cases_0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "cases_0004"
down_revision = "cases_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clue", sa.Column("priority", sa.Integer(), nullable=True))
    op.add_column(
        "clue", sa.Column("repeat_count", sa.Integer(), nullable=False, server_default="0")
    )
    op.create_table(
        "case_clue_link",
        sa.Column("link_key", sa.String(200), primary_key=True),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("clue_id", sa.String(64), nullable=False),
        sa.Column("other_clue_id", sa.String(64), nullable=False),
        sa.Column("report_id", sa.String(64), nullable=False),
        sa.Column("linked_by", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_case_clue_link_clue", "case_clue_link", ["clue_id"])
    op.create_index("ix_case_clue_link_other", "case_clue_link", ["other_clue_id"])


def downgrade() -> None:
    op.drop_index("ix_case_clue_link_other", table_name="case_clue_link")
    op.drop_index("ix_case_clue_link_clue", table_name="case_clue_link")
    op.drop_table("case_clue_link")
    op.drop_column("clue", "repeat_count")
    op.drop_column("clue", "priority")
