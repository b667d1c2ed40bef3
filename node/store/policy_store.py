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
  is a no-op, installing different bytes under the same version is refused.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Table, and_, select, text
from sqlalchemy.sql.expression import Executable, TextClause

from node.errors import InvalidArgumentError
from node.store.dialect import insert_ignore
from node.store.schema import agreements, quota_usage, revocations
from node.store.sqlite_hot import SqliteHotPath

# Both counts in one statement: the marker is read on every agreement-checked request.
_MARKER = "SELECT (SELECT COUNT(*) FROM agreements), (SELECT COUNT(*) FROM revocations)"


@dataclass(frozen=True)
class StoredAgreement:
    agreement_id: str
    version: int
    agreement_hash: str
    document: str
    installed_at: dt.datetime


class PolicyStore:
    """``fast`` (SQLite only) runs the marker read and the quota upsert, which every
    agreement-checked call makes, without Core overhead."""

    def __init__(self, engine: Engine, writer: Engine, fast: SqliteHotPath | None = None) -> None:
        self._read = engine
        self._write = writer
        self._fast = fast

    def _insert_ignore(self, table: Table, rows: list[dict[str, object]]) -> Executable:
        return insert_ignore(self._read, table, rows)

    def save_agreement(
        self, agreement_id: str, version: int, agreement_hash: str, document: str, now: dt.datetime
    ) -> bool:
        """Store a verified agreement version; False when that exact version was already there."""
        with self._write.begin() as conn:
            existing = conn.execute(
                select(agreements.c.agreement_hash).where(
                    and_(agreements.c.agreement_id == agreement_id, agreements.c.version == version)
                )
            ).scalar_one_or_none()
            if existing == agreement_hash:
                return False
            if existing is not None:
                raise InvalidArgumentError(
                    f"agreement {agreement_id!r} version {version} is already installed with "
                    f"different content (hash {existing[:16]}…)",
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
            return True

    def marker(self) -> tuple[int, int]:
        """(agreements, revocations) installed: changes whenever either is installed, so
        every process holding a cached view (servers, CLI) notices at its next request."""
        if self._fast is not None:
            row = self._fast.rows(_MARKER)[0]
        else:
            with self._read.connect() as conn:
                row = conn.exec_driver_sql(_MARKER).one()
        return int(row[0]), int(row[1])

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
        self, agreement_id: str, agreement_hash: str, document: str, now: dt.datetime
    ) -> bool:
        with self._write.begin() as conn:
            result = conn.execute(
                self._insert_ignore(
                    revocations,
                    [
                        {
                            "agreement_hash": agreement_hash,
                            "agreement_id": agreement_id,
                            "document": document,
                            "installed_at": now,
                        }
                    ],
                )
            )
            return bool(result.rowcount)

    def revocations(self) -> list[str]:
        with self._read.connect() as conn:
            return [r.document for r in conn.execute(select(revocations.c.document)).all()]

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
