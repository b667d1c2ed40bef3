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
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine

from node.store.schema import audit_entries

_COLUMNS = tuple(c.name for c in audit_entries.columns)
_INSERT_ENTRY = (
    f"INSERT INTO audit_entries ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
)


def sqlite_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class SqliteHotPath:
    def __init__(self, engine: Engine) -> None:
        self._pooled = engine.raw_connection()
        connection = self._pooled.driver_connection
        assert isinstance(connection, sqlite3.Connection)
        self._db = connection
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._pooled.close()

    def _transaction(self, work: Callable[[sqlite3.Cursor], Any]) -> Any:
        with self._lock:
            cursor = self._db.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                result = work(cursor)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
            return result

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read statement (``?`` placeholders)."""
        with self._lock:
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

    def append(self, make_row: Callable[[int, str], Mapping[str, object]]) -> Mapping[str, object]:
        """Lock the head, let ``make_row(seq, prev_hash)`` build the entry, insert, move head."""

        def work(cur: sqlite3.Cursor) -> Mapping[str, object]:
            head = cur.execute("SELECT seq, entry_hash FROM audit_head WHERE id = 1").fetchone()
            if head is None:
                head = (0, "0" * 64)
                cur.execute(
                    "INSERT INTO audit_head (id, seq, entry_hash) VALUES (1, 0, ?)", (head[1],)
                )
            row = make_row(int(head[0]), str(head[1]))
            values = [
                sqlite_time(v) if isinstance(v, dt.datetime) else v
                for v in (row[c] for c in _COLUMNS)
            ]
            cur.execute(_INSERT_ENTRY, values)
            cur.execute(
                "UPDATE audit_head SET seq = ?, entry_hash = ? WHERE id = 1",
                (row["seq"], row["entry_hash"]),
            )
            return row

        result: Mapping[str, object] = self._transaction(work)
        return result
