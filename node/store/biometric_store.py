"""Persistence of biometric matching: per-peer code galleries and single-use hit references.

Why a sub-store: a holder keeps, per peer with a ``biometric`` grant, the protected code of each
of its templates under the key it shares with that peer (one row per record, with the content
hash of the template it was computed from), so a gallery survives restarts and is kept current
incrementally: after an import only new or changed templates are projected. A gallery's state
row says which epoch, key and code length its codes belong to and which import it reflects.
A hit is answered with an opaque reference whose SHA-256 is kept here with the record it
designates, so a follow-up can redeem it once without the record id ever leaving the node.

Invariants:
* :meth:`BiometricStore.apply_changes` removes and adds codes of one peer and writes the
  gallery's state in one transaction: a reader sees a gallery before or after an update.
* Codes never cross epochs: every read names the epoch, :meth:`drop_other_epochs` deletes what
  old keys produced, and a gallery whose state names another epoch or key is rebuilt.
* :meth:`redeem_hit` is atomic on both backends: of two concurrent redemptions of one reference
  exactly one succeeds; a reference of another peer, an expired or a used one redeems nothing.
* Probe codes are never stored here (or anywhere): only the holder's own codes are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row

from node.store.dialect import upsert
from node.store.records_schema import biometric_templates, encounters, imports
from node.store.schema import UtcDateTime, metadata, node_state

biometric_codes = Table(
    "biometric_codes",
    metadata,
    Column("peer", String(8), primary_key=True),
    Column("epoch", BigInteger, primary_key=True),
    Column("record_id", String(40), primary_key=True),
    Column("content_hash", String(64), nullable=False),
    Column("code", LargeBinary, nullable=False),
)

biometric_galleries = Table(
    "biometric_galleries",
    metadata,
    Column("peer", String(8), primary_key=True),
    Column("epoch", BigInteger, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("bits", SmallInteger, nullable=False),
    Column("dimension", SmallInteger, nullable=False),
    Column("source_marker", String(100), nullable=False),
    Column("codes", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

biometric_hits = Table(
    "biometric_hits",
    metadata,
    Column("reference_sha256", String(64), primary_key=True),
    Column("peer", String(8), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("record_id", String(40), nullable=False),
    Column("band", String(16), nullable=False),
    Column("agreement_id", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("redeemed_at", UtcDateTime()),
    Index("ix_biometric_hits_expires_at", "expires_at"),
)

#: ``node_state`` keys of the holder's biometric epoch and code length.
EPOCH_STATE, BITS_STATE = "biometric.epoch", "biometric.bits"


def _state_value(key: str) -> Any:
    return select(node_state.c.value).where(node_state.c.key == key).scalar_subquery()


def _template_imports(column: Any) -> Any:
    return select(column).where(imports.c.dataset == "biometric_templates").scalar_subquery()


# Read on every search, so built once: epoch, code length and the template imports, one query.
_SNAPSHOT = select(
    _state_value(EPOCH_STATE),
    _state_value(BITS_STATE),
    _template_imports(func.count()),
    _template_imports(func.max(imports.c.finished_at)),
)

#: Rows per write statement and per read batch.
CHUNK = 20_000
#: Keys per ``IN`` lookup: below the 999 bound parameters of older SQLite builds.
LOOKUP_CHUNK = 900


@dataclass(frozen=True)
class GalleryState:
    """What a stored gallery of one peer was built under and from."""

    peer: str
    epoch: int
    key_id: str
    bits: int
    dimension: int
    source_marker: str
    codes: int
    updated_at: dt.datetime

    def to_dict(self) -> dict[str, object]:
        return {
            "peer": self.peer,
            "epoch": self.epoch,
            "key_id": self.key_id,
            "bits": self.bits,
            "dimension": self.dimension,
            "codes": self.codes,
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class Snapshot:
    """The stored epoch and code length (``None`` until first set) and a marker of the
    template imports, which changes whenever one commits."""

    epoch: int | None
    bits: int | None
    marker: str


@dataclass(frozen=True)
class HitRecord:
    """A hit answered to ``peer``: the reference's digest and the record it designates."""

    reference_sha256: str
    peer: str
    epoch: int
    record_id: str
    band: str
    agreement_id: str
    created_at: dt.datetime
    expires_at: dt.datetime
    redeemed_at: dt.datetime | None = None


