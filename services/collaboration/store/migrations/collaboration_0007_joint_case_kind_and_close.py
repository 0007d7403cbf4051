"""Joint cases: kind, shares per county, who opened it (a county or the city), decline, close.

Revision ID: collaboration_0007
Revises: collaboration_0006
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "collaboration_0007"
down_revision = "collaboration_0006"
branch_labels = None
depends_on = None

_TABLE = "collaboration_joint_case"


def upgrade() -> None:
    with op.batch_alter_table(_TABLE) as table:
        table.add_column(sa.Column("kind", sa.String(32), nullable=True))
        table.add_column(sa.Column("own_share", sa.Integer(), nullable=False, server_default="2"))
        table.add_column(sa.Column("other_share", sa.Integer(), nullable=False, server_default="2"))
        table.add_column(sa.Column("opened_by", sa.String(64), nullable=True))
        table.add_column(sa.Column("second_county", sa.String(64), nullable=True))
        table.add_column(
            sa.Column("other_joined", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        table.add_column(sa.Column("decline_ground", sa.Text(), nullable=True))
        table.add_column(sa.Column("outcome", sa.String(32), nullable=True))
        table.add_column(sa.Column("closed_by", sa.String(64), nullable=True))
        table.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table(_TABLE) as table:
        for name in (
            "closed_at",
            "closed_by",
            "outcome",
            "decline_ground",
            "other_joined",
            "second_county",
            "opened_by",
            "other_share",
            "own_share",
            "kind",
        ):
            table.drop_column(name)
