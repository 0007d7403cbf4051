"""Outbox, inbox and audit tables, present in every service database.

Revision ID: runtime_0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "runtime_0001"
down_revision = None
branch_labels = ("runtime",)
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox_message",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("partition_key", sa.String(200), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(200)),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("traceparent", sa.String(64)),
        sa.Column("tracestate", sa.String(512)),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("publish_attempts", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_outbox_message_unpublished", "outbox_message", ["published_at", "id"])
    op.create_table(
        "inbox_entry",
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )
    # Written out rather than derived from the live models: a migration must keep creating
    # exactly what it created when it shipped (runtime_0002 keys and shards the chain).
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("county_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("record_type", sa.String(64), nullable=False),
        sa.Column("record_id", sa.String(128), nullable=False),
        sa.Column("detail", sa.String, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_entry_record", "audit_entry", ["record_type", "record_id"])
    op.create_index("ix_audit_entry_county_at", "audit_entry", ["county_id", "at"])
    head = op.create_table(
        "audit_chain_head",
        sa.Column("chain", sa.String(16), primary_key=True),
        sa.Column("last_id", sa.Integer, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    # Seeded here so concurrent first appends never race to create the row.
    op.bulk_insert(head, [{"chain": "main", "last_id": 0, "last_hash": "0" * 64}])


def downgrade() -> None:
    op.drop_table("audit_chain_head")
    op.drop_table("audit_entry")
    op.drop_table("inbox_entry")
    op.drop_table("outbox_message")
