"""Rectification items opened under a campaign, for the campaign view.

Revision ID: assessment_0006
Revises: assessment_0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "assessment_0006"
down_revision = "assessment_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_rectification",
        sa.Column("item_id", sa.String(64), primary_key=True),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("campaign_id", sa.String(256), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overdue", sa.Boolean, nullable=True),
    )
    op.create_index(
        "ix_campaign_rectification", "campaign_rectification", ["county_id", "campaign_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_campaign_rectification", "campaign_rectification")
    op.drop_table("campaign_rectification")
