"""The :class:`Store`: every database operation of the foundation, behind one interface.

Invariants:
* :meth:`Store.remember_nonce` is atomic across threads *and* processes: the primary key
  ``(sender, nonce)`` makes the second insert fail, which is reported as a replay.
* :meth:`Store.append_audit` extends the hash chain under a row lock on ``audit_head`` (and a
  process-local lock for SQLite), so concurrent appends never fork the chain.
* :meth:`Store.put_states` writes its values in one transaction: a reader sees all or none.
* Nothing here decides policy: callers pass ``now`` and records; the store persists them.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from node.audit import GENESIS_HASH, AuditEntry, AuditRecord, Checkpoint, compute_entry_hash
from node.errors import AuthenticationError, StoreError
from node.store import database
from node.store.biometric_store import BiometricStore
from node.store.dialect import insert_ignore, upsert
from node.store.failures import database_error, redacted_url
from node.store.manifest_store import ManifestStore
from node.store.matching_store import MatchingStore
from node.store.policy_store import PolicyStore
from node.store.records_store import RecordsStore
from node.store.schema import audit_checkpoints, audit_entries, audit_head, node_state, nonces
from node.store.secretariat_store import SecretariatStore
from node.store.sqlite_hot import SqliteHotPath

# Statements built once: constructing SQLAlchemy statements per call costs more than the
# SQLite write itself on the hot path (every RPC appends to the audit chain).
_INSERT_NONCE = insert(nonces)
_INSERT_ENTRY = insert(audit_entries)
_MOVE_HEAD = update(audit_head).where(audit_head.c.id == 1)
_LOCK_HEAD = (
    select(audit_head.c.seq, audit_head.c.entry_hash).where(audit_head.c.id == 1).with_for_update()
)


@dataclass(frozen=True)
class AuditFilter:
    peer: str | None = None
    since: dt.datetime | None = None
    after_seq: int = 0
    limit: int | None = None


class Store:
    """One node's database. Thread-safe; cheap to share across gRPC worker threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write = database.writer(engine)
        self._append_lock = threading.Lock()
        self._fast = SqliteHotPath(engine) if engine.dialect.name == "sqlite" else None
        self.policies = PolicyStore(engine, self._write, self._fast)
        self.records = RecordsStore(engine, self._write)
        self.matching = MatchingStore(engine, self._write, self._fast)
        self.biometrics = BiometricStore(engine, self._write)
        self.secretariat = SecretariatStore(engine, self._write)
        self.manifests = ManifestStore(engine, self._write)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        if self._fast is not None:
            self._fast.close()
        self.engine.dispose()

    # -- schema --------------------------------------------------------------------------
    def migrate(self) -> None:
        database.upgrade(self.engine)

    def checkpoint_wal(self) -> None:
        """Fold SQLite's write-ahead log into the database (no-op on PostgreSQL)."""
        if self.backend == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def pending_migrations(self) -> bool:
        return database.current_revision(self.engine) != database.head_revision()

    # -- replay cache --------------------------------------------------------------------
    def remember_nonce(self, sender: str, nonce: str, expires_at: dt.datetime) -> None:
        """Record a nonce; raise :class:`AuthenticationError` if it was seen already."""
        try:
            if self._fast is not None:
                self._fast.insert_nonce(sender, nonce, expires_at)
                return
            with self._write.begin() as conn:
                conn.execute(
                    _INSERT_NONCE, {"sender": sender, "nonce": nonce, "expires_at": expires_at}
                )
        except (IntegrityError, sqlite3.IntegrityError):
            raise AuthenticationError(
                f"replayed request: nonce {nonce} from {sender} was already used",
                hint="send every request with a fresh random nonce; do not retry signed bytes",
            ) from None
        except (OperationalError, sqlite3.OperationalError) as exc:
            raise StoreError(f"replay cache unavailable: {exc}") from exc

    def purge_nonces(self, now: dt.datetime) -> int:
        with self._write.begin() as conn:
            result = conn.execute(delete(nonces).where(nonces.c.expires_at < now))
            return int(result.rowcount or 0)

    # -- audit chain ---------------------------------------------------------------------
    def append_audit(self, record: AuditRecord) -> AuditEntry:
        """Append ``record`` to the chain and return the stored entry."""
        if self._fast is not None:
            made: list[AuditEntry] = []

            def make_row(seq: int, prev_hash: str) -> dict[str, object]:
                entry = AuditEntry(
                    seq + 1, record, prev_hash, compute_entry_hash(seq + 1, prev_hash, record)
                )
                made.append(entry)
                return _entry_row(entry)

            try:
                self._fast.append(make_row)
            except sqlite3.Error as exc:
                raise StoreError(f"audit append failed: {exc}") from exc
            return made[-1]
        with self._append_lock:
            try:
                with self._write.begin() as conn:
                    seq, prev_hash = self._locked_head(conn)
                    entry = AuditEntry(
                        seq + 1, record, prev_hash, compute_entry_hash(seq + 1, prev_hash, record)
                    )
                    conn.execute(_INSERT_ENTRY, _entry_row(entry))
                    conn.execute(_MOVE_HEAD, {"seq": entry.seq, "entry_hash": entry.entry_hash})
                    return entry
            except SQLAlchemyError as exc:
                raise StoreError(f"audit append failed: {exc}") from exc

    def _locked_head(self, conn: Connection) -> tuple[int, str]:
        row = conn.execute(_LOCK_HEAD).first()
        if row is None:
            # First append ever: create the head row if nobody else did, then lock it, so
            # concurrent first appenders (replicas on PostgreSQL) queue on the same row.
            conn.execute(
                insert_ignore(
                    self.engine, audit_head, [{"id": 1, "seq": 0, "entry_hash": GENESIS_HASH}]
                )
            )
            row = conn.execute(_LOCK_HEAD).one()
        return int(row.seq), str(row.entry_hash)

    def audit_head(self) -> tuple[int, str]:
        with self.engine.connect() as conn:
            row = conn.execute(select(audit_head.c.seq, audit_head.c.entry_hash)).first()
        return (0, GENESIS_HASH) if row is None else (int(row.seq), str(row.entry_hash))

    def iter_audit(
        self, filt: AuditFilter | None = None, batch: int = 1000
    ) -> Iterator[AuditEntry]:
        """Entries in chain order, streamed in batches (constant memory)."""
        filt = filt or AuditFilter()
        after, emitted = filt.after_seq, 0
        while True:
            query = select(audit_entries).where(audit_entries.c.seq > after)
            if filt.peer:
                query = query.where(audit_entries.c.peer == filt.peer)
            if filt.since:
                query = query.where(audit_entries.c.at >= filt.since)
            with self.engine.connect() as conn:
                rows = conn.execute(query.order_by(audit_entries.c.seq).limit(batch)).all()
            for row in rows:
                yield _row_entry(row)
                emitted += 1
                if filt.limit is not None and emitted >= filt.limit:
                    return
            if len(rows) < batch:
                return
            after = int(rows[-1].seq)

    def audit_entry(self, seq: int) -> AuditEntry | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(audit_entries).where(audit_entries.c.seq == seq)).first()
        return None if row is None else _row_entry(row)

    def audit_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(audit_entries)).scalar_one())

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        try:
            self._add_checkpoint(checkpoint)
        except IntegrityError:
            raise StoreError(
                f"a checkpoint at entry {checkpoint.seq} already exists",
                hint="checkpoints are written once per head; nothing to do",
            ) from None

    def _add_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self._write.begin() as conn:
            conn.execute(
                insert(audit_checkpoints).values(
                    seq=checkpoint.seq,
                    entry_hash=checkpoint.entry_hash,
                    at=checkpoint.at,
                    node=checkpoint.node,
                    key_id=checkpoint.key_id,
                    signature=checkpoint.signature,
                )
            )

    def checkpoints(self, since_seq: int = 0) -> list[Checkpoint]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(audit_checkpoints)
                .where(audit_checkpoints.c.seq > since_seq)
                .order_by(audit_checkpoints.c.seq)
            ).all()
        return [
            Checkpoint(
                seq=int(r.seq),
                entry_hash=r.entry_hash,
                at=r.at,
                node=r.node,
                key_id=r.key_id,
                signature=bytes(r.signature),
            )
            for r in rows
        ]

    def last_checkpoint_seq(self) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(select(func.max(audit_checkpoints.c.seq))).scalar_one()
        return int(value or 0)

    # -- node state ----------------------------------------------------------------------
    def put_state(self, key: str, value: str, now: dt.datetime) -> None:
        """Insert or replace one value (atomic upsert on both backends)."""
        self.put_states({key: value}, now)

    def put_states(self, values: Mapping[str, str], now: dt.datetime) -> None:
        """Insert or replace several values in one transaction: all of them or none.

        Why: values that only make sense together (a key epoch and its mode) must never be
        seen, or left, half written; one ``SELECT`` of them then always reads a consistent set.
        """
        try:
            with self._write.begin() as conn:
                for key, value in values.items():
                    conn.execute(
                        upsert(
                            self.engine,
                            node_state,
                            {"key": key, "value": value, "updated_at": now},
                            key_columns=("key",),
                        )
                    )
        except SQLAlchemyError as exc:
            names = ", ".join(repr(k) for k in values)
            raise StoreError(f"cannot save node state {names}: {exc}") from exc

    def get_state(self, key: str) -> tuple[str, dt.datetime] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(node_state.c.value, node_state.c.updated_at).where(
                    and_(node_state.c.key == key)
                )
            ).first()
        return None if row is None else (str(row.value), row.updated_at)


