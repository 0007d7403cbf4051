"""The team the asked county's staffing drew for an accepted letter (asked side only).

Revision ID: collaboration_0003
Revises: collaboration_0002
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "collaboration_0003"
down_revision = "collaboration_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collaboration_letter") as table:
        table.add_column(sa.Column("team_draw_id", sa.String(64)))
        table.add_column(sa.Column("team_json", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("collaboration_letter") as table:
        table.drop_column("team_json")
        table.drop_column("team_draw_id")
