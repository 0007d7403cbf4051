"""Case files, their history, command receipts, teams and deadlines.

Revision ID: cases_0002
Revises: cases_0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "cases_0002"
down_revision = "cases_0001"
branch_labels = None
depends_on = None

_SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "case_file",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("township_id", sa.String(64), nullable=False),
        sa.Column("subject_key", sa.String(128), nullable=False),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("rule_version", sa.String(64), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_case_file_scope", "case_file", ["county_id", "zone_id", "case_id"])
    op.create_table(
        "case_member",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("team", sa.String(16), primary_key=True),
    )
    op.create_index("ix_case_member_person", "case_member", ["person_id"])
    op.create_table(
        "case_step",
        sa.Column("id", _SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("from_stage", sa.String(32), nullable=False),
        sa.Column("to_stage", sa.String(32), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_case_step_case", "case_step", ["case_id", "id"])
    op.create_table(
        "case_command_receipt",
        sa.Column("county_id", sa.String(64), primary_key=True),
        sa.Column("idempotency_key", sa.String(128), primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("step_id", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "case_deadline",
        sa.Column("deadline_id", sa.String(128), primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("rule_version", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("warn_at", sa.DateTime(timezone=True), nullable=False),
        # open → met | breached; an extension moves due_at and counts in `extensions`.
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("extensions", sa.Integer, nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_case_deadline_open", "case_deadline", ["status", "warn_at"])
    op.create_index("ix_case_deadline_case", "case_deadline", ["case_id"])
    op.create_table(
        "case_deadline_notice",
        # One row per (deadline, notice): the primary key is what makes a notice fire once.
        sa.Column("deadline_id", sa.String(128), primary_key=True),
        sa.Column("notice", sa.String(16), primary_key=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "case_deadline_notice",
        "case_deadline",
        "case_command_receipt",
        "case_step",
        "case_member",
        "case_file",
    ):
        op.drop_table(table)
