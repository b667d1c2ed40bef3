"""Persistence of follow-ups: what a holder answered after a hit, and what a querier asked.

Why apart from the filter entries: a follow-up is a small, long-lived record of a decision
(who asked, under which agreement and purpose, with which case reference, who approved and
when), read by operators; the entries are bulk data rebuilt at every epoch. Both live in the
matching part of the store (:class:`node.store.matching_store.MatchingStore` inherits this).

Invariants:
* A follow-up is keyed by (id, direction): ``inbound`` on the holder, ``outbound`` on the
  querier; the same id may exist once on each side.
* ``records`` (the matched records) is kept on the holder's inbound row only; a querier's
  outbound row has none, because no answer says which or how many records matched.
* :meth:`FollowUpStore.update_followup` moves a follow-up only from one of the expected
  statuses, atomically, so two operators cannot both decide the same request.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Column, Engine, String, Table, Text, and_, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from node.errors import StoreError
from node.store.failures import database_error, driver_message
from node.store.schema import UtcDateTime, metadata

match_followups = Table(
    "match_followups",
    metadata,
    Column("followup_id", String(32), primary_key=True),
    Column("direction", String(8), primary_key=True),  # inbound (we hold) / outbound (we asked)
    Column("peer", String(8), nullable=False),
    Column("dataset", String(40), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("output_sha256", String(64), nullable=False),
    Column("case_reference", String(200), nullable=False),
    Column("purpose", String(100), nullable=False),
    Column("agreement_id", String(200), nullable=False),
    Column("attributes", Text, nullable=False),  # JSON list of names
    Column("records", Text, nullable=False),  # JSON list of [source, record_id] (inbound)
    Column("status", String(16), nullable=False, index=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("decided_at", UtcDateTime()),
    Column("decided_by", String(100)),
    Column("note", Text),
    Column("released", Text),  # JSON object of released attribute values
)


@dataclass(frozen=True)
class FollowUpRecord:
    followup_id: str
    direction: str
    peer: str
    dataset: str
    epoch: int
    output_sha256: str
    case_reference: str
    purpose: str
    agreement_id: str
    attributes: tuple[str, ...]
    records: tuple[tuple[str, str], ...]
    status: str
    created_at: dt.datetime
    decided_at: dt.datetime | None = None
    decided_by: str | None = None
    note: str | None = None
    released: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """What ``enlace followup`` and ``enlace match --case`` show. Only the holder knows
        which of its records matched (``records``, inbound); a querier is never told, so its
        outbound rows have no count to show, not a count of zero."""
        shown = {
            "followup_id": self.followup_id,
            "direction": self.direction,
            "peer": self.peer,
            "dataset": self.dataset,
            "epoch": self.epoch,
            "output_sha256": self.output_sha256,
            "case_reference": self.case_reference,
            "purpose": self.purpose,
            "agreement_id": self.agreement_id,
            "attributes": list(self.attributes),
            "records": len(self.records),
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "decided_by": self.decided_by,
            "note": self.note,
            "released": self.released,
        }
        if self.direction != "inbound":
            del shown["records"]
        return shown


def _followup(row: Any) -> FollowUpRecord:
    return FollowUpRecord(
        followup_id=row.followup_id,
        direction=row.direction,
        peer=row.peer,
        dataset=row.dataset,
        epoch=int(row.epoch),
        output_sha256=row.output_sha256,
        case_reference=row.case_reference,
        purpose=row.purpose,
        agreement_id=row.agreement_id,
        attributes=tuple(json.loads(row.attributes)),
        records=tuple((str(s), str(r)) for s, r in json.loads(row.records)),
        status=row.status,
        created_at=row.created_at,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        note=row.note,
        released=json.loads(row.released) if row.released else None,
    )


@contextmanager
def _store_errors(what: str) -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as exc:  # the database's words and advice; never its SQL
        raise StoreError(f"{what}: {driver_message(exc)}", hint=database_error(exc).hint) from exc


class FollowUpStore:
    """Follow-up rows (both directions)."""

    def __init__(self, engine: Engine, writer: Engine) -> None:
        self._read = engine
        self._write = writer

    # -- follow-ups (both sides) -----------------------------------------------------------
    def add_followup(self, record: FollowUpRecord) -> None:
        """Store a new follow-up; a database failure is a :class:`StoreError` (the ``--case``
        commands show it as that follow-up's failure and go on with the others)."""
        with _store_errors("follow-up not recorded"), self._write.begin() as conn:
            conn.execute(
                insert(match_followups).values(
                    followup_id=record.followup_id,
                    direction=record.direction,
                    peer=record.peer,
                    dataset=record.dataset,
                    epoch=record.epoch,
                    output_sha256=record.output_sha256,
                    case_reference=record.case_reference,
                    purpose=record.purpose,
                    agreement_id=record.agreement_id,
                    attributes=json.dumps(list(record.attributes)),
                    records=json.dumps([list(r) for r in record.records]),
                    status=record.status,
                    created_at=record.created_at,
                    decided_at=record.decided_at,
                    decided_by=record.decided_by,
                    note=record.note,
                    released=json.dumps(record.released) if record.released is not None else None,
                )
            )

    def followup(self, followup_id: str, direction: str = "inbound") -> FollowUpRecord | None:
        query = select(match_followups).where(
            and_(
                match_followups.c.followup_id == followup_id,
                match_followups.c.direction == direction,
            )
        )
        with _store_errors("follow-up not read"), self._read.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _followup(row)

    def followups(
        self, *, direction: str = "inbound", statuses: Iterable[str] = (), limit: int = 200
    ) -> list[FollowUpRecord]:
        query = select(match_followups).where(match_followups.c.direction == direction)
        wanted = list(statuses)
        if wanted:
            query = query.where(match_followups.c.status.in_(wanted))
        query = query.order_by(match_followups.c.created_at.desc()).limit(limit)
        with _store_errors("follow-ups not read"), self._read.connect() as conn:
            return [_followup(r) for r in conn.execute(query)]

    def update_followup(
        self,
        followup_id: str,
        direction: str,
        *,
        expect: Iterable[str],
        status: str,
        now: dt.datetime | None = None,
        by: str | None = None,
        note: str | None = None,
        released: dict[str, str] | None = None,
    ) -> bool:
        """Move a follow-up to ``status`` if it is in one of ``expect``; False otherwise."""
        values: dict[str, Any] = {"status": status}
        if now is not None:
            values["decided_at"] = now
        if by is not None:
            values["decided_by"] = by
        if note is not None:
            values["note"] = note
        if released is not None:
            values["released"] = json.dumps(released, sort_keys=True)
        with _store_errors("follow-up not updated"), self._write.begin() as conn:
            result = conn.execute(
                update(match_followups)
                .where(
                    and_(
                        match_followups.c.followup_id == followup_id,
                        match_followups.c.direction == direction,
                        match_followups.c.status.in_(list(expect)),
                    )
                )
                .values(**values)
            )
            return bool(result.rowcount)