def _entry_row(entry: AuditEntry) -> dict[str, object]:
    record = entry.record
    return {
        "seq": entry.seq,
        "at": record.at,
        "direction": record.direction,
        "peer": record.peer,
        "method": record.method,
        "request_header": record.request_header,
        "request_signature": record.request_signature,
        "request_digest": record.request_digest,
        "decision": record.decision,
        "status": record.status,
        "reason": record.reason,
        "agreement_id": record.agreement_id,
        "agreement_hash": record.agreement_hash,
        "response_header": record.response_header,
        "response_signature": record.response_signature,
        "response_digest": record.response_digest,
        "extra": json.dumps(dict(record.extra), sort_keys=True),
        "prev_hash": entry.prev_hash,
        "entry_hash": entry.entry_hash,
    }


def _row_entry(row: Row[object] | Sequence[object]) -> AuditEntry:
    m = row._mapping if isinstance(row, Row) else None
    assert m is not None
    record = AuditRecord(
        at=m["at"],
        direction=m["direction"],
        peer=m["peer"],
        method=m["method"],
        request_header=bytes(m["request_header"]),
        request_signature=bytes(m["request_signature"]),
        request_digest=m["request_digest"],
        decision=m["decision"],
        status=m["status"],
        reason=m["reason"],
        agreement_id=m["agreement_id"],
        agreement_hash=m["agreement_hash"],
        response_header=bytes(m["response_header"]),
        response_signature=bytes(m["response_signature"]),
        response_digest=m["response_digest"],
        extra=json.loads(m["extra"]),
    )
    return AuditEntry(
        seq=int(m["seq"]), record=record, prev_hash=m["prev_hash"], entry_hash=m["entry_hash"]
    )


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open the database at ``url``; apply pending migrations unless ``migrate`` is False.

    A database that cannot be opened (damaged, unreachable, not writable) is a
    :class:`StoreError` naming it, never the driver's traceback."""
    engine = database.make_engine(url)
    try:
        store = Store(engine)  # on SQLite this opens the file (the hot path's connection)
        try:
            if migrate:
                store.migrate()
        except BaseException:
            store.close()
            raise
    except (SQLAlchemyError, sqlite3.Error) as exc:
        engine.dispose()
        raise database_error(exc, _where(url)) from exc
    except StoreError as exc:  # a failed migration: say which database
        engine.dispose()
        message = f"the node's database {_where(url)} cannot be used: {exc.message}"
        raise StoreError(message, hint=exc.hint) from exc
    return store


def _where(url: str) -> str:
    """The database named for an operator: the file of an SQLite URL, else the redacted URL."""
    if url.startswith("sqlite"):
        return url.split(":///", 1)[-1] or "(in memory)"
    return redacted_url(url)
