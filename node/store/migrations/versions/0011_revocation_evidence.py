"""Several revocations per agreement, with the evidence of their verification; re-signing.

Why: revocations were keyed by the agreement hash alone, so a second revocation of the same
agreement (the other party ending it sooner) was silently dropped and the agreement stayed in
force. They are now keyed by the agreement hash and the SHA-256 of the stored document, and
record the key the federation directory vouched for when each was verified, so a later key
rotation cannot discard one. Agreements gain a counter of signature replacements (the same text
re-signed with a new key), which the node's policy marker reads.

Existing revocations keep their document; their key columns stay NULL (the key was not
recorded when they were installed). Downgrading keeps one revocation per agreement: the one
installed first.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _revocations(primary_key: list[str], evidence: bool) -> sa.Table:
    columns: list[sa.schema.SchemaItem] = [
        sa.Column("agreement_hash", sa.String(64), nullable=False),
        sa.Column("agreement_id", sa.String(200), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
    ]
    if evidence:
        columns += [
            sa.Column("document_hash", sa.String(64), nullable=False),
            sa.Column("key_id", sa.String(32), nullable=True),
            sa.Column("public_key", sa.LargeBinary, nullable=True),
            sa.Column("directory_hash", sa.String(64), nullable=True),
        ]
    key = sa.PrimaryKeyConstraint(*primary_key, name="pk_revocations")
    return op.create_table("revocations", *columns, key)


def _rows() -> list[dict[str, object]]:
    old = sa.Table("revocations", sa.MetaData(), autoload_with=op.get_bind())
    return [dict(r) for r in op.get_bind().execute(sa.select(old)).mappings().all()]


def upgrade() -> None:
    op.add_column(
        "agreements",
        sa.Column("signature_updates", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    # Rebuilt rather than altered: the primary key changes, which SQLite cannot alter.
    rows = _rows()
    op.drop_table("revocations")
    table = _revocations(["agreement_hash", "document_hash"], evidence=True)
    for row in rows:
        digest = hashlib.sha256(str(row["document"]).encode("utf-8")).hexdigest()
        op.get_bind().execute(table.insert().values(**row, document_hash=digest))


def downgrade() -> None:
    rows = sorted(_rows(), key=lambda r: (str(r["agreement_hash"]), r["installed_at"]))
    op.drop_table("revocations")
    table = _revocations(["agreement_hash"], evidence=False)
    seen: set[object] = set()
    for row in rows:
        if row["agreement_hash"] in seen:
            continue
        seen.add(row["agreement_hash"])
        keep = ("agreement_hash", "agreement_id", "document", "installed_at")
        op.get_bind().execute(table.insert().values(**{k: row[k] for k in keep}))
    with op.batch_alter_table("agreements") as batch:
        batch.drop_column("signature_updates")
