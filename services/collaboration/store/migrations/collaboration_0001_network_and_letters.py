"""Network versions, assistance letters, idempotency keys.

Revision ID: collaboration_0001
Revises:
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "collaboration_0001"
down_revision = None
branch_labels = ("collaboration",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collaboration_network",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("network_id", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        sa.Column("imported_by", sa.String(128), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "collaboration_letter",
        sa.Column("county_id", sa.String(64), primary_key=True),
        sa.Column("letter_id", sa.String(64), primary_key=True),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("counterpart_county", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64)),
        sa.Column("zone_id", sa.String(64)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("allowlist_version", sa.Integer, nullable=False),
        sa.Column("network_version", sa.Integer, nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("fields_json", sa.Text, nullable=False),
        sa.Column("excerpt", sa.Text, nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("requested_by", sa.String(128)),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(128)),
        sa.Column("approved_at", sa.DateTime(timezone=True)),
        sa.Column("decided_by", sa.String(128)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("decline_ground", sa.Text),
        sa.Column("answered_by", sa.String(128)),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sa.Column("findings", sa.Text),
        sa.Column("attachments_json", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_collaboration_letter_list",
        "collaboration_letter",
        ["county_id", "direction", "requested_at", "letter_id"],
    )
    op.create_index("ix_collaboration_letter_id", "collaboration_letter", ["letter_id"])
    op.create_table(
        "collaboration_idempotency",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("call", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("result_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("collaboration_idempotency")
    op.drop_index("ix_collaboration_letter_id", "collaboration_letter")
    op.drop_index("ix_collaboration_letter_list", "collaboration_letter")
    op.drop_table("collaboration_letter")
    op.drop_table("collaboration_network")
