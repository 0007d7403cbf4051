"""Channel details, attachments, receipt guard, reporter messages, reveals, acceptance.

Revision ID: intake_0002
Revises: intake_0001
Create Date: 2026-11-26
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "intake_0002"
down_revision = "intake_0001"
branch_labels = None
depends_on = None


def _sealed_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("kek_id", sa.String(32), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("nonce", sa.LargeBinary, nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("report") as batch:
        batch.add_column(sa.Column("receipt_prefix", sa.String(8), nullable=True))
        batch.add_column(sa.Column("taxonomy_version", sa.String(64), nullable=True))
        batch.add_column(sa.Column("rules_version", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("status", sa.String(32), nullable=False, server_default="received")
        )
        batch.add_column(sa.Column("status_note", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("forward_due_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("feedback_due_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("feedback_given_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("feedback_breach_published_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("decided_by", sa.String(128)))
        batch.create_index("ix_report_receipt_prefix", ["county_id", "receipt_prefix"])
        batch.create_index("ix_report_feedback_due", ["feedback_due_at"])
    op.create_table(
        "report_channel_detail",
        sa.Column("report_id", sa.String(64), primary_key=True),
        *_sealed_columns(),
    )
    op.create_table(
        "report_attachment",
        sa.Column("report_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("information_id", sa.String(64)),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("media_type", sa.String(128), nullable=False),
    )
    op.create_table(
        "receipt_failure",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_receipt_failure_scope_at", "receipt_failure", ["scope", "at"])
    op.create_table(
        "receipt_lockout",
        sa.Column("scope", sa.String(200), primary_key=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "reporter_message",
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("report_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("author", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        *_sealed_columns(),
        sa.UniqueConstraint("report_id", "seq"),
        sa.UniqueConstraint("report_id", "author", "idempotency_key"),
    )
    op.create_table(
        "reveal_request",
        sa.Column("reveal_request_id", sa.String(64), primary_key=True),
        sa.Column("report_id", sa.String(64), nullable=False, index=True),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(128)),
        sa.Column("decision_reason", sa.Text),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("revealed_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("requested_by", "idempotency_key"),
    )


def downgrade() -> None:
    for table in (
        "reveal_request",
        "reporter_message",
        "receipt_lockout",
        "receipt_failure",
        "report_attachment",
        "report_channel_detail",
    ):
        op.drop_table(table)
    with op.batch_alter_table("report") as batch:
        batch.drop_index("ix_report_feedback_due")
        batch.drop_index("ix_report_receipt_prefix")
        for name in (
            "decided_by",
            "feedback_breach_published_at",
            "feedback_given_at",
            "feedback_due_at",
            "forward_due_at",
            "status_note",
            "status",
            "rules_version",
            "taxonomy_version",
            "receipt_prefix",
        ):
            batch.drop_column(name)
