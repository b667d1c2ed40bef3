"""Persistence of agreements, revocations and quota counters.

Invariants:
* :meth:`PolicyStore.consume_quota` is exact under concurrency: one ``INSERT … ON CONFLICT
  DO UPDATE SET used = used + units … RETURNING`` (the same SQL text on both backends)
  creates the counter rows if missing, adds
  the units and locks the rows (row locks in window-key order on PostgreSQL, so concurrent
  callers cannot deadlock; SQLite's write lock is taken at ``BEGIN IMMEDIATE``); the caller's
  pure check then runs on the values before the increment, and the transaction commits — or
  rolls back, and nothing is counted. Other callers wait on the locked rows until then, so
  two processes on one PostgreSQL database never grant more than the limit between them.
* An agreement id and version maps to exactly one hash; installing the same document again
  is a no-op, installing different bytes under the same version is refused. The same text
  (same hash) with other, verified signatures replaces the stored signatures: that is how a
  party that rotated its key keeps its agreements verifying.
* Revocations are kept per agreement hash *and* document: a second revocation of the same
  agreement is stored beside the first, never dropped, and each row keeps the key that was
  verified at install (see :data:`node.store.schema.revocations`).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine, and_, select, text, update
from sqlalchemy.sql.expression import TextClause

from node.errors import InvalidArgumentError
from node.store.dialect import insert_if_new
from node.store.schema import agreements, quota_usage, revocations
from node.store.sqlite_hot import SqliteHotPath

# One statement: the marker is read on every agreement-checked request.
_MARKER = (
    "SELECT (SELECT COUNT(*) FROM agreements), "
    "(SELECT COALESCE(SUM(signature_updates), 0) FROM agreements), "
    "(SELECT COUNT(*) FROM revocations)"
)

#: What :meth:`PolicyStore.save_agreement` did: stored a new version, found the very same
#: document, or replaced the signatures of the same text with newly verified ones.
AgreementSaved = Literal["installed", "unchanged", "re-signed"]


@dataclass(frozen=True)
class StoredAgreement:
    agreement_id: str
    version: int
    agreement_hash: str
    document: str
    installed_at: dt.datetime


@dataclass(frozen=True)
class StoredRevocation:
    """A revocation as verified at install: the signed document and the key that verified it.

    ``key_id``, ``public_key`` and ``directory_hash`` are None for revocations installed
    before the node recorded them.
    """

    agreement_id: str
    agreement_hash: str
    document: str
    key_id: str | None
    public_key: bytes | None
    directory_hash: str | None
    installed_at: dt.datetime


class PolicyStore:
    """``fast`` (SQLite only) runs the marker read and the quota upsert, which every
    agreement-checked call makes, without Core overhead."""

    def __init__(self, engine: Engine, writer: Engine, fast: SqliteHotPath | None = None) -> None:
        self._read = engine
        self._write = writer
        self._fast = fast

    def save_agreement(
        self, agreement_id: str, version: int, agreement_hash: str, document: str, now: dt.datetime
    ) -> AgreementSaved:
        """Store a verified agreement version, or newly verified signatures of the same text.

        The caller verified ``document``; when the version is already stored with the same
        hash, the text is the same and only the signatures can differ, so the stored ones are
        replaced (keeping the old ones would let the agreement stop verifying once the key
        that made them leaves the directory)."""
        with self._write.begin() as conn:
            existing = conn.execute(
                select(agreements.c.agreement_hash, agreements.c.document).where(
                    and_(agreements.c.agreement_id == agreement_id, agreements.c.version == version)
                )
            ).one_or_none()
            if existing is not None and existing.agreement_hash == agreement_hash:
                if existing.document == document:
                    return "unchanged"
                conn.execute(
                    update(agreements)
                    .where(
                        and_(
                            agreements.c.agreement_id == agreement_id,
                            agreements.c.version == version,
                        )
                    )
                    .values(
                        document=document,
                        signature_updates=agreements.c.signature_updates + 1,
                    )
                )
                return "re-signed"
            if existing is not None:
                raise InvalidArgumentError(
                    f"agreement {agreement_id!r} version {version} is already installed with "
                    f"different content (hash {existing.agreement_hash[:16]}…)",
                    field="version",
                    hint="a changed agreement needs a new version number, signed by both parties",
                )
            conn.execute(
                agreements.insert().values(
                    agreement_id=agreement_id,
                    version=version,
                    agreement_hash=agreement_hash,
                    document=document,
                    installed_at=now,
                )
            )
            return "installed"

    def marker(self) -> tuple[int, int, int]:
        """(agreements, signature replacements, revocations): changes whenever an agreement
        or a revocation is installed or an agreement re-signed, so every process holding a
        cached view (servers, CLI) notices at its next request."""
        if self._fast is not None:
            row = self._fast.rows(_MARKER)[0]
        else:
            with self._read.connect() as conn:
                row = conn.exec_driver_sql(_MARKER).one()
        return int(row[0]), int(row[1]), int(row[2])

    def agreements(self) -> list[StoredAgreement]:
        with self._read.connect() as conn:
            rows = conn.execute(
                select(agreements).order_by(agreements.c.agreement_id, agreements.c.version)
            ).all()
        return [
            StoredAgreement(r.agreement_id, r.version, r.agreement_hash, r.document, r.installed_at)
            for r in rows
        ]

    def save_revocation(
        self,
        agreement_id: str,
        agreement_hash: str,
        document: str,
        now: dt.datetime,
        *,
        key_id: str,
        public_key: bytes,
        directory_hash: str,
    ) -> bool:
        """Store a verified revocation with the key that verified it; False when this very
        document was already stored. Other revocations of the same agreement are kept."""
        row = {
            "agreement_hash": agreement_hash,
            "document_hash": hashlib.sha256(document.encode("utf-8")).hexdigest(),
            "agreement_id": agreement_id,
            "document": document,
            "key_id": key_id,
            "public_key": public_key,
            "directory_hash": directory_hash,
            "installed_at": now,
        }
        with self._write.begin() as conn:
            return conn.execute(insert_if_new(self._read, revocations, row)).first() is not None

    def revocations(self, agreement_hash: str | None = None) -> list[StoredRevocation]:
        """Every stored revocation (of one agreement, if ``agreement_hash`` is given)."""
        query = select(revocations).order_by(
            revocations.c.agreement_hash, revocations.c.installed_at, revocations.c.document_hash
        )
        if agreement_hash is not None:
            query = query.where(revocations.c.agreement_hash == agreement_hash)
        with self._read.connect() as conn:
            rows = conn.execute(query).all()
        return [
            StoredRevocation(
                r.agreement_id,
                r.agreement_hash,
                r.document,
                r.key_id,
                None if r.public_key is None else bytes(r.public_key),
                r.directory_hash,
                r.installed_at,
            )
            for r in rows
        ]

    def quota_usage(self, scope: str, window_keys: Sequence[str]) -> dict[str, int]:
        with self._read.connect() as conn:
            rows = conn.execute(
                select(quota_usage.c.window_key, quota_usage.c.used).where(
                    and_(quota_usage.c.scope == scope, quota_usage.c.window_key.in_(window_keys))
                )
            ).all()
        return {r.window_key: int(r.used) for r in rows}

    def consume_quota(
        self,
        scope: str,
        window_keys: Sequence[str],
        units: int,
        check: Callable[[Mapping[str, int]], None],
    ) -> dict[str, int]:
        """Add ``units`` to the counters and let ``check`` see them as they were before (it
        raises to refuse, and then nothing is counted); one statement and one transaction."""
        keys = sorted(set(window_keys))
        after: dict[str, int] = {}

        def verify(rows: Sequence[tuple[Any, ...]]) -> None:
            after.update({str(r[0]): int(r[1]) for r in rows})
            if set(after) != set(keys):  # pragma: no cover - the upsert returns every row
                raise RuntimeError("the quota counters were not all updated")
            check({k: v - units for k, v in after.items()})  # raising rolls the increment back

        if self._fast is not None:
            params = [value for key in keys for value in (scope, key, units)]
            self._fast.consume(_increment_sql(("(?, ?, ?)",) * len(keys)), params, verify)
            return after
        named = {"scope": scope, "units": units} | {f"key{i}": k for i, k in enumerate(keys)}
        with self._write.begin() as conn:
            verify(conn.execute(_increment_statement(len(keys)), named).all())
        return after


@functools.lru_cache(maxsize=8)
def _increment_sql(rows: tuple[str, ...]) -> str:
    """The counter upsert with one ``(scope, key, units)`` placeholder row per window key.

    Plain SQL, the same on SQLite (3.35+) and PostgreSQL but for the placeholders: a Core
    multi-row ``insert`` with ``on_conflict_do_update`` has no cache key, so SQLAlchemy
    compiled it again on every call, which cost more than the database work itself.
    """
    return (
        f"INSERT INTO {quota_usage.name} (scope, window_key, used) VALUES {', '.join(rows)} "
        "ON CONFLICT (scope, window_key) DO UPDATE SET used = "
        f"{quota_usage.name}.used + excluded.used RETURNING window_key, used"
    )


@functools.lru_cache(maxsize=8)
def _increment_statement(count: int) -> TextClause:
    """:func:`_increment_sql` with named parameters, for Core (PostgreSQL)."""
    return text(_increment_sql(tuple(f"(:scope, :key{i}, :units)" for i in range(count))))