#: A code row as written: record id, content hash of its template, packed code.
CodeRow = tuple[str, str, bytes]


class BiometricStore:
    """The biometric part of a node's :class:`~node.store.Store`."""

    def __init__(self, engine: Engine, writer: Engine) -> None:
        self._read = engine
        self._write = writer

    def snapshot(self) -> Snapshot:
        with self._read.connect() as conn:
            epoch, bits, count, latest = conn.execute(_SNAPSHOT).one()
        if isinstance(latest, dt.datetime):
            latest = latest.replace(tzinfo=latest.tzinfo or dt.UTC).astimezone(dt.UTC).isoformat()
        return Snapshot(
            int(epoch) if epoch is not None else None,
            int(bits) if bits is not None else None,
            f"{int(count)}|{latest or ''}",
        )

    # -- the holder's templates ------------------------------------------------------------
    def template_count(self) -> int:
        with self._read.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(biometric_templates)).scalar_one()
            )

    def template_ids(self) -> list[str]:
        t = biometric_templates
        with self._read.connect() as conn:
            return [str(r[0]) for r in conn.execute(select(t.c.record_id).order_by(t.c.record_id))]

    def stale_templates(self, peer: str, epoch: int) -> list[str]:
        """Templates without a current code for ``peer``: new, or changed since projected."""
        t, c = biometric_templates, biometric_codes
        join = and_(c.c.peer == peer, c.c.epoch == epoch, c.c.record_id == t.c.record_id)
        query = (
            select(t.c.record_id)
            .select_from(t.outerjoin(c, join))
            .where(or_(c.c.record_id.is_(None), c.c.content_hash != t.c.content_hash))
            .order_by(t.c.record_id)
        )
        with self._read.connect() as conn:
            return [str(r[0]) for r in conn.execute(query)]

    def orphan_codes(self, peer: str, epoch: int) -> list[str]:
        """Codes of ``peer`` whose template is gone or has changed since it was projected."""
        t, c = biometric_templates, biometric_codes
        query = (
            select(c.c.record_id)
            .select_from(c.outerjoin(t, t.c.record_id == c.c.record_id))
            .where(
                and_(
                    c.c.peer == peer,
                    c.c.epoch == epoch,
                    or_(t.c.record_id.is_(None), t.c.content_hash != c.c.content_hash),
                )
            )
        )
        with self._read.connect() as conn:
            return [str(r[0]) for r in conn.execute(query)]

    def templates(self, record_ids: Sequence[str]) -> Iterator[tuple[str, str, bytes]]:
        """``(record_id, content_hash, vector bytes)`` of the given templates, in batches."""
        t = biometric_templates
        for start in range(0, len(record_ids), LOOKUP_CHUNK):
            chunk = list(record_ids[start : start + LOOKUP_CHUNK])
            query = select(t.c.record_id, t.c.content_hash, t.c.vector).where(
                t.c.record_id.in_(chunk)
            )
            with self._read.connect() as conn:
                rows = conn.execute(query).all()
            yield from ((str(r[0]), str(r[1]), bytes(r[2])) for r in rows)

    def person_records(self, record_id: str) -> tuple[str, list[str]] | None:
        """The person of a template and the record ids of that person's encounters."""
        t, e = biometric_templates, encounters
        with self._read.connect() as conn:
            person = conn.execute(
                select(t.c.person_id).where(t.c.record_id == record_id)
            ).scalar_one_or_none()
            if person is None:
                return None
            rows = conn.execute(select(e.c.record_id).where(e.c.person_id == person)).all()
        return str(person), [str(r[0]) for r in rows]

    # -- galleries -------------------------------------------------------------------------
    def gallery_state(self, peer: str) -> GalleryState | None:
        query = select(biometric_galleries).where(biometric_galleries.c.peer == peer)
        with self._read.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _state(row)

    def gallery_states(self) -> list[GalleryState]:
        query = select(biometric_galleries).order_by(biometric_galleries.c.peer)
        with self._read.connect() as conn:
            return [_state(r) for r in conn.execute(query)]

    def load_codes(self, peer: str, epoch: int) -> tuple[list[str], bytes]:
        """Every stored code of ``peer`` in ``epoch``: record ids and the codes concatenated,
        in record id order."""
        c = biometric_codes
        query = (
            select(c.c.record_id, c.c.code)
            .where(and_(c.c.peer == peer, c.c.epoch == epoch))
            .order_by(c.c.record_id)
        )
        ids: list[str] = []
        codes: list[bytes] = []
        with self._read.connect() as conn:
            result = conn.execute(query)
            while rows := result.fetchmany(CHUNK):
                for record_id, code in rows:
                    ids.append(str(record_id))
                    codes.append(bytes(code))
        return ids, b"".join(codes)

    def apply_changes(
        self,
        state: GalleryState,
        removed: Sequence[str],
        added: Sequence[CodeRow],
        *,
        replace: bool = False,
    ) -> None:
        """Remove ``removed`` codes (or, with ``replace``, every code of the peer), add
        ``added`` and record ``state``, in one transaction."""
        c = biometric_codes
        with self._write.begin() as conn:
            if replace:
                conn.execute(delete(c).where(c.c.peer == state.peer))
            for start in range(0, len(removed), LOOKUP_CHUNK):
                conn.execute(
                    delete(c).where(
                        and_(
                            c.c.peer == state.peer,
                            c.c.epoch == state.epoch,
                            c.c.record_id.in_(list(removed[start : start + LOOKUP_CHUNK])),
                        )
                    )
                )
            for start in range(0, len(added), CHUNK):
                conn.execute(
                    insert(c),
                    [
                        {
                            "peer": state.peer,
                            "epoch": state.epoch,
                            "record_id": record_id,
                            "content_hash": content_hash,
                            "code": code,
                        }
                        for record_id, content_hash, code in added[start : start + CHUNK]
                    ],
                )
            count = conn.execute(
                select(func.count()).where(and_(c.c.peer == state.peer, c.c.epoch == state.epoch))
            ).scalar()
            row = {**state.__dict__, "codes": int(count or 0)}
            conn.execute(upsert(self._write, biometric_galleries, row, key_columns=("peer",)))

    def drop_other_epochs(self, epoch: int) -> int:
        """Forget every code and gallery state of any epoch but ``epoch`` (after a rotation)."""
        with self._write.begin() as conn:
            removed = conn.execute(delete(biometric_codes).where(biometric_codes.c.epoch != epoch))
            conn.execute(delete(biometric_galleries).where(biometric_galleries.c.epoch != epoch))
            return int(removed.rowcount or 0)

    # -- hit references --------------------------------------------------------------------
    def add_hits(self, hits: Sequence[HitRecord]) -> None:
        if not hits:
            return
        with self._write.begin() as conn:
            conn.execute(insert(biometric_hits), [dict(h.__dict__) for h in hits])

    def redeem_hit(self, reference_sha256: str, peer: str, now: dt.datetime) -> HitRecord | None:
        """Mark a reference used and return it; ``None`` if unknown, another peer's, expired
        or already used (one redemption wins, whatever the concurrency)."""
        h = biometric_hits
        with self._write.begin() as conn:
            moved = conn.execute(
                update(h)
                .where(
                    and_(
                        h.c.reference_sha256 == reference_sha256,
                        h.c.peer == peer,
                        h.c.redeemed_at.is_(None),
                        h.c.expires_at > now,
                    )
                )
                .values(redeemed_at=now)
            )
            if moved.rowcount != 1:
                return None
            row = conn.execute(select(h).where(h.c.reference_sha256 == reference_sha256)).one()
        return HitRecord(**dict(row._mapping))

    def hit(self, reference_sha256: str) -> HitRecord | None:
        query = select(biometric_hits).where(biometric_hits.c.reference_sha256 == reference_sha256)
        with self._read.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else HitRecord(**dict(row._mapping))

    def purge_hits(self, now: dt.datetime) -> int:
        """Delete references that expired (used or not); returns how many."""
        with self._write.begin() as conn:
            result = conn.execute(delete(biometric_hits).where(biometric_hits.c.expires_at <= now))
            return int(result.rowcount or 0)


def _state(row: Row[Any]) -> GalleryState:
    mapping = dict(row._mapping)
    return GalleryState(
        peer=str(mapping["peer"]),
        epoch=int(mapping["epoch"]),
        key_id=str(mapping["key_id"]),
        bits=int(mapping["bits"]),
        dimension=int(mapping["dimension"]),
        source_marker=str(mapping["source_marker"]),
        codes=int(mapping["codes"]),
        updated_at=mapping["updated_at"],
    )
