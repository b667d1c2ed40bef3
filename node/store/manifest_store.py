"""Persistence of screened manifests: the manifest, its travellers with their results, and an
append-only trail of what was done with it.

Why a sub-store: a screening is evidence an officer acts on (a traveller held at the gate), so
the node keeps the manifest as read and what every peer answered, for as long as the retention
period allows (:mod:`node.manifests.retention`), and then deletes it. The trail
(``manifest_events``) outlives the manifest: it holds only the action, the time and counts or
identifiers (never names or document numbers), so an auditor can see that a manifest existed,
was screened, followed up and purged.

Invariants:
* :meth:`ManifestStore.save` writes the manifest, all its travellers and the first event in
  one transaction: a manifest is stored whole or not at all.
* :meth:`ManifestStore.purge` deletes every manifest whose ``expires_at`` is before ``now``,
  its travellers with it, and appends one ``purged`` event per manifest, in one transaction.
* Events are only ever inserted, never updated or deleted.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Engine, Integer, String, Table, Text, delete, insert, select

from node.errors import NotFoundError
from node.store.schema import UtcDateTime, metadata

manifests = Table(
    "manifests",
    metadata,
    Column("manifest_id", String(40), primary_key=True),
    Column("format", String(8), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("reference", String(120), nullable=False),
    Column("carrier", String(80), nullable=False),
    Column("transport", String(40), nullable=False),
    Column("departure_at", UtcDateTime()),
    Column("travellers", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("hits", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("purpose", String(100), nullable=False),
    Column("screened_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False, index=True),
    Column("report", Text, nullable=False),  # JSON: header, problems, rejected, summary
)

manifest_travellers = Table(
    "manifest_travellers",
    metadata,
    Column("manifest_id", String(40), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("traveller", Text, nullable=False),  # JSON of Traveller.to_dict()
    Column("results", Text, nullable=False),  # JSON list of per peer and dataset results
)

manifest_events = Table(
    "manifest_events",
    metadata,
    Column("event_id", String(32), primary_key=True),
    Column("manifest_id", String(40), nullable=False, index=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("action", String(24), nullable=False),
    Column("detail", Text, nullable=False),  # JSON: counts and identifiers only
)


@dataclass(frozen=True)
class StoredManifest:
    manifest_id: str
    format: str
    sha256: str
    reference: str
    carrier: str
    transport: str
    departure_at: dt.datetime | None
    travellers: int
    rejected: int
    hits: int
    status: str
    purpose: str
    screened_at: dt.datetime
    expires_at: dt.datetime
    report: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "report"}
        for key in ("departure_at", "screened_at", "expires_at"):
            out[key] = out[key].isoformat() if out[key] else ""
        return out


@dataclass(frozen=True)
class ManifestEvent:
    manifest_id: str
    at: dt.datetime
    action: str
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"manifest_id": self.manifest_id, "at": self.at.isoformat(),
                "action": self.action, "detail": self.detail}  # fmt: skip


def _event(
    manifest_id: str, at: dt.datetime, action: str, detail: dict[str, Any]
) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4().hex,
        "manifest_id": manifest_id,
        "at": at,
        "action": action,
        "detail": json.dumps(detail, sort_keys=True),
    }


class ManifestStore:
    """Screened manifests, their travellers' results and their trail."""

    def __init__(self, engine: Engine, write: Engine) -> None:
        self.engine = engine
        self._write = write

    def save(
        self,
        row: dict[str, Any],
        travellers: list[tuple[int, dict[str, Any], list[dict[str, Any]]]],
        event: dict[str, Any],
    ) -> None:
        """Store one screened manifest (``row`` without its JSON ``report`` encoded)."""
        values = {**row, "report": json.dumps(row["report"], sort_keys=True, default=str)}
        with self._write.begin() as conn:
            conn.execute(insert(manifests).values(**values))
            if travellers:
                conn.execute(
                    insert(manifest_travellers),
                    [
                        {
                            "manifest_id": row["manifest_id"],
                            "position": position,
                            "traveller": json.dumps(data, sort_keys=True, ensure_ascii=False),
                            "results": json.dumps(results, sort_keys=True),
                        }
                        for position, data, results in travellers
                    ],
                )
            conn.execute(
                insert(manifest_events).values(
                    **_event(row["manifest_id"], row["screened_at"], "screened", event)
                )
            )

    def record(
        self, manifest_id: str, at: dt.datetime, action: str, detail: dict[str, Any]
    ) -> None:
        """Append one event to the trail (follow-up asked, report exported...)."""
        with self._write.begin() as conn:
            conn.execute(insert(manifest_events).values(**_event(manifest_id, at, action, detail)))

    def get(self, manifest_id: str) -> StoredManifest:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(manifests).where(manifests.c.manifest_id == manifest_id)
            ).first()
        if row is None:
            raise NotFoundError(
                f"no manifest {manifest_id!r}", hint="`enlace screen list` shows the stored ones"
            )
        return _stored(row._mapping)

    def stored(self) -> list[StoredManifest]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(manifests).order_by(manifests.c.screened_at)).all()
        return [_stored(r._mapping) for r in rows]

    def travellers(self, manifest_id: str) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(manifest_travellers.c.traveller, manifest_travellers.c.results)
                .where(manifest_travellers.c.manifest_id == manifest_id)
                .order_by(manifest_travellers.c.position)
            ).all()
        return [(json.loads(r.traveller), json.loads(r.results)) for r in rows]

    def events(self, manifest_id: str | None = None) -> list[ManifestEvent]:
        query = select(manifest_events).order_by(manifest_events.c.at)
        if manifest_id is not None:
            query = query.where(manifest_events.c.manifest_id == manifest_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [ManifestEvent(r.manifest_id, r.at, r.action, json.loads(r.detail)) for r in rows]

    def purge(self, now: dt.datetime) -> list[str]:
        """Delete the manifests expired at ``now``; returns their ids (see the invariants)."""
        with self._write.begin() as conn:
            expired = conn.execute(
                select(
                    manifests.c.manifest_id, manifests.c.travellers, manifests.c.expires_at
                ).where(manifests.c.expires_at < now)
            ).all()
            ids = [str(r.manifest_id) for r in expired]
            if not ids:
                return []
            conn.execute(
                delete(manifest_travellers).where(manifest_travellers.c.manifest_id.in_(ids))
            )
            conn.execute(delete(manifests).where(manifests.c.manifest_id.in_(ids)))
            conn.execute(
                insert(manifest_events),
                [
                    _event(str(r.manifest_id), now, "purged", _purged(r)) for r in expired
                ],
            )  # fmt: skip
        return ids


def _purged(row: Any) -> dict[str, Any]:
    return {"travellers": int(row.travellers), "expired_at": row.expires_at.isoformat()}


def _stored(m: Any) -> StoredManifest:
    return StoredManifest(
        manifest_id=m["manifest_id"],
        format=m["format"],
        sha256=m["sha256"],
        reference=m["reference"],
        carrier=m["carrier"],
        transport=m["transport"],
        departure_at=m["departure_at"],
        travellers=int(m["travellers"]),
        rejected=int(m["rejected"]),
        hits=int(m["hits"]),
        status=m["status"],
        purpose=m["purpose"],
        screened_at=m["screened_at"],
        expires_at=m["expires_at"],
        report=json.loads(m["report"]),
    )
