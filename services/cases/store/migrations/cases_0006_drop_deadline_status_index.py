"""Drop ix_case_deadline_open: no query reads it, and every deadline insert and update wrote it.

Every deadline query filters on `ended_at IS NULL` (ix_case_deadline_running, cases_0003),
the record (ix_case_deadline_case) or the id; (status, warn_at) came with the table in
cases_0002 and no query has started from status since running deadlines were told by
`ended_at`. Each new clue opens a deadline, so it was one B-tree insert of the consumer's
per-clue work (and one update per breach) that nothing read.

Revision ID: cases_0006
Revises: cases_0005
Create Date: 2026-12-04
"""

from alembic import op

revision = "cases_0006"
down_revision = "cases_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_case_deadline_open", table_name="case_deadline")


def downgrade() -> None:
    op.create_index("ix_case_deadline_open", "case_deadline", ["status", "warn_at"])
