"""Persistence of private identity matching: filter entries, filters, peers' filters, follow-ups.

Why a sub-store: a holder keeps, per matchable dataset and key epoch, one row per identity key
of each record (the 16-byte prefix of its OPRF output and the SHA-256 of the whole output), so
the filter can be kept current incrementally (only new or changed records are evaluated) and a
follow-up can be checked against the full output, not just the public prefix. Each published
filter version is kept with its signed manifest for deltas; a querier keeps the last verified
filter of each peer and dataset; both sides keep the follow-ups they asked or answered.

Invariants:
* :meth:`MatchingStore.apply_changes` removes and adds entries of one (dataset, epoch) in one
  transaction: a reader sees the entries before or after an update, never half of one.
* Entries never cross epochs: every read names the epoch, and :meth:`drop_other_epochs` removes
  what an old key produced, so an old output finds nothing.
* :meth:`MatchingStore.save_peer_filter` never replaces a peer's filter with one of a lower
  (epoch, version) unless told to (an explicit full re-sync).
* Nothing here decides policy or verifies signatures; callers pass verified values and ``now``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

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
    select,
)

from node.store.followup_store import FollowUpRecord, FollowUpStore, match_followups
from node.store.schema import UtcDateTime, metadata
from node.store.sqlite_hot import SqliteHotPath

__all__ = [
    "BULK_ROWS",
    "PREFIX_INDEX",
    "EntryRow",
    "FollowUpRecord",
    "FollowUpStore",
    "MatchingStore",
    "StoredFilter",
    "match_entries",
    "match_filters",
    "match_followups",
    "match_peer_filters",
]  # fmt: skip

match_entries = Table(
    "match_entries",
    metadata,
    Column("dataset", String(40), primary_key=True),
    Column("epoch", BigInteger, primary_key=True),
    Column("source", String(40), primary_key=True),
    Column("record_id", String(40), primary_key=True),
    Column("key_no", SmallInteger, primary_key=True),
    Column("prefix", LargeBinary, nullable=False),
    Column("digest", LargeBinary, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Index("ix_match_entries_prefix", "dataset", "epoch", "prefix"),
)

match_filters = Table(
    "match_filters",
    metadata,
    Column("dataset", String(40), primary_key=True),
    Column("epoch", BigInteger, primary_key=True),
    Column("version", BigInteger, primary_key=True),
    Column("manifest", LargeBinary, nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("encoded", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

match_peer_filters = Table(
    "match_peer_filters",
    metadata,
    Column("peer", String(8), primary_key=True),
    Column("dataset", String(40), primary_key=True),
    Column("epoch", BigInteger, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("manifest", LargeBinary, nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("encoded", LargeBinary, nullable=False),
    Column("fetched_at", UtcDateTime(), nullable=False),
)

PREFIX_INDEX = "ix_match_entries_prefix"
#: Loads of at least this many entries rebuild the prefix index once instead of row by row.
BULK_ROWS = 100_000
#: One entry as written: source, record id, key number, 16-byte prefix, SHA-256 of the output,
#: content hash of the record it came from.
EntryRow = tuple[str, str, int, bytes, bytes, str]


@dataclass(frozen=True)
class StoredFilter:
    """A published (holder) or fetched (querier) filter with its signed manifest."""

    dataset: str
    epoch: int
    version: int
    manifest: bytes
    signature: bytes
    key_id: str
    encoded: bytes
    at: dt.datetime
    peer: str = ""


class MatchingStore(FollowUpStore):
    """The matching part of a node's :class:`~node.store.Store`.

    ``fast`` (SQLite only) runs the two reads every ``Evaluate`` makes without Core overhead.
    """

    def __init__(self, engine: Engine, writer: Engine, fast: SqliteHotPath | None = None) -> None:
        super().__init__(engine, writer)
        self._fast = fast

    # -- entries (holder) ------------------------------------------------------------------
    def entry_states(self, dataset: str, epoch: int) -> dict[tuple[str, str], str]:
        """``(source, record_id) -> content_hash`` of every record with entries."""
        query = (
            select(match_entries.c.source, match_entries.c.record_id, match_entries.c.content_hash)
            .where(and_(match_entries.c.dataset == dataset, match_entries.c.epoch == epoch))
            .distinct()
        )
        with self._read.connect() as conn:
            return {(r[0], r[1]): r[2] for r in conn.execute(query)}

    def apply_changes(
        self,
        dataset: str,
        epoch: int,
        removed: Sequence[tuple[str, str]],
        added: Sequence[EntryRow],
        *,
        replace_all: bool = False,
    ) -> None:
        """Remove every entry of ``removed`` records (of every record with ``replace_all``),
        then add ``added``, in one transaction. A bulk load drops the prefix index and builds
        it again afterwards, inside the same transaction (a failure restores it)."""
        bulk = len(added) >= BULK_ROWS
        with self._write.begin() as conn:
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            if replace_all:
                conn.execute(
                    delete(match_entries).where(
                        and_(match_entries.c.dataset == dataset, match_entries.c.epoch == epoch)
                    )
                )
            if bulk:
                conn.exec_driver_sql(f"DROP INDEX {PREFIX_INDEX}")
            if removed:
                conn.exec_driver_sql(
                    f"DELETE FROM match_entries WHERE dataset = {mark} AND epoch = {mark} "
                    f"AND source = {mark} AND record_id = {mark}",
                    [(dataset, epoch, source, record) for source, record in removed],
                )
            if added:
                marks = ", ".join([mark] * 8)
                sql = (
                    "INSERT INTO match_entries (dataset, epoch, source, record_id, key_no, "
                    f"prefix, digest, content_hash) VALUES ({marks})"
                )
                for start in range(0, len(added), 50_000):
                    conn.exec_driver_sql(
                        sql, [(dataset, epoch, *row) for row in added[start : start + 50_000]]
                    )
            if bulk:
                conn.exec_driver_sql(
                    f"CREATE INDEX {PREFIX_INDEX} ON match_entries (dataset, epoch, prefix)"
                )

    def prefixes(self, dataset: str, epoch: int) -> bytes:
        """Every entry's 16-byte prefix, concatenated (repeats included, any order)."""
        query = select(match_entries.c.prefix).where(
            and_(match_entries.c.dataset == dataset, match_entries.c.epoch == epoch)
        )
        with self._read.connect() as conn:
            return b"".join(bytes(r[0]) for r in conn.execute(query))

    def find(self, dataset: str, epoch: int, prefix: bytes) -> list[tuple[str, str, bytes]]:
        """``(source, record_id, digest)`` of the entries whose prefix is ``prefix``."""
        query = select(
            match_entries.c.source, match_entries.c.record_id, match_entries.c.digest
        ).where(
            and_(
                match_entries.c.dataset == dataset,
                match_entries.c.epoch == epoch,
                match_entries.c.prefix == prefix,
            )
        )
        with self._read.connect() as conn:
            return [(r[0], r[1], bytes(r[2])) for r in conn.execute(query)]

    def count_entries(self, dataset: str, epoch: int) -> int:
        query = select(func.count()).where(
            and_(match_entries.c.dataset == dataset, match_entries.c.epoch == epoch)
        )
        with self._read.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def drop_other_epochs(self, epoch: int) -> None:
        """Forget every entry and filter of any epoch but ``epoch`` (after a rotation)."""
        with self._write.begin() as conn:
            conn.execute(delete(match_entries).where(match_entries.c.epoch != epoch))
            conn.execute(delete(match_filters).where(match_filters.c.epoch != epoch))

    # -- published filters (holder) --------------------------------------------------------
    def save_filter(self, published: StoredFilter, *, keep: int) -> None:
        """Store a new version and keep only the newest ``keep`` of its (dataset, epoch)."""
        with self._write.begin() as conn:
            conn.execute(
                insert(match_filters).values(
                    dataset=published.dataset,
                    epoch=published.epoch,
                    version=published.version,
                    manifest=published.manifest,
                    signature=published.signature,
                    key_id=published.key_id,
                    encoded=published.encoded,
                    created_at=published.at,
                )
            )
            same = and_(
                match_filters.c.dataset == published.dataset,
                match_filters.c.epoch == published.epoch,
            )
            versions = [
                int(v)
                for v in conn.execute(
                    select(match_filters.c.version)
                    .where(same)
                    .order_by(match_filters.c.version.desc())
                ).scalars()
            ]
            if len(versions) > keep:
                conn.execute(
                    delete(match_filters).where(
                        and_(same, match_filters.c.version <= versions[keep])
                    )
                )

    def published(
        self, dataset: str, epoch: int, version: int | None = None
    ) -> StoredFilter | None:
        """The newest published filter of (dataset, epoch), or the given ``version``."""
        query = select(match_filters).where(
            and_(match_filters.c.dataset == dataset, match_filters.c.epoch == epoch)
        )
        if version is not None:
            query = query.where(match_filters.c.version == version)
        query = query.order_by(match_filters.c.version.desc()).limit(1)
        with self._read.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return StoredFilter(
            row.dataset,
            int(row.epoch),
            int(row.version),
            bytes(row.manifest),
            bytes(row.signature),
            row.key_id,
            bytes(row.encoded),
            row.created_at,
        )

    def latest_version(self, dataset: str, epoch: int) -> int:
        """Newest published version of (dataset, epoch); 0 when none (reads no filter bytes)."""
        query = select(func.max(match_filters.c.version)).where(
            and_(match_filters.c.dataset == dataset, match_filters.c.epoch == epoch)
        )
        with self._read.connect() as conn:
            return int(conn.execute(query).scalar_one() or 0)

    def states(self, keys: Sequence[str]) -> dict[str, str]:
        """Several ``node_state`` values in one read (the hot path reads epoch and mode).

        Plain driver SQL: on the per-call path, building and compiling a Core statement costs
        more than the read itself.
        """
        if self._fast is not None:
            marks = ", ".join("?" * len(keys))
            sql = f"SELECT key, value FROM node_state WHERE key IN ({marks})"
            found = self._fast.rows(sql, keys)
            return {str(r[0]): str(r[1]) for r in found}
        with self._read.connect() as conn:
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            marks = ", ".join([mark] * len(keys))
            rows = conn.exec_driver_sql(
                f"SELECT key, value FROM node_state WHERE key IN ({marks})", tuple(keys)
            )
            return {str(r[0]): str(r[1]) for r in rows}

    def current_version(self, dataset: str, epoch: int) -> int:
        """:meth:`latest_version` in plain driver SQL, for the per-call path."""
        if self._fast is not None:
            sql = "SELECT MAX(version) FROM match_filters WHERE dataset = ? AND epoch = ?"
            return int(self._fast.rows(sql, (dataset, epoch))[0][0] or 0)
        with self._read.connect() as conn:
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            value = conn.exec_driver_sql(
                f"SELECT MAX(version) FROM match_filters WHERE dataset = {mark} AND epoch = {mark}",
                (dataset, epoch),
            ).scalar()
        return int(value or 0)

    def latest_versions(self, epoch: int) -> dict[str, int]:
        """Newest published version per dataset of ``epoch``."""
        query = (
            select(match_filters.c.dataset, func.max(match_filters.c.version))
            .where(match_filters.c.epoch == epoch)
            .group_by(match_filters.c.dataset)
        )
        with self._read.connect() as conn:
            return {r[0]: int(r[1]) for r in conn.execute(query)}

    # -- peers' filters (querier) ----------------------------------------------------------
    def save_peer_filter(
        self, cached: StoredFilter, *, allow_older: bool = False
    ) -> tuple[int, int] | None:
        """Make ``cached`` the copy of its (peer, dataset), unless the stored copy has a higher
        (epoch, version) and not ``allow_older``: then nothing changes and that (epoch,
        version) is returned. Compared and replaced in one transaction (the row is locked), so
        two syncs cannot leave the older copy behind."""
        same = and_(
            match_peer_filters.c.peer == cached.peer,
            match_peer_filters.c.dataset == cached.dataset,
        )
        with self._write.begin() as conn:
            held = conn.execute(
                select(match_peer_filters.c.epoch, match_peer_filters.c.version)
                .where(same)
                .with_for_update()
            ).first()
            if held is not None and not allow_older:
                kept = (int(held.epoch), int(held.version))
                if (cached.epoch, cached.version) < kept:
                    return kept
            conn.execute(delete(match_peer_filters).where(same))
            conn.execute(
                insert(match_peer_filters).values(
                    peer=cached.peer,
                    dataset=cached.dataset,
                    epoch=cached.epoch,
                    version=cached.version,
                    manifest=cached.manifest,
                    signature=cached.signature,
                    key_id=cached.key_id,
                    encoded=cached.encoded,
                    fetched_at=cached.at,
                )
            )
        return None

    def peer_filters(self, peer: str | None = None) -> list[StoredFilter]:
        query = select(match_peer_filters).order_by(
            match_peer_filters.c.peer, match_peer_filters.c.dataset
        )
        if peer is not None:
            query = query.where(match_peer_filters.c.peer == peer)
        with self._read.connect() as conn:
            rows = conn.execute(query).all()
        return [
            StoredFilter(
                r.dataset,
                int(r.epoch),
                int(r.version),
                bytes(r.manifest),
                bytes(r.signature),
                r.key_id,
                bytes(r.encoded),
                r.fetched_at,
                peer=r.peer,
            )
            for r in rows
        ]
