"""Screened passenger manifests: the manifest, its travellers' results, and its trail.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "manifests",
        sa.Column("manifest_id", sa.String(40), primary_key=True),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(120), nullable=False),
        sa.Column("carrier", sa.String(80), nullable=False),
        sa.Column("transport", sa.String(40), nullable=False),
        sa.Column("departure_at", AT),
        sa.Column("travellers", sa.Integer, nullable=False),
        sa.Column("rejected", sa.Integer, nullable=False),
        sa.Column("hits", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("purpose", sa.String(100), nullable=False),
        sa.Column("screened_at", AT, nullable=False),
        sa.Column("expires_at", AT, nullable=False),
        sa.Column("report", sa.Text, nullable=False),
    )
    op.create_index("ix_manifests_expires_at", "manifests", ["expires_at"])
    op.create_table(
        "manifest_travellers",
        sa.Column("manifest_id", sa.String(40), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("traveller", sa.Text, nullable=False),
        sa.Column("results", sa.Text, nullable=False),
    )
    op.create_table(
        "manifest_events",
        sa.Column("event_id", sa.String(32), primary_key=True),
        sa.Column("manifest_id", sa.String(40), nullable=False),
        sa.Column("at", AT, nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_manifest_events_manifest_id", "manifest_events", ["manifest_id"])


def downgrade() -> None:
    op.drop_index("ix_manifest_events_manifest_id", "manifest_events")
    op.drop_table("manifest_events")
    op.drop_table("manifest_travellers")
    op.drop_index("ix_manifests_expires_at", "manifests")
    op.drop_table("manifests")
