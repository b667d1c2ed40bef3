"""Persistence of the Secretariat's work and of what members and the helper keep about it.

Why one sub-store: the ST records pulls, per-member results, reminders, emergency updates and
regional-only rounds; a member records the notifications it received and the contributions
it made to regional-only rounds; the helper records the shares it holds and the sums it
answered. Each node uses the tables of its role; all live in the node's one database.

Invariants:
* A result row is keyed by (member, table, period). A successful answer replaces it; a failed
  attempt never erases data already received: it only counts the attempt and keeps the error.
* A member's contribution to a round is written once: asked again, the member returns the
  same shares, so a change of data between two asks can never be read off their difference.
* A helper share is written once per (round, member); a different share for the same round
  is refused by the caller, never silently replaced.
* Rounds, contributions, helper shares and helper sums store the period's canonical text
  (``2024-04..2024-06``), so one date range has one key whatever spelling asked for it.
* Nothing here decides policy; callers pass ``now`` and verified values.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from node.store.dialect import upsert
from node.store.secretariat_schema import (
    helper_shares,
    helper_sums,
    st_contributions,
    st_emergencies,
    st_notifications,
    st_pulls,
    st_reminders,
    st_results,
    st_round_shares,
    st_rounds,
)

__all__ = [
    "PullRow", "ResultRow", "SecretariatStore", "helper_shares", "helper_sums",
    "st_contributions", "st_emergencies", "st_notifications", "st_pulls", "st_reminders",
    "st_results", "st_round_shares", "st_rounds",
]  # fmt: skip


@dataclass(frozen=True)
class ResultRow:
    member: str
    table_id: str
    period: str
    status: str
    dimensions: tuple[str, ...]
    cells: list[list[Any]] | None
    coverage: dict[str, Any]
    as_of: dt.datetime | None
    agreement_id: str
    pull_id: str
    attempts: int
    received_at: dt.datetime | None
    last_attempt_at: dt.datetime
    last_error: str


@dataclass(frozen=True)
class PullRow:
    pull_id: str
    created_at: dt.datetime
    finished_at: dt.datetime | None
    trigger: str
    purpose: str
    period: str
    items: list[dict[str, Any]]
    members: list[str]
    status: str
    summary: dict[str, Any]


def _result(row: Any) -> ResultRow:
    m = row._mapping
    return ResultRow(
        member=m["member"],
        table_id=m["table_id"],
        period=m["period"],
        status=m["status"],
        dimensions=tuple(json.loads(m["dimensions"])),
        cells=json.loads(m["cells"]) if m["cells"] is not None else None,
        coverage=json.loads(m["coverage"]),
        as_of=m["as_of"],
        agreement_id=m["agreement_id"],
        pull_id=m["pull_id"],
        attempts=int(m["attempts"]),
        received_at=m["received_at"],
        last_attempt_at=m["last_attempt_at"],
        last_error=m["last_error"],
    )


def _pull(row: Any) -> PullRow:
    m = row._mapping
    return PullRow(
        pull_id=m["pull_id"],
        created_at=m["created_at"],
        finished_at=m["finished_at"],
        trigger=m["trigger"],
        purpose=m["purpose"],
        period=m["period"],
        items=json.loads(m["items"]),
        members=json.loads(m["members"]),
        status=m["status"],
        summary=json.loads(m["summary"]),
    )


class SecretariatStore:
    def __init__(self, engine: Engine, writer: Engine) -> None:
        self._read = engine
        self._write = writer

    # -- pulls and results (ST) ------------------------------------------------------------
    def add_pull(self, pull: PullRow) -> None:
        with self._write.begin() as conn:
            conn.execute(
                insert(st_pulls).values(
                    pull_id=pull.pull_id,
                    created_at=pull.created_at,
                    finished_at=pull.finished_at,
                    trigger=pull.trigger,
                    purpose=pull.purpose,
                    period=pull.period,
                    items=json.dumps(pull.items, sort_keys=True),
                    members=json.dumps(pull.members),
                    status=pull.status,
                    summary=json.dumps(pull.summary, sort_keys=True),
                )
            )

    def finish_pull(
        self, pull_id: str, status: str, summary: dict[str, Any], at: dt.datetime
    ) -> None:
        with self._write.begin() as conn:
            conn.execute(
                update(st_pulls)
                .where(st_pulls.c.pull_id == pull_id)
                .values(status=status, summary=json.dumps(summary, sort_keys=True), finished_at=at)
            )

    def pull(self, pull_id: str) -> PullRow | None:
        with self._read.connect() as conn:
            row = conn.execute(select(st_pulls).where(st_pulls.c.pull_id == pull_id)).first()
        return None if row is None else _pull(row)

    def pulls(self, *, status: str | None = None, limit: int = 50) -> list[PullRow]:
        query = select(st_pulls).order_by(st_pulls.c.created_at.desc()).limit(limit)
        if status is not None:
            query = query.where(st_pulls.c.status == status)
        with self._read.connect() as conn:
            return [_pull(r) for r in conn.execute(query).all()]

    def save_result(self, result: ResultRow) -> None:
        """Store a received answer (replaces any earlier row for the same key)."""
        row = {
            "member": result.member,
            "table_id": result.table_id,
            "period": result.period,
            "status": result.status,
            "dimensions": json.dumps(list(result.dimensions)),
            "cells": None if result.cells is None else json.dumps(result.cells),
            "coverage": json.dumps(result.coverage, sort_keys=True),
            "as_of": result.as_of,
            "agreement_id": result.agreement_id,
            "pull_id": result.pull_id,
            "attempts": result.attempts,
            "received_at": result.received_at,
            "last_attempt_at": result.last_attempt_at,
            "last_error": result.last_error,
        }
        with self._write.begin() as conn:
            conn.execute(
                upsert(self._read, st_results, row, key_columns=("member", "table_id", "period"))
            )

    def note_failure(
        self,
        member: str,
        table_id: str,
        period: str,
        *,
        dimensions: Sequence[str],
        pull_id: str,
        error: str,
        attempts: int,
        at: dt.datetime,
    ) -> None:
        """Count a failed attempt; data received earlier stays as it was."""
        key = and_(
            st_results.c.member == member,
            st_results.c.table_id == table_id,
            st_results.c.period == period,
        )
        with self._write.begin() as conn:
            existing = conn.execute(select(st_results.c.attempts).where(key)).first()
            if existing is None:
                conn.execute(
                    insert(st_results).values(
                        member=member,
                        table_id=table_id,
                        period=period,
                        status="missing",
                        dimensions=json.dumps(list(dimensions)),
                        cells=None,
                        coverage="{}",
                        as_of=None,
                        agreement_id="",
                        pull_id=pull_id,
                        attempts=attempts,
                        received_at=None,
                        last_attempt_at=at,
                        last_error=error[:2000],
                    )
                )
                return
            conn.execute(
                update(st_results)
                .where(key)
                .values(
                    attempts=int(existing.attempts) + attempts,
                    last_attempt_at=at,
                    last_error=error[:2000],
                )
            )

    def results(
        self,
        *,
        period: str | None = None,
        table_id: str | None = None,
        member: str | None = None,
    ) -> list[ResultRow]:
        query = select(st_results).order_by(
            st_results.c.period, st_results.c.table_id, st_results.c.member
        )
        if period is not None:
            query = query.where(st_results.c.period == period)
        if table_id is not None:
            query = query.where(st_results.c.table_id == table_id)
        if member is not None:
            query = query.where(st_results.c.member == member)
        with self._read.connect() as conn:
            return [_result(r) for r in conn.execute(query).all()]

    # -- reminders and emergencies (ST) ----------------------------------------------------
    def add_reminder(self, row: dict[str, Any]) -> None:
        with self._write.begin() as conn:
            conn.execute(insert(st_reminders).values(**row))

    def reminders(
        self, *, member: str | None = None, period: str | None = None
    ) -> list[dict[str, Any]]:
        query = select(st_reminders).order_by(st_reminders.c.sent_at)
        if member is not None:
            query = query.where(st_reminders.c.member == member)
        if period is not None:
            query = query.where(st_reminders.c.period == period)
        with self._read.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query).all()]

    def add_emergency(self, row: dict[str, Any], *, waiting_since: dt.datetime) -> str:
        """Record an emergency update, unless one of the same member and period, received at
        or after ``waiting_since``, is still waiting for its pull: then nothing is added and
        that one's id is returned (``row``'s own id when it was added). An older one waiting
        is not joined: its pull was lost with the process that was to run it."""
        waiting = (
            select(st_emergencies.c.emergency_id)
            .where(st_emergencies.c.member == row["member"])
            .where(st_emergencies.c.period == row["period"])
            .where(st_emergencies.c.status == "received")
            .where(st_emergencies.c.received_at >= waiting_since)
            .limit(1)
        )
        with self._write.begin() as conn:
            found = conn.execute(waiting).scalar()
            if found is not None:
                return str(found)
            conn.execute(insert(st_emergencies).values(**row))
        return str(row["emergency_id"])

    def set_emergency(self, emergency_id: str, *, pull_id: str, status: str) -> None:
        with self._write.begin() as conn:
            conn.execute(
                update(st_emergencies)
                .where(st_emergencies.c.emergency_id == emergency_id)
                .values(pull_id=pull_id, status=status)
            )

    def emergencies(self, limit: int = 50) -> list[dict[str, Any]]:
        query = select(st_emergencies).order_by(st_emergencies.c.received_at.desc()).limit(limit)
        with self._read.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query).all()]

    # -- notifications (member) ------------------------------------------------------------
    def add_notification(self, row: dict[str, Any]) -> None:
        with self._write.begin() as conn:
            conn.execute(insert(st_notifications).values(**row))

    def notifications(self, *, pending_only: bool = False) -> list[dict[str, Any]]:
        query = select(st_notifications).order_by(st_notifications.c.received_at.desc())
        if pending_only:
            query = query.where(st_notifications.c.acknowledged_at.is_(None))
        with self._read.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query).all()]

    def acknowledge(self, notification_id: str, at: dt.datetime) -> bool:
        with self._write.begin() as conn:
            done = conn.execute(
                update(st_notifications)
                .where(
                    and_(
                        st_notifications.c.notification_id == notification_id,
                        st_notifications.c.acknowledged_at.is_(None),
                    )
                )
                .values(acknowledged_at=at)
            )
            return bool(done.rowcount)

    # -- regional-only rounds --------------------------------------------------------------
    def contribution(self, round_id: str, requester: str) -> dict[str, Any] | None:
        """The member's own contribution to a round, if it made one."""
        with self._read.connect() as conn:
            row = conn.execute(
                select(st_contributions).where(
                    and_(
                        st_contributions.c.round_id == round_id,
                        st_contributions.c.requester == requester,
                    )
                )
            ).first()
        return None if row is None else dict(row._mapping)

    def save_contribution(self, row: dict[str, Any]) -> dict[str, Any]:
        """Write once; if another thread wrote first, return what it wrote."""
        try:
            with self._write.begin() as conn:
                conn.execute(insert(st_contributions).values(**row))
            return row
        except IntegrityError:
            found = self.contribution(row["round_id"], row["requester"])
            assert found is not None
            return found

    def add_round(self, row: dict[str, Any]) -> None:
        with self._write.begin() as conn:
            conn.execute(insert(st_rounds).values(**row))

    def finish_round(
        self,
        round_id: str,
        *,
        status: str,
        members: list[str],
        detail: str,
        result: dict[str, Any] | None = None,
    ) -> None:
        with self._write.begin() as conn:
            conn.execute(
                update(st_rounds)
                .where(st_rounds.c.round_id == round_id)
                .values(
                    status=status,
                    members=json.dumps(members),
                    detail=detail,
                    result=None if result is None else json.dumps(result),
                )
            )

    def rounds(
        self, *, matrix: str | None = None, period: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Rounds, newest first; ``members`` and ``result`` decoded from JSON."""
        query = select(st_rounds).order_by(st_rounds.c.created_at.desc()).limit(limit)
        if matrix is not None:
            query = query.where(st_rounds.c.matrix == matrix)
        if period is not None:
            query = query.where(st_rounds.c.period == period)
        with self._read.connect() as conn:
            rows = conn.execute(query).all()
        return [
            {
                **dict(r._mapping),
                "members": json.loads(r.members),
                "result": json.loads(r.result) if r.result else None,
            }
            for r in rows
        ]

    def save_round_share(
        self, round_id: str, member: str, share: bytes, as_of: dt.datetime | None, at: dt.datetime
    ) -> None:
        row = {"round_id": round_id, "member": member, "share": share, "as_of": as_of}
        with self._write.begin() as conn:
            conn.execute(
                upsert(
                    self._read,
                    st_round_shares,
                    {**row, "received_at": at},
                    key_columns=("round_id", "member"),
                )
            )

    def round_shares(self, round_id: str) -> dict[str, bytes]:
        with self._read.connect() as conn:
            rows = conn.execute(
                select(st_round_shares.c.member, st_round_shares.c.share).where(
                    st_round_shares.c.round_id == round_id
                )
            ).all()
        return {str(r.member): bytes(r.share) for r in rows}

    # -- helper ----------------------------------------------------------------------------
    def helper_share(self, round_id: str, member: str) -> dict[str, Any] | None:
        with self._read.connect() as conn:
            row = conn.execute(
                select(helper_shares).where(
                    and_(helper_shares.c.round_id == round_id, helper_shares.c.member == member)
                )
            ).first()
        return None if row is None else dict(row._mapping)

    def add_helper_share(self, row: dict[str, Any]) -> bool:
        """False when a share for (round, member) was already held."""
        try:
            with self._write.begin() as conn:
                conn.execute(insert(helper_shares).values(**row))
        except IntegrityError:
            return False
        return True

    def helper_shares_of(self, round_id: str) -> list[dict[str, Any]]:
        with self._read.connect() as conn:
            rows = conn.execute(
                select(helper_shares).where(helper_shares.c.round_id == round_id)
            ).all()
        return [dict(r._mapping) for r in rows]

    def record_sum(
        self, row: dict[str, Any], check: Callable[[list[dict[str, Any]]], None]
    ) -> None:
        """Record an answered sum after ``check`` accepted every earlier sum to the requester.

        Every matrix and every period is handed to ``check``: sums of overlapping periods
        (however spelt) and of matrices sharing margins combine, so which of them matter is
        the caller's rule, not a key match here. Check and insert share one write transaction,
        so two concurrent asks cannot both pass the check against a history that lacks the
        other.
        """
        with self._write.begin() as conn:
            rows = conn.execute(
                select(helper_sums)
                .where(helper_sums.c.requester == row["requester"])
                .order_by(helper_sums.c.answered_at)
            ).all()
            earlier = [{**dict(r._mapping), "members": json.loads(r.members)} for r in rows]
            check(earlier)
            if any(e["round_id"] == row["round_id"] for e in earlier):
                return
            conn.execute(
                insert(helper_sums).values(**{**row, "members": json.dumps(row["members"])})
            )
