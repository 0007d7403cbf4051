"""When a report's handling concluded, and until when back-entry keeps the feedback scans off it.

Revision ID: intake_0006
Revises: intake_0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "intake_0006"
down_revision = "intake_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite rebuilds the table, PostgreSQL alters it in place.
    with op.batch_alter_table("report") as batch:
        batch.add_column(sa.Column("concluded_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("scan_after", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("report") as batch:
        batch.drop_column("scan_after")
        batch.drop_column("concluded_at")
