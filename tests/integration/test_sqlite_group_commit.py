"""SQLite's audit group commit: entries queued while the connection is busy go in one
transaction, each caller returns only once its own entry is committed, the chain stays one
chain, and an entry that cannot be written costs no other entry its place."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from test_store_contract import record

from node.audit import AuditEntry, verify_chain
from node.store import Store, open_store
from node.store.sqlite_hot import SqliteHotPath


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'node.db'}")
    yield opened
    opened.close()


def hot(store: Store) -> SqliteHotPath:
    fast = store._fast
    assert fast is not None
    return fast


def wait_for_queue(fast: SqliteHotPath, length: int) -> None:
    deadline = time.monotonic() + 30
    while len(fast._queue) < length:
        assert time.monotonic() < deadline, "the appending threads never queued their entries"
        time.sleep(0.001)


def test_entries_queued_while_busy_are_committed_together(store: Store) -> None:
    fast = hot(store)
    store.append_audit(record(1))
    before = fast.audit_transactions
    results: dict[int, AuditEntry] = {}

    def append(i: int) -> None:
        results[i] = store.append_audit(record(i))

    threads = [threading.Thread(target=append, args=(i,)) for i in range(2, 7)]
    with fast._lock:  # the connection is busy: every append queues
        for thread in threads:
            thread.start()
        wait_for_queue(fast, 5)
        assert store.audit_count() == 1  # nothing of the queue is written yet
    for thread in threads:
        thread.join(timeout=30)
    assert fast.audit_transactions == before + 1
    assert sorted(e.seq for e in results.values()) == [2, 3, 4, 5, 6]
    stored = list(store.iter_audit())
    assert verify_chain(stored).count == 6
    assert {e.seq: e for e in stored[1:]} == {e.seq: e for e in results.values()}


def test_an_entry_that_cannot_be_written_costs_the_others_nothing(store: Store) -> None:
    fast = hot(store)
    good = store.append_audit(record(1))
    outcome: dict[str, object] = {}

    def broken(_seq: int, _prev: str) -> Mapping[str, object]:
        raise ValueError("this entry cannot be built")

    def append_broken() -> None:
        try:
            fast.append(broken)
        except RuntimeError as exc:
            outcome["error"] = exc

    def append_good(i: int) -> None:
        outcome[str(i)] = store.append_audit(record(i))

    threads = [threading.Thread(target=append_good, args=(2,))]
    threads += [threading.Thread(target=append_broken)]
    threads += [threading.Thread(target=append_good, args=(3,))]
    with fast._lock:
        for thread in threads:
            thread.start()
            wait_for_queue(fast, threads.index(thread) + 1)  # queued in this order
    for thread in threads:
        thread.join(timeout=30)
    assert "cannot be built" in str(outcome["error"])
    stored = list(store.iter_audit())
    assert [e.seq for e in stored] == [1, 2, 3]
    assert verify_chain(stored).head_hash == stored[-1].entry_hash
    assert stored[0] == good and stored[1:] == [outcome["2"], outcome["3"]]


def test_a_lone_append_is_its_own_transaction(store: Store) -> None:
    fast = hot(store)
    before = fast.audit_transactions
    for i in range(1, 4):
        store.append_audit(record(i))
    assert fast.audit_transactions == before + 3
    assert verify_chain(store.iter_audit()).count == 3


def test_an_interrupt_while_committing_fails_every_entry_of_the_group(store: Store) -> None:
    fast = hot(store)
    store.append_audit(record(1))
    outcome: dict[int, BaseException | AuditEntry] = {}

    def interrupted(_seq: int, _prev: str) -> Mapping[str, object]:
        raise KeyboardInterrupt

    def append(i: int) -> None:
        try:
            if i == 3:
                fast.append(interrupted)
            else:
                outcome[i] = store.append_audit(record(i))
        except BaseException as exc:
            outcome[i] = exc

    threads = [threading.Thread(target=append, args=(i,)) for i in (2, 3, 4)]
    with fast._lock:
        for position, thread in enumerate(threads, start=1):
            thread.start()
            wait_for_queue(fast, position)
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    # The committing thread meets the interrupt; the others are told their entry was not
    # written (none is handed a row that the rollback took back).
    kinds = sorted(type(outcome[i]).__name__ for i in (2, 3, 4))
    assert kinds == ["KeyboardInterrupt", "RuntimeError", "RuntimeError"]
    assert [e.seq for e in store.iter_audit()] == [1]  # nothing of the group was committed
    assert store.append_audit(record(5)).seq == 2


def test_a_failed_commit_leaves_no_transaction_open(store: Store) -> None:
    fast = hot(store)
    fast._db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    fast._db.execute("CREATE TABLE child (parent INTEGER REFERENCES parent (id))")

    def orphan(cur: sqlite3.Cursor) -> None:
        cur.execute("PRAGMA defer_foreign_keys = ON")  # the check moves to COMMIT
        cur.execute("INSERT INTO child (parent) VALUES (7)")

    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        fast._transaction(orphan)
    assert not fast._db.in_transaction
    assert fast.rows("SELECT COUNT(*) FROM child") == [(0,)]
    assert store.append_audit(record(1)).seq == 1


@pytest.mark.parametrize("offset_hours", [0, -6])
def test_times_written_on_the_hot_path_compare_like_sqlalchemys(
    store: Store, offset_hours: int
) -> None:
    """SQLite compares stored times as text: a time on a whole second must be written with its
    six zero digits, as SQLAlchemy binds it, or a purge at that very instant would take it."""
    zone = dt.timezone(dt.timedelta(hours=offset_hours))
    expires = dt.datetime(2026, 11, 29, 12, 0, 0, tzinfo=dt.UTC).astimezone(zone)
    store.remember_nonce("CRI", "ab" * 16, expires)
    assert store.purge_nonces(expires) == 0  # not before its time (``expires_at < now``)
    assert store.purge_nonces(expires + dt.timedelta(microseconds=1)) == 1
