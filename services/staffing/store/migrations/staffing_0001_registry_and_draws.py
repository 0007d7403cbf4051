"""Registry, conflicts, recusals, draws and assignments.

Revision ID: staffing_0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "staffing_0001"
down_revision = None
branch_labels = ("staffing",)
depends_on = "runtime_0001"


def upgrade() -> None:
    op.create_table(
        "staffing_zone",
        sa.Column("zone_id", sa.String(64), primary_key=True),
        sa.Column("county_id", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("chief_id", sa.String(64)),
        sa.Column("deputy_id", sa.String(64)),
    )
    op.create_table(
        "staffing_township",
        sa.Column("township_id", sa.String(64), primary_key=True),
        sa.Column("county_id", sa.String(64), nullable=False, index=True),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("effective_from", sa.Date, nullable=False),
    )
    op.create_table(
        "staffing_village",
        sa.Column("village_id", sa.String(64), primary_key=True),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("township_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
    )
    op.create_table(
        "staffing_person",
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64)),
        sa.Column("home_township_id", sa.String(64)),
        sa.Column("village_id", sa.String(64)),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("skills", sa.Text, nullable=False),
        sa.Column("workload_cap", sa.Integer, nullable=False),
        sa.Column("informant", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_staffing_person_scope", "staffing_person", ["county_id", "zone_id", "person_id"]
    )
    op.create_table(
        "staffing_person_status",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("person_id", sa.String(64), nullable=False, index=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("start", sa.Date, nullable=False),
        sa.Column("end", sa.Date),
    )
    op.create_table(
        "staffing_conflict",
        sa.Column("conflict_id", sa.String(64), primary_key=True),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("party_key", sa.String(128), nullable=False),
        sa.Column("relation", sa.String(64), nullable=False),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_until", sa.Date),
        sa.Column("declared_by", sa.String(128), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_staffing_conflict_party", "staffing_conflict", ["county_id", "party_key"])
    op.create_table(
        "staffing_recusal",
        sa.Column("recusal_id", sa.String(64), primary_key=True),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("ground", sa.String(64), nullable=False),
        sa.Column("raised_by", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(128)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_staffing_recusal_case", "staffing_recusal", ["case_id", "person_id"])
    op.create_table(
        "staffing_draw",
        sa.Column("draw_id", sa.String(64), primary_key=True),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("cause", sa.String(32), nullable=False),
        sa.Column("filled", sa.Boolean, nullable=False),
        sa.Column("previous_hash", sa.String(64), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("request_id", "round", name="uq_staffing_draw_request_round"),
        sa.UniqueConstraint("county_id", "previous_hash", name="uq_staffing_draw_chain"),
    )
    op.create_index("ix_staffing_draw_case", "staffing_draw", ["case_id"])
    op.create_table(
        "staffing_draw_chain_head",
        sa.Column("county_id", sa.String(64), primary_key=True),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("draws", sa.Integer, nullable=False),
    )
    op.create_table(
        "staffing_assignment",
        sa.Column("assignment_id", sa.String(64), primary_key=True),
        sa.Column("draw_id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("leader", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_staffing_assignment_person", "staffing_assignment", ["person_id", "state"])
    op.create_index("ix_staffing_assignment_case", "staffing_assignment", ["case_id"])


def downgrade() -> None:
    for table in (
        "staffing_assignment",
        "staffing_draw_chain_head",
        "staffing_draw",
        "staffing_recusal",
        "staffing_conflict",
        "staffing_person_status",
        "staffing_person",
        "staffing_village",
        "staffing_township",
        "staffing_zone",
    ):
        op.drop_table(table)
