"""Joint investigations (联合审查调查): each county's side of a joint case.

Revision ID: collaboration_0005
Revises: collaboration_0004
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "collaboration_0005"
down_revision = "collaboration_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collaboration_joint_case",
        sa.Column("county_id", sa.String(64), primary_key=True),
        sa.Column("joint_id", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("other_county", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("subject_township_id", sa.String(64), nullable=True),
        sa.Column("draw_key", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("own_members", sa.Text(), nullable=False),
        sa.Column("other_members", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_collaboration_joint_case_draw", "collaboration_joint_case", ["county_id", "draw_key"]
    )


def downgrade() -> None:
    op.drop_index("ix_collaboration_joint_case_draw", "collaboration_joint_case")
    op.drop_table("collaboration_joint_case")
