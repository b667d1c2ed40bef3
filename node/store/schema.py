"""Tables of the foundation: replay cache, audit chain, checkpoints and node state.

The schema is owned by Alembic migrations under ``node/store/migrations``; this module is the
SQLAlchemy description the code queries through. Tables of later capabilities (records,
agreements, quotas, filters…) live in their own modules and register on the same ``metadata``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.engine import Dialect


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite forgets the zone; this restores it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; pass an aware UTC time")
        utc = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        moment: dt.datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Nonces seen from each sender, kept until ``expires_at`` (issued-at plus the skew window):
# after that the time-window check alone refuses a replay.
nonces = Table(
    "nonces",
    metadata,
    Column("sender", String(8), primary_key=True),
    Column("nonce", String(32), primary_key=True),
    Column("expires_at", UtcDateTime(), nullable=False, index=True),
)

audit_entries = Table(
    "audit_entries",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", UtcDateTime(), nullable=False, index=True),
    Column("direction", String(8), nullable=False),
    Column("peer", String(8), nullable=False, index=True),
    Column("method", String(200), nullable=False),
    Column("request_header", LargeBinary, nullable=False),
    Column("request_signature", LargeBinary, nullable=False),
    Column("request_digest", String(64), nullable=False, index=True),
    Column("decision", String(16), nullable=False),
    Column("status", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("agreement_id", String(200), nullable=False),
    Column("agreement_hash", String(64), nullable=False),
    Column("response_header", LargeBinary, nullable=False),
    Column("response_signature", LargeBinary, nullable=False),
    Column("response_digest", String(64), nullable=False),
    Column("extra", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False, unique=True),
)

# One row (id = 1) naming the chain head; updated in the same transaction as each append so
# concurrent writers (threads, or replicas on one PostgreSQL) serialise on it.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("entry_hash", String(64), nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", BigInteger, primary_key=True),
    Column("entry_hash", String(64), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("node", String(8), nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("signature", LargeBinary, nullable=False),
)

node_state = Table(
    "node_state",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Every version of every installed agreement, as the signed YAML both parties signed; the
# highest version of an id is the one in force (older ones stay for the audit trail).
# ``signature_updates`` counts how often the signatures of the same text were replaced by newly
# verified ones (a party re-signed after rotating its key); it is part of the policy marker, so
# every process holding a cached view notices a re-signed copy at once.
agreements = Table(
    "agreements",
    metadata,
    Column("agreement_id", String(200), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("agreement_hash", String(64), nullable=False, unique=True),
    Column("document", Text, nullable=False),
    Column("installed_at", UtcDateTime(), nullable=False),
    Column("signature_updates", Integer, nullable=False, server_default=text("0")),
)

# Every verified revocation, several per agreement if both parties revoked (the earliest ``at``
# ends the agreement; a later one never postpones it). A row is the evidence of what was
# verified at ``installed_at``: the signed document, and the key the federation directory
# (``directory_hash``) vouched for then. The node re-checks the signature against that recorded
# key, never against the current directory, so retiring a key cannot un-revoke an agreement.
# Rows installed before these columns existed have them NULL.
revocations = Table(
    "revocations",
    metadata,
    Column("agreement_hash", String(64), primary_key=True),
    Column("document_hash", String(64), primary_key=True),  # SHA-256 of ``document``
    Column("agreement_id", String(200), nullable=False),
    Column("document", Text, nullable=False),
    Column("key_id", String(32), nullable=True),
    Column("public_key", LargeBinary, nullable=True),
    Column("directory_hash", String(64), nullable=True),
    Column("installed_at", UtcDateTime(), nullable=False),
)

# Units used per quota scope (agreement, direction, service) and window key (day, quarter).
quota_usage = Table(
    "quota_usage",
    metadata,
    Column("scope", String(300), primary_key=True),
    Column("window_key", String(16), primary_key=True),
    Column("used", BigInteger, nullable=False),
)
