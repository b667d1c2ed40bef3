"""Private identity matching: filter entries, published filters, peers' filters, follow-ups.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "match_entries",
        sa.Column("dataset", sa.String(40), primary_key=True),
        sa.Column("epoch", sa.BigInteger, primary_key=True),
        sa.Column("source", sa.String(40), primary_key=True),
        sa.Column("record_id", sa.String(40), primary_key=True),
        sa.Column("key_no", sa.SmallInteger, primary_key=True),
        sa.Column("prefix", sa.LargeBinary, nullable=False),
        sa.Column("digest", sa.LargeBinary, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_match_entries_prefix", "match_entries", ["dataset", "epoch", "prefix"])
    op.create_table(
        "match_filters",
        sa.Column("dataset", sa.String(40), primary_key=True),
        sa.Column("epoch", sa.BigInteger, primary_key=True),
        sa.Column("version", sa.BigInteger, primary_key=True),
        sa.Column("manifest", sa.LargeBinary, nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("encoded", sa.LargeBinary, nullable=False),
        sa.Column("created_at", AT, nullable=False),
    )
    op.create_table(
        "match_peer_filters",
        sa.Column("peer", sa.String(8), primary_key=True),
        sa.Column("dataset", sa.String(40), primary_key=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("manifest", sa.LargeBinary, nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("encoded", sa.LargeBinary, nullable=False),
        sa.Column("fetched_at", AT, nullable=False),
    )
    op.create_table(
        "match_followups",
        sa.Column("followup_id", sa.String(32), primary_key=True),
        sa.Column("direction", sa.String(8), primary_key=True),
        sa.Column("peer", sa.String(8), nullable=False),
        sa.Column("dataset", sa.String(40), nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("output_sha256", sa.String(64), nullable=False),
        sa.Column("case_reference", sa.String(200), nullable=False),
        sa.Column("purpose", sa.String(100), nullable=False),
        sa.Column("agreement_id", sa.String(200), nullable=False),
        sa.Column("attributes", sa.Text, nullable=False),
        sa.Column("records", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("decided_at", AT),
        sa.Column("decided_by", sa.String(100)),
        sa.Column("note", sa.Text),
        sa.Column("released", sa.Text),
    )
    op.create_index("ix_match_followups_status", "match_followups", ["status"])


def downgrade() -> None:
    op.drop_index("ix_match_followups_status", "match_followups")
    op.drop_index("ix_match_entries_prefix", "match_entries")
    for table in ("match_followups", "match_peer_filters", "match_filters", "match_entries"):
        op.drop_table(table)
