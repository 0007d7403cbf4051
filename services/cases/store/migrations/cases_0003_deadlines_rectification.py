"""Deadlines superseded by extensions; rectification items with progress and receipts.

Revision ID: cases_0003
Revises: cases_0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "cases_0003"
down_revision = "cases_0002"
branch_labels = None
depends_on = None

_SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # An extension ends the running deadline and starts a new one that points back at it.
    op.add_column("case_deadline", sa.Column("supersedes", sa.String(128), nullable=True))
    op.create_index("ix_case_deadline_running", "case_deadline", ["ended_at", "warn_at"])
    op.create_table(
        "case_rectification",
        sa.Column("item_id", sa.String(64), primary_key=True),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("township_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("source_ref", sa.String(256), nullable=False),
        sa.Column("owner_unit", sa.String(256), nullable=False),
        sa.Column("finding", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rule_version", sa.String(64), nullable=False),
        sa.Column("opened_by", sa.String(128), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalated", sa.Boolean, nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_case_rectification_scope", "case_rectification", ["county_id", "zone_id", "item_id"]
    )
    op.create_table(
        "case_rectification_progress",
        sa.Column("id", _SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("percent_done", sa.Integer, nullable=False),
    )
    op.create_index(
        "ix_case_rectification_progress_item", "case_rectification_progress", ["item_id", "id"]
    )
    op.create_table(
        "case_rectification_receipt",
        sa.Column("county_id", sa.String(64), primary_key=True),
        sa.Column("idempotency_key", sa.String(128), primary_key=True),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "case_rectification_receipt",
        "case_rectification_progress",
        "case_rectification",
    ):
        op.drop_table(table)
    op.drop_index("ix_case_deadline_running", "case_deadline")
    op.drop_column("case_deadline", "supersedes")
