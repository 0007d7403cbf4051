"""Reports and sealed reporter identities.

Revision ID: intake_0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "intake_0001"
down_revision = None
branch_labels = ("intake",)
depends_on = "runtime_0001"


def upgrade() -> None:
    op.create_table(
        "report",
        sa.Column("report_id", sa.String(64), primary_key=True),
        sa.Column("clue_id", sa.String(64), nullable=False, unique=True),
        sa.Column("county_id", sa.String(64), nullable=False, index=True),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("township_id", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("request_fingerprint", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("subject_name", sa.String(200), nullable=False),
        sa.Column("subject_post", sa.String(200), nullable=False),
        sa.Column("subject_unit", sa.String(200), nullable=False),
        sa.Column("subject_township_id", sa.String(64), nullable=False),
        sa.Column("subject_village", sa.String(200), nullable=False),
        sa.Column("subject_cadre_level", sa.String(32), nullable=False),
        sa.Column("allegation_categories", sa.Text, nullable=False),
        sa.Column("campaign_id", sa.String(64)),
        sa.Column("real_name", sa.Boolean, nullable=False),
        sa.Column("content_kek_id", sa.String(32), nullable=False),
        sa.Column("content_wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("content_nonce", sa.LargeBinary, nullable=False),
        sa.Column("content_ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("receipt_hash", sa.String(200), nullable=False),
        sa.Column("submitted_by", sa.String(128), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("county_id", "idempotency_key"),
    )
    op.create_table(
        "reporter_identity",
        sa.Column("report_id", sa.String(64), primary_key=True),
        sa.Column("kek_id", sa.String(32), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("nonce", sa.LargeBinary, nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reporter_identity")
    op.drop_table("report")
