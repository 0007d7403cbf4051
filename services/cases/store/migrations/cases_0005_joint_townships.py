"""The further townships of joint cases as rows, so lists can filter by any of them.

Revision ID: cases_0005
Revises: cases_0004
Create Date: 2026-11-26
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "cases_0005"
down_revision = "cases_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    joint = op.create_table(
        "case_joint_township",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("township_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_case_joint_township_township", "case_joint_township", ["township_id"])
    # Files declared joint before this revision keep their townships in the state JSON only.
    files = sa.table("case_file", sa.column("case_id", sa.String), sa.column("state", sa.Text))
    rows = [
        {"case_id": case_id, "township_id": township}
        for case_id, state in op.get_bind().execute(sa.select(files.c.case_id, files.c.state))
        for township in json.loads(state).get("joint_townships", [])
    ]
    if rows:
        op.bulk_insert(joint, rows)


def downgrade() -> None:
    op.drop_index("ix_case_joint_township_township", table_name="case_joint_township")
    op.drop_table("case_joint_township")
