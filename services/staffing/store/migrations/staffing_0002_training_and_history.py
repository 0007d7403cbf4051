"""Training and attendance records, registry change history, idempotency keys.

Revision ID: staffing_0002
Revises: staffing_0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "staffing_0002"
down_revision = "staffing_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staffing_training",
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64)),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("course", sa.String(300), nullable=False),
        sa.Column("training_type", sa.String(32), nullable=False),
        sa.Column("hours_tenths", sa.Integer, nullable=False),
        sa.Column("on_date", sa.Date, nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_staffing_training_person", "staffing_training", ["person_id", "on_date", "record_id"]
    )
    op.create_table(
        "staffing_attendance",
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "staffing_registry_change",
        sa.Column("change_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("record_type", sa.String(32), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text, nullable=False),
        sa.Column("changed_by", sa.String(128), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_staffing_registry_change_record",
        "staffing_registry_change",
        ["record_type", "record_id", "change_id"],
    )
    op.create_table(
        "staffing_idempotency",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("call", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("result_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("staffing_idempotency")
    op.drop_index("ix_staffing_registry_change_record", table_name="staffing_registry_change")
    op.drop_table("staffing_registry_change")
    op.drop_table("staffing_attendance")
    op.drop_index("ix_staffing_training_person", table_name="staffing_training")
    op.drop_table("staffing_training")
