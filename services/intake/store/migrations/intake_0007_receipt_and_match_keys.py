"""Keyed receipt hashes found by equality; match keys that find duplicate candidates.

Receipts keep their stored hashes: legacy scrypt rows are re-hashed under the receipt key on
their first successful look-up (the key is not in the database, so this migration cannot).
Every report that opened or joined a clue is stored under its match keys (backfill, in
chunks); the keys come from the domain's own normalisation, as new reports' do.

Revision ID: intake_0007
Revises: intake_0006
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from services.intake.domain.duplicates import DuplicateProfile, normalise, stored_match_keys

revision = "intake_0007"
down_revision = "intake_0006"
branch_labels = None
depends_on = None

_CHUNK = 2_000


def upgrade() -> None:
    op.create_index("ix_report_receipt_hash", "report", ["receipt_hash"])
    match_key = op.create_table(
        "report_match_key",
        sa.Column("report_id", sa.String(64), primary_key=True),
        sa.Column("match_key", sa.String(32), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_report_match_key_key_received", "report_match_key", ["match_key", "received_at"]
    )
    _backfill(match_key)


def _backfill(match_key: sa.Table) -> None:
    report = sa.table(
        "report",
        sa.column("report_id", sa.String),
        sa.column("county_id", sa.String),
        sa.column("township_id", sa.String),
        sa.column("subject_name", sa.String),
        sa.column("received_at", sa.DateTime(timezone=True)),
        sa.column("duplicate_fingerprint", sa.String),
    )
    connection = op.get_bind()
    after = ""
    while True:
        rows = connection.execute(
            sa.select(
                report.c.report_id,
                report.c.county_id,
                report.c.township_id,
                report.c.subject_name,
                report.c.received_at,
            )
            # Reports forwarded upward at reception opened no clue and are never matched.
            .where(report.c.duplicate_fingerprint.is_not(None), report.c.report_id > after)
            .order_by(report.c.report_id)
            .limit(_CHUNK)
        ).all()
        if not rows:
            return
        keys = []
        for report_id, county_id, township_id, subject_name, received_at in rows:
            # Only the name and the place make the keys; the rest of the profile is unused.
            profile = DuplicateProfile(
                county_id, normalise(subject_name), "", township_id, frozenset(), received_at
            )
            keys += [
                {"report_id": report_id, "match_key": key, "received_at": received_at}
                for key in sorted(stored_match_keys(profile))
            ]
        connection.execute(match_key.insert(), keys)
        after = rows[-1].report_id


def downgrade() -> None:
    op.drop_index("ix_report_match_key_key_received", table_name="report_match_key")
    op.drop_table("report_match_key")
    op.drop_index("ix_report_receipt_hash", table_name="report")
