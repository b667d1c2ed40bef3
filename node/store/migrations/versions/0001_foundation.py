"""Foundation: replay cache, audit chain, checkpoints, node state.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "nonces",
        sa.Column("sender", sa.String(8), primary_key=True),
        sa.Column("nonce", sa.String(32), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_nonces_expires_at", "nonces", ["expires_at"])
    op.create_table(
        "audit_entries",
        sa.Column("seq", SEQ, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("peer", sa.String(8), nullable=False),
        sa.Column("method", sa.String(200), nullable=False),
        sa.Column("request_header", sa.LargeBinary, nullable=False),
        sa.Column("request_signature", sa.LargeBinary, nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("agreement_id", sa.String(200), nullable=False),
        sa.Column("agreement_hash", sa.String(64), nullable=False),
        sa.Column("response_header", sa.LargeBinary, nullable=False),
        sa.Column("response_signature", sa.LargeBinary, nullable=False),
        sa.Column("response_digest", sa.String(64), nullable=False),
        sa.Column("extra", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("entry_hash", name="uq_audit_entries_entry_hash"),
    )
    op.create_index("ix_audit_entries_at", "audit_entries", ["at"])
    op.create_index("ix_audit_entries_peer", "audit_entries", ["peer"])
    op.create_index("ix_audit_entries_request_digest", "audit_entries", ["request_digest"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("node", sa.String(8), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "node_state",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("node_state", "audit_checkpoints", "audit_head", "audit_entries", "nonces"):
        op.drop_table(table)
