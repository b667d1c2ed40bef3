"""Persistence of agreements, revocations and quota counters.

Invariants:
* :meth:`PolicyStore.consume_quota` is exact under concurrency: the counter rows are created
  if missing, then locked (``FOR UPDATE`` on PostgreSQL; SQLite's write lock is taken at
  ``BEGIN IMMEDIATE``), the caller's pure check runs on the locked values, and the increment
  commits in the same transaction — or nothing is counted. Two processes on one PostgreSQL
  database therefore never grant more than the limit between them.
* An agreement id and version maps to exactly one hash; installing the same document again
  is a no-op, installing different bytes under the same version is refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, Table, and_, func, select, tuple_, update
from sqlalchemy.sql.expression import Executable

from node.errors import InvalidArgumentError
from node.store.dialect import insert_ignore
from node.store.schema import agreements, quota_usage, revocations


@dataclass(frozen=True)
class StoredAgreement:
    agreement_id: str
    version: int
    agreement_hash: str
    document: str
    installed_at: dt.datetime


class PolicyStore:
    def __init__(self, engine: Engine, writer: Engine) -> None:
        self._read = engine
        self._write = writer

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
        with self._read.connect() as conn:
            n_agreements = conn.execute(select(func.count()).select_from(agreements)).scalar_one()
            n_revocations = conn.execute(select(func.count()).select_from(revocations)).scalar_one()
        return int(n_agreements), int(n_revocations)

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
        """Lock the counters, let ``check`` see them (it raises to refuse), then add ``units``."""
        keys = list(window_keys)
        with self._write.begin() as conn:
            conn.execute(
                self._insert_ignore(
                    quota_usage, [{"scope": scope, "window_key": k, "used": 0} for k in keys]
                )
            )
            rows = conn.execute(
                select(quota_usage.c.window_key, quota_usage.c.used)
                .where(
                    tuple_(quota_usage.c.scope, quota_usage.c.window_key).in_(
                        [(scope, k) for k in keys]
                    )
                )
                .order_by(quota_usage.c.window_key)
                .with_for_update()
            ).all()
            used = {r.window_key: int(r.used) for r in rows}
            check(used)
            conn.execute(
                update(quota_usage)
                .where(and_(quota_usage.c.scope == scope, quota_usage.c.window_key.in_(keys)))
                .values(used=quota_usage.c.used + units)
            )
        return {k: used.get(k, 0) + units for k in keys}
