"""Agreements, revocations and quota counters.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agreements",
        sa.Column("agreement_id", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("agreement_hash", sa.String(64), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("agreement_hash", name="uq_agreements_agreement_hash"),
    )
    op.create_table(
        "revocations",
        sa.Column("agreement_hash", sa.String(64), primary_key=True),
        sa.Column("agreement_id", sa.String(200), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "quota_usage",
        sa.Column("scope", sa.String(300), primary_key=True),
        sa.Column("window_key", sa.String(16), primary_key=True),
        sa.Column("used", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("quota_usage", "revocations", "agreements"):
        op.drop_table(table)
