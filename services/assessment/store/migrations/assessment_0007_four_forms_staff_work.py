"""Four forms per person, staff work per team stage, zone and staff names.

Revision ID: assessment_0007
Revises: assessment_0006
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "assessment_0007"
down_revision = "assessment_0006"
branch_labels = None
depends_on = None


def _key(name: str, length: int = 64) -> sa.Column:  # type: ignore[type-arg,unused-ignore]
    return sa.Column(name, sa.String(length), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "form_outcome",
        _key("county_id"),
        _key("case_id"),
        _key("event_id"),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("township_id", sa.String(64), nullable=False),
        sa.Column("quarter", sa.String(8), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("form", sa.Integer, nullable=False),
        sa.Column("basis", sa.String(64), nullable=False),
        sa.Column("replaces", sa.Boolean, nullable=False),
    )
    op.create_index("ix_form_outcome_quarter", "form_outcome", ["county_id", "quarter"])
    op.create_index("ix_form_outcome_case", "form_outcome", ["county_id", "case_id"])
    op.create_table(
        "case_subject",
        _key("county_id"),
        _key("case_id"),
        sa.Column("subject_key", sa.String(64), nullable=False),
    )
    op.create_table(
        "team_request",
        _key("county_id"),
        _key("request_id", 128),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "case_team",
        _key("county_id"),
        _key("event_id"),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("members", sa.Text, nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_case_team_case", "case_team", ["county_id", "case_id"])
    op.create_table(
        "case_work_step",
        _key("county_id"),
        _key("case_id"),
        _key("event_id"),
        _key("kind", 32),
        sa.Column("quarter", sa.String(8), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_case_work_step_quarter", "case_work_step", ["county_id", "quarter"])
    op.create_index("ix_case_work_step_case", "case_work_step", ["county_id", "case_id"])
    op.create_table(
        "unit_name",
        _key("county_id"),
        _key("level", 16),
        _key("subject_id"),
        sa.Column("name", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("unit_name")
    op.drop_index("ix_case_work_step_case", "case_work_step")
    op.drop_index("ix_case_work_step_quarter", "case_work_step")
    op.drop_table("case_work_step")
    op.drop_index("ix_case_team_case", "case_team")
    op.drop_table("case_team")
    op.drop_table("team_request")
    op.drop_table("case_subject")
    op.drop_index("ix_form_outcome_case", "form_outcome")
    op.drop_index("ix_form_outcome_quarter", "form_outcome")
    op.drop_table("form_outcome")
