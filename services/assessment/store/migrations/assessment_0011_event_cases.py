"""The case behind each counted event, and indexes to find a derived count's case by event.

Revision ID: assessment_0011
Revises: assessment_0010
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "assessment_0011"
down_revision = "assessment_0010"
branch_labels = None
depends_on = None

# Tables of counts judged when read, whose rows name an event and its case.
EVENT_INDEXES = {
    "limit_clock": "ix_limit_clock_event",
    "form_outcome": "ix_form_outcome_event",
    "case_work_step": "ix_case_work_step_event",
}


def upgrade() -> None:
    op.add_column(
        "kpi_contribution",
        sa.Column("case_id", sa.String(64), nullable=False, server_default=""),
    )
    for table, index in EVENT_INDEXES.items():
        op.create_index(index, table, ["county_id", "event_id"])


def downgrade() -> None:
    for table, index in EVENT_INDEXES.items():
        op.drop_index(index, table)
    with op.batch_alter_table("kpi_contribution") as batch:
        batch.drop_column("case_id")
