"""Teams count in the quarter of their request (a back-entered year's draws happen later).

Revision ID: assessment_0009
Revises: assessment_0008
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "assessment_0009"
down_revision = "assessment_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("team_request", "case_team"):
        op.add_column(table, sa.Column("quarter", sa.String(8), nullable=False, server_default=""))
        op.create_index(f"ix_{table}_quarter", table, ["county_id", "quarter"])
    op.create_index("ix_case_team_request", "case_team", ["county_id", "request_id"])


def downgrade() -> None:
    op.drop_index("ix_case_team_request", "case_team")
    for table in ("case_team", "team_request"):
        op.drop_index(f"ix_{table}_quarter", table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("quarter")
