"""Index a case's team requests: reading a quarter's staff work looks them up by case.

Revision ID: assessment_0008
Revises: assessment_0007
Create Date: 2026-12-04
"""

from alembic import op

revision = "assessment_0008"
down_revision = "assessment_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_team_request_case", "team_request", ["county_id", "case_id"])


def downgrade() -> None:
    op.drop_index("ix_team_request_case", "team_request")
