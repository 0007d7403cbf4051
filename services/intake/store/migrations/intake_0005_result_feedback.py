"""The result half of real-name feedback: due, given and breach-published moments per report.

Revision ID: intake_0005
Revises: intake_0004
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "intake_0005"
down_revision = "intake_0004"
branch_labels = None
depends_on = None

_COLUMNS = ("result_due_at", "result_given_at", "result_breach_published_at")


def upgrade() -> None:
    # Batch mode: SQLite rebuilds the table, PostgreSQL alters it in place.
    with op.batch_alter_table("report") as batch:
        for name in _COLUMNS:
            batch.add_column(sa.Column(name, sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("report") as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
