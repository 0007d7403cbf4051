"""Duplicates (clues shared by reports, near-duplicate flags), township registry, progress.

Revision ID: intake_0003
Revises: intake_0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "intake_0003"
down_revision = "intake_0002"
branch_labels = None
depends_on = None

# SQLite keeps the column's UNIQUE unnamed; batch mode finds it through this convention.
_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _drop_unique_clue_id() -> None:
    # A repeated report joins the clue of the first one, so many reports share a clue id.
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("report", naming_convention=_SQLITE_NAMES) as batch:
            batch.drop_constraint("uq_report_clue_id", type_="unique")
    else:
        op.drop_constraint("report_clue_id_key", "report", type_="unique")


def upgrade() -> None:
    _drop_unique_clue_id()
    with op.batch_alter_table("report") as batch:
        batch.add_column(sa.Column("duplicate_fingerprint", sa.String(64)))
        batch.add_column(sa.Column("linked_at", sa.DateTime(timezone=True)))
        batch.create_index("ix_report_clue_id", ["clue_id"])
        batch.create_index("ix_report_duplicates", ["county_id", "township_id", "received_at"])
    op.create_table(
        "intake_clue",
        sa.Column("clue_id", sa.String(64), primary_key=True),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("first_report_id", sa.String(64), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("repeat_count", sa.Integer, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("progress", sa.String(32), nullable=False),
        sa.Column("progress_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "duplicate_candidate",
        sa.Column("candidate_id", sa.String(64), primary_key=True),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("report_id", sa.String(64), nullable=False),
        sa.Column("clue_id", sa.String(64), nullable=False),
        sa.Column("similar_report_id", sa.String(64), nullable=False),
        sa.Column("similar_clue_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(128)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("decision_reason", sa.Text),
        sa.UniqueConstraint("report_id", "similar_clue_id"),
    )
    op.create_index(
        "ix_duplicate_candidate_scope", "duplicate_candidate", ["county_id", "state", "flagged_at"]
    )
    op.create_table(
        "township_placement",
        sa.Column("county_id", sa.String(64), primary_key=True),
        sa.Column("township_id", sa.String(64), primary_key=True),
        sa.Column("effective_from", sa.Date, primary_key=True),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("township_name", sa.String(200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("township_placement")
    op.drop_index("ix_duplicate_candidate_scope", "duplicate_candidate")
    op.drop_table("duplicate_candidate")
    op.drop_table("intake_clue")
    with op.batch_alter_table("report") as batch:
        batch.drop_index("ix_report_duplicates")
        batch.drop_index("ix_report_clue_id")
        batch.drop_column("linked_at")
        batch.drop_column("duplicate_fingerprint")
        batch.create_unique_constraint("uq_report_clue_id", ["clue_id"])
