"""KPI projections, contributions, units, qualitative marks, command receipts, work plans.

Revision ID: assessment_0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "assessment_0001"
down_revision = None
branch_labels = ("assessment",)
depends_on = "runtime_0001"


def upgrade() -> None:
    op.create_table(
        "kpi_tally",
        sa.Column("county_id", sa.String(64), primary_key=True),
        sa.Column("quarter", sa.String(8), primary_key=True),
        sa.Column("level", sa.String(16), primary_key=True),
        sa.Column("subject_id", sa.String(64), primary_key=True),
        sa.Column("zone_id", sa.String(64), primary_key=True),
        sa.Column("kpi", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "kpi_contribution",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("level", sa.String(16), primary_key=True),
        sa.Column("subject_id", sa.String(64), primary_key=True),
        sa.Column("zone_id", sa.String(64), primary_key=True),
        sa.Column("kpi", sa.String(64), primary_key=True),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("quarter", sa.String(8), nullable=False),
        sa.Column("delta", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_kpi_contribution_row",
        "kpi_contribution",
        ["county_id", "quarter", "level", "subject_id", "kpi"],
    )
    op.create_table(
        "assessed_unit",
        sa.Column("county_id", sa.String(64), primary_key=True),
        sa.Column("level", sa.String(16), primary_key=True),
        sa.Column("subject_id", sa.String(64), primary_key=True),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
    )
    op.create_table(
        "qualitative_mark",
        sa.Column("county_id", sa.String(64), primary_key=True),
        sa.Column("quarter", sa.String(8), primary_key=True),
        sa.Column("level", sa.String(16), primary_key=True),
        sa.Column("subject_id", sa.String(64), primary_key=True),
        sa.Column("assessor", sa.String(128), primary_key=True),
        sa.Column("points", sa.Numeric(6, 2), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "command_receipt",
        sa.Column("idempotency_key", sa.String(128), primary_key=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("command", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("result", sa.Text, nullable=False),
    )
    op.create_table(
        "work_plan",
        sa.Column("county_id", sa.String(64), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("themes", sa.Text, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("defined_by", sa.String(128), nullable=False),
        sa.Column("defined_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "work_plan_target",
        sa.Column("county_id", sa.String(64), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("quarter", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("zone_id", sa.String(64), primary_key=True),
        sa.Column("kpi", sa.String(64), primary_key=True),
        sa.Column("target", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "work_plan_target",
        "work_plan",
        "command_receipt",
        "qualitative_mark",
        "assessed_unit",
        "kpi_contribution",
        "kpi_tally",
    ):
        op.drop_table(table)
