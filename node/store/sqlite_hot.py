"""The per-call statements on SQLite, on one dedicated connection without Core overhead.

Why: every RPC writes on each side (the replay-cache nonce, the audit entry and, for
agreement-checked calls, the quota counters) and reads a few freshness stamps (installed
agreements, the matching epoch and filter version). Through SQLAlchemy Core each of those
statements costs several times the SQLite work itself — a pool checkout, a ``begin`` event,
a result proxy — and together they were most of a holder's CPU per ``Evaluate``. On SQLite —
one process, one file — a single held connection running the same SQL directly removes that
cost. PostgreSQL keeps the Core path (its cost is the network round trip).

Invariants: the SQL is the same as the Core path's (``tests/integration/test_store_contract``
runs both); each write is its own ``BEGIN IMMEDIATE`` … ``COMMIT``, so it takes SQLite's
write lock up front and is atomic across processes; a read is one statement in autocommit
mode, so it sees every transaction committed before it, by any process; datetimes are
stored in the form SQLAlchemy uses for SQLite (naive UTC ``YYYY-MM-DD HH:MM:SS.ffffff``).

Audit appends commit in groups: a thread that finds the connection busy queues its entry, and
whichever thread holds the connection next writes every queued entry in one transaction
(group commit, as database logs do). Each caller still returns only once its own entry is
committed, so "audited before the answer is used" holds; what is shared is the ``BEGIN``, the
head read and move, and the ``COMMIT``. A querier's fan-out (ten answers arriving together)
and a busy holder are the callers that benefit. A group that failed after ``BEGIN`` is retried
one entry at a time, so an entry that cannot be written never costs the others theirs; a
group that could not even take the write lock fails as a whole, and so does one interrupted
while committing. Rows reach their callers only after ``COMMIT``.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Engine

from node.store.schema import audit_entries

_COLUMNS = tuple(c.name for c in audit_entries.columns)
_INSERT_ENTRY = (
    f"INSERT INTO audit_entries ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
)


def sqlite_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


RowMaker = Callable[[int, str], Mapping[str, object]]


@dataclass
class _Queued:
    """An audit entry waiting for a group commit, and what became of it: ``row`` once it is
    committed, or ``error`` (and the thread that met it) once it cannot be."""

    make_row: RowMaker
    row: Mapping[str, object] | None = None
    error: BaseException | None = None
    failed_in: int = 0


class _BeginError(Exception):
    """The write lock could not be taken: no entry of the group is at fault."""

    def __init__(self, cause: sqlite3.Error) -> None:
        super().__init__(str(cause))
        self.cause = cause


class SqliteHotPath:
    def __init__(self, engine: Engine) -> None:
        self._pooled = engine.raw_connection()
        connection = self._pooled.driver_connection
        assert isinstance(connection, sqlite3.Connection)
        self._db = connection
        self._lock = threading.Lock()  # the connection
        self._queue_lock = threading.Lock()  # the audit entries waiting for a group commit
        self._queue: list[_Queued] = []
        self.audit_transactions = 0  # group commits made (observability and tests)

    def close(self) -> None:
        with self._lock:
            self._pooled.close()

    def _transaction(self, work: Callable[[sqlite3.Cursor], Any]) -> Any:
        with self._lock:
            try:
                return self._locked_transaction(work)
            except _BeginError as exc:
                raise exc.cause from None

    def _locked_transaction(self, work: Callable[[sqlite3.Cursor], Any]) -> Any:
        """``work`` between ``BEGIN IMMEDIATE`` and ``COMMIT``; on any failure, the connection
        is left with no transaction open (a failed ``COMMIT`` may leave SQLite's open, and the
        reads on this connection would then see that old snapshot for good)."""
        cursor = self._db.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _BeginError(exc) from exc
        try:
            result = work(cursor)
            cursor.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        return result

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read statement (``?`` placeholders), in autocommit: it sees every
        transaction committed before it, by any process."""
        with self._lock:
            assert not self._db.in_transaction, "a transaction was left open on the hot path"
            return list(self._db.execute(sql, tuple(params)).fetchall())

    def consume(
        self,
        sql: str,
        params: Sequence[object],
        check: Callable[[list[tuple[Any, ...]]], None],
    ) -> list[tuple[Any, ...]]:
        """Run one write statement with ``RETURNING`` and let ``check`` see its rows inside the
        transaction: raising there rolls the write back (the quota counters' contract)."""

        def work(cur: sqlite3.Cursor) -> list[tuple[Any, ...]]:
            returned = list(cur.execute(sql, tuple(params)).fetchall())
            check(returned)
            return returned

        result: list[tuple[Any, ...]] = self._transaction(work)
        return result

    def insert_nonce(self, sender: str, nonce: str, expires_at: dt.datetime) -> None:
        """Raises :class:`sqlite3.IntegrityError` when the nonce was seen (a replay)."""
        self._transaction(
            lambda cur: cur.execute(
                "INSERT INTO nonces (sender, nonce, expires_at) VALUES (?, ?, ?)",
                (sender, nonce, sqlite_time(expires_at)),
            )
        )

    def append(self, make_row: RowMaker) -> Mapping[str, object]:
        """Lock the head, let ``make_row(seq, prev_hash)`` build the entry, insert, move head.

        The entry may be committed by another thread, in one transaction with others (see the
        module docstring); either way it is committed when this returns, or this raises.
        """
        mine = _Queued(make_row)
        with self._queue_lock:
            self._queue.append(mine)
        with self._lock:
            if mine.row is None and mine.error is None:  # nobody committed it meanwhile
                with self._queue_lock:
                    group, self._queue = self._queue, []
                self._commit_group(group)
        error = mine.error
        if error is None:
            assert mine.row is not None
            return mine.row
        if mine.failed_in == threading.get_ident():
            raise error
        # Met by the thread that committed the group: a copy here, its traceback stays there.
        if isinstance(error, sqlite3.Error):
            raise sqlite3.OperationalError(str(error)) from error
        raise RuntimeError(f"audit entry not written: {error!r}") from error

    def _commit_group(self, group: list[_Queued]) -> None:
        """Write ``group`` in one transaction; if an entry or its insert failed, each entry in
        a transaction of its own, so that one bad entry costs the others nothing. Rows are
        handed to their callers only after ``COMMIT``; every entry not committed gets an
        error, whatever was raised (an interrupt in the committing thread included)."""
        try:
            rows = self._locked_transaction(lambda cur: self._write_entries(cur, group))
        except _BeginError as exc:  # nobody's fault: each caller is told
            self._fail(group, exc.cause)
            return
        except Exception as exc:
            if len(group) == 1:
                self._fail(group, exc)
                return
            for queued in group:
                self._commit_group([queued])
            return
        except BaseException as exc:
            self._fail(group, exc)
            raise
        for queued, row in zip(group, rows, strict=True):
            queued.row = row
        self.audit_transactions += 1

    @staticmethod
    def _fail(group: list[_Queued], error: BaseException) -> None:
        here = threading.get_ident()
        for queued in group:
            if queued.row is None and queued.error is None:
                queued.error, queued.failed_in = error, here

    @staticmethod
    def _write_entries(cur: sqlite3.Cursor, group: list[_Queued]) -> list[Mapping[str, object]]:
        head = cur.execute("SELECT seq, entry_hash FROM audit_head WHERE id = 1").fetchone()
        if head is None:
            head = (0, "0" * 64)
            cur.execute("INSERT INTO audit_head (id, seq, entry_hash) VALUES (1, 0, ?)", (head[1],))
        seq, prev_hash = int(head[0]), str(head[1])
        rows: list[Mapping[str, object]] = []
        for queued in group:
            row = queued.make_row(seq, prev_hash)
            values = [
                sqlite_time(v) if isinstance(v, dt.datetime) else v
                for v in (row[c] for c in _COLUMNS)
            ]
            cur.execute(_INSERT_ENTRY, values)
            seq, prev_hash = cast(int, row["seq"]), cast(str, row["entry_hash"])
            rows.append(row)
        cur.execute("UPDATE audit_head SET seq = ?, entry_hash = ? WHERE id = 1", (seq, prev_hash))
        return rows
