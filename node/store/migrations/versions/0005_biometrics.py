"""Biometric matching: per-peer code galleries, their state, and single-use hit references.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "biometric_codes",
        sa.Column("peer", sa.String(8), primary_key=True),
        sa.Column("epoch", sa.BigInteger, primary_key=True),
        sa.Column("record_id", sa.String(40), primary_key=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("code", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "biometric_galleries",
        sa.Column("peer", sa.String(8), primary_key=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("bits", sa.SmallInteger, nullable=False),
        sa.Column("dimension", sa.SmallInteger, nullable=False),
        sa.Column("source_marker", sa.String(100), nullable=False),
        sa.Column("codes", sa.BigInteger, nullable=False),
        sa.Column("updated_at", AT, nullable=False),
    )
    op.create_table(
        "biometric_hits",
        sa.Column("reference_sha256", sa.String(64), primary_key=True),
        sa.Column("peer", sa.String(8), nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("record_id", sa.String(40), nullable=False),
        sa.Column("band", sa.String(16), nullable=False),
        sa.Column("agreement_id", sa.String(200), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("expires_at", AT, nullable=False),
        sa.Column("redeemed_at", AT),
    )
    op.create_index("ix_biometric_hits_expires_at", "biometric_hits", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_biometric_hits_expires_at", "biometric_hits")
    for table in ("biometric_hits", "biometric_galleries", "biometric_codes"):
        op.drop_table(table)
