"""When each side of a letter was reminded of its due date and when it was found overdue.

Revision ID: collaboration_0002
Revises: collaboration_0001
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "collaboration_0002"
down_revision = "collaboration_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collaboration_letter") as table:
        table.add_column(sa.Column("reminded_at", sa.DateTime(timezone=True)))
        table.add_column(sa.Column("overdue_at", sa.DateTime(timezone=True)))
    op.create_index("ix_collaboration_letter_due", "collaboration_letter", ["due_date"])


def downgrade() -> None:
    op.drop_index("ix_collaboration_letter_due", "collaboration_letter")
    with op.batch_alter_table("collaboration_letter") as table:
        table.drop_column("overdue_at")
        table.drop_column("reminded_at")
