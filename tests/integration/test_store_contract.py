"""The store contract, run unchanged on SQLite and PostgreSQL (DESIGN §2.6).

Why: every node keeps its replay cache, audit chain, checkpoints and state through
:class:`node.store.Store`, and the promise is that both backends behave the same. Each test
gets a private empty database from ``database_url`` (once per backend). Concurrency tests use
real threads, and two :class:`Store` objects over one database stand in for two processes.

Invariants checked: nothing pending after migration; a nonce is accepted once per sender; the
audit chain is gap-free and verifies however many writers append; filters and batching never
change what a reader sees; every datetime read back is timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from sqlalchemy import insert, make_url, text
from sqlalchemy.engine import Engine

from crypto.signing import SigningKey
from node.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditRecord,
    compute_entry_hash,
    make_checkpoint,
    verify_chain,
    verify_chain_with_checkpoints,
)
from node.errors import AuthenticationError, InvalidArgumentError, StoreError
from node.store import Store, database, open_store
from node.store.schema import audit_head, node_state
from node.store.store import AuditFilter

T0 = dt.datetime(2026, 11, 28, 12, 0, 0, 123_456, tzinfo=dt.UTC)
PEERS = ("PAN", "CRI", "HND")
NODE_KEY = SigningKey(hashlib.sha256(b"store contract node key").digest())
THREADS, PER_THREAD = 8, 40

T = TypeVar("T")


def record(i: int, *, peer: str | None = None, at: dt.datetime | None = None) -> AuditRecord:
    """Exchange ``i``: real header bytes with their SHA-256, a response on most of them."""
    peer = peer or PEERS[i % len(PEERS)]
    request = b'{"kind":"request","n":%d,"sender":"%s"}' % (i, peer.encode())
    answered = i % 4 != 3
    response = b'{"kind":"response","n":%d}' % i if answered else b""
    return AuditRecord(
        at=at or T0 + dt.timedelta(minutes=i),
        direction="inbound" if i % 2 else "outbound",
        peer=peer,
        method="/enlace.v1.NodeService/Ping",
        request_header=request,
        request_signature=hashlib.sha512(request).digest(),
        request_digest=hashlib.sha256(request).hexdigest(),
        decision="allowed" if answered else "denied",
        status="OK" if answered else "PERMISSION_DENIED",
        reason="" if answered else "no agreement grants NodeService to this peer",
        agreement_id="PAN-CRI-2026" if answered else "",
        agreement_hash=hashlib.sha256(b"agreement").hexdigest() if answered else "",
        response_header=response,
        response_signature=hashlib.sha512(response).digest() if answered else b"",
        response_digest=hashlib.sha256(response).hexdigest() if answered else "",
        extra={"cells": i, "dataset": "encounters"},
    )


def is_utc(moment: dt.datetime) -> bool:
    return moment.tzinfo is not None and moment.utcoffset() == dt.timedelta(0)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.close()


@pytest.fixture
def second_store(database_url: str, store: Store) -> Iterator[Store]:
    """Another engine on the same database, as a second process would have."""
    opened = open_store(database_url)
    assert opened.engine is not store.engine
    yield opened
    opened.close()


def fill(store: Store, count: int) -> list[AuditEntry]:
    return [store.append_audit(record(i)) for i in range(1, count + 1)]


def run_concurrently(jobs: Sequence[Callable[[], T]]) -> list[T]:
    """Start every job at the same instant; re-raise the first failure."""
    barrier = threading.Barrier(len(jobs))

    def wrapped(job: Callable[[], T]) -> T:
        barrier.wait(timeout=30)
        return job()

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(wrapped, job) for job in jobs]
        return [f.result(timeout=120) for f in futures]


# --- schema -----------------------------------------------------------------------------------


def test_open_store_migrates(database_url: str) -> None:
    fresh = open_store(database_url, migrate=False)
    try:
        assert fresh.pending_migrations()
        assert database.current_revision(fresh.engine) is None
        fresh.migrate()
        assert not fresh.pending_migrations()
        assert database.current_revision(fresh.engine) == database.head_revision()
    finally:
        fresh.close()


def test_open_store_leaves_nothing_pending(store: Store) -> None:
    assert not store.pending_migrations()
    assert store.backend in ("sqlite", "postgresql")
    assert store.audit_count() == 0
    assert store.audit_head() == (0, GENESIS_HASH)
    assert list(store.iter_audit()) == []
    assert store.checkpoints() == []
    assert store.last_checkpoint_seq() == 0


def test_reopening_keeps_data_and_migrates_nothing(database_url: str, store: Store) -> None:
    entries = fill(store, 3)
    store.put_state("directory.version", "4", T0)
    store.close()
    again = open_store(database_url)
    try:
        assert not again.pending_migrations()
        assert list(again.iter_audit()) == entries
        assert again.get_state("directory.version") == ("4", T0)
    finally:
        again.close()


# --- replay cache -----------------------------------------------------------------------------


def test_nonce_replay_is_refused(store: Store) -> None:
    expires = T0 + dt.timedelta(minutes=2)
    store.remember_nonce("PAN", "a" * 32, expires)
    with pytest.raises(AuthenticationError, match="replayed") as info:
        store.remember_nonce("PAN", "a" * 32, expires)
    assert info.value.status_name == "UNAUTHENTICATED"
    assert info.value.hint


def test_same_nonce_from_other_senders_is_fine(store: Store) -> None:
    expires = T0 + dt.timedelta(minutes=2)
    for sender in ("PAN", "CRI", "HND", "CRM"):
        store.remember_nonce(sender, "b" * 32, expires)
    store.remember_nonce("PAN", "c" * 32, expires)
    with pytest.raises(AuthenticationError):
        store.remember_nonce("CRI", "b" * 32, expires)


def test_replay_is_seen_by_another_engine(store: Store, second_store: Store) -> None:
    expires = T0 + dt.timedelta(minutes=2)
    store.remember_nonce("PAN", "d" * 32, expires)
    with pytest.raises(AuthenticationError):
        second_store.remember_nonce("PAN", "d" * 32, expires)


def test_concurrent_duplicates_accept_exactly_one(store: Store, second_store: Store) -> None:
    expires = T0 + dt.timedelta(minutes=2)

    def attempt(target: Store) -> str:
        try:
            target.remember_nonce("HND", "e" * 32, expires)
        except AuthenticationError:
            return "replay"
        return "accepted"

    outcomes = run_concurrently([functools.partial(attempt, s) for s in (store, second_store) * 4])
    assert sorted(outcomes) == ["accepted"] + ["replay"] * 7


def test_purge_removes_only_expired_nonces(store: Store) -> None:
    now = T0
    store.remember_nonce("PAN", "1" * 32, now - dt.timedelta(seconds=1))
    store.remember_nonce("PAN", "2" * 32, now - dt.timedelta(hours=3))
    store.remember_nonce("CRI", "3" * 32, now)
    store.remember_nonce("CRI", "4" * 32, now + dt.timedelta(seconds=1))
    assert store.purge_nonces(now) == 2
    assert store.purge_nonces(now) == 0
    store.remember_nonce("PAN", "1" * 32, now + dt.timedelta(minutes=2))  # forgotten
    for sender, nonce in (("CRI", "3" * 32), ("CRI", "4" * 32)):
        with pytest.raises(AuthenticationError):
            store.remember_nonce(sender, nonce, now + dt.timedelta(minutes=2))


def test_purge_compares_instants_not_wall_clocks(store: Store) -> None:
    panama = dt.timezone(dt.timedelta(hours=-5))
    store.remember_nonce("PAN", "5" * 32, dt.datetime(2026, 11, 28, 8, 0, tzinfo=panama))
    assert store.purge_nonces(dt.datetime(2026, 11, 28, 12, 59, tzinfo=dt.UTC)) == 0
    assert store.purge_nonces(dt.datetime(2026, 11, 28, 13, 1, tzinfo=dt.UTC)) == 1


# --- the audit chain --------------------------------------------------------------------------


def test_append_audit_chains(store: Store) -> None:
    entries = fill(store, 12)
    assert [e.seq for e in entries] == list(range(1, 13))
    assert entries[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.entry_hash
    for entry in entries:
        assert entry.entry_hash == compute_entry_hash(entry.seq, entry.prev_hash, entry.record)
    assert len({e.entry_hash for e in entries}) == 12
    assert store.audit_head() == (12, entries[-1].entry_hash)
    assert store.audit_count() == 12
    summary = verify_chain(store.iter_audit())
    assert (summary.count, summary.last_seq, summary.head_hash) == (12, 12, entries[-1].entry_hash)


def test_stored_entries_read_back_exactly(store: Store) -> None:
    entries = fill(store, 8)
    assert list(store.iter_audit()) == entries
    for entry in entries:
        stored = store.audit_entry(entry.seq)
        assert stored == entry
        assert stored is not None
        assert stored.record.request_header == entry.record.request_header
        assert stored.record.at == entry.record.at
        assert is_utc(stored.record.at)
        assert dict(stored.record.extra) == {"cells": entry.seq, "dataset": "encounters"}
    assert store.audit_entry(9) is None
    assert store.audit_entry(0) is None


def test_identical_records_get_distinct_entries(store: Store) -> None:
    first = store.append_audit(record(1))
    second = store.append_audit(record(1))
    assert second.seq == first.seq + 1
    assert second.entry_hash != first.entry_hash
    verify_chain(store.iter_audit())


def test_concurrent_appends_keep_one_chain(store: Store) -> None:
    def writer(thread: int) -> list[int]:
        return [store.append_audit(record(thread * PER_THREAD + i)).seq for i in range(PER_THREAD)]

    results = run_concurrently([functools.partial(writer, t) for t in range(THREADS)])
    seqs = sorted(s for result in results for s in result)
    total = THREADS * PER_THREAD
    assert seqs == list(range(1, total + 1))
    summary = verify_chain(store.iter_audit())
    assert summary.count == total
    assert store.audit_count() == total
    assert store.audit_head() == (total, summary.head_hash)


def test_two_engines_appending_keep_one_chain(store: Store, second_store: Store) -> None:
    # Start the chain first; the empty-database race has a test of its own (below).
    store.append_audit(record(0))
    per_store = THREADS // 2

    def writer(target: Store, offset: int) -> int:
        for i in range(PER_THREAD):
            target.append_audit(record(offset + i))
        return PER_THREAD

    targets = [store] * per_store + [second_store] * per_store
    jobs = [functools.partial(writer, s, 1 + n * PER_THREAD) for n, s in enumerate(targets)]
    assert sum(run_concurrently(jobs)) == THREADS * PER_THREAD
    total = THREADS * PER_THREAD + 1
    for reader in (store, second_store):
        summary = verify_chain(reader.iter_audit())
        assert summary.count == total
        assert reader.audit_head() == (total, summary.head_hash)


def _wait_for_lock_wait(url: str, admin: Engine, timeout: float = 10.0) -> None:
    """Return once a session of ``url`` waits on a row lock (PostgreSQL only)."""
    name = make_url(url).query.get("application_name")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with admin.connect() as conn:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = :name AND wait_event_type = 'Lock'"
                ),
                {"name": name},
            ).scalar_one()
        if waiting:
            return
        time.sleep(0.02)
    pytest.fail("the second writer never waited for the first one's lock")


def test_first_append_while_another_writer_starts_the_chain(
    database_url: str, store: Store, database_backend: str, request: pytest.FixtureRequest
) -> None:
    """Another process has begun the very first append (head row inserted, not committed)."""
    other = database.make_engine(database_url)
    outcome: list[object] = []

    def append() -> None:
        try:
            outcome.append(store.append_audit(record(1)))
        except Exception as exc:  # reported through the assertion below
            outcome.append(exc)

    try:
        with database.writer(other).connect() as conn, conn.begin():
            conn.execute(insert(audit_head).values(id=1, seq=0, entry_hash=GENESIS_HASH))
            thread = threading.Thread(target=append)
            thread.start()
            if database_backend == "postgres":
                _wait_for_lock_wait(database_url, request.getfixturevalue("postgres_admin_engine"))
            else:
                time.sleep(0.2)
        thread.join(timeout=60)
    finally:
        other.dispose()
    (result,) = outcome
    assert isinstance(result, AuditEntry), result
    assert result.seq == 1
    verify_chain(store.iter_audit())


# --- reading the log --------------------------------------------------------------------------


@pytest.fixture
def log(store: Store) -> list[AuditEntry]:
    """Thirty entries, one minute apart, peers PAN, CRI, HND in turn (seq 1 is CRI)."""
    return fill(store, 30)


def test_filter_by_peer(store: Store, log: list[AuditEntry]) -> None:
    got = list(store.iter_audit(AuditFilter(peer="HND")))
    assert got == [e for e in log if e.record.peer == "HND"]
    assert len(got) == 10
    assert list(store.iter_audit(AuditFilter(peer="MEX"))) == []


def test_filter_since_is_inclusive(store: Store, log: list[AuditEntry]) -> None:
    since = log[19].record.at
    got = list(store.iter_audit(AuditFilter(since=since)))
    assert [e.seq for e in got] == list(range(20, 31))
    later = since + dt.timedelta(microseconds=1)
    assert next(e.seq for e in store.iter_audit(AuditFilter(since=later))) == 21


def test_filter_since_accepts_any_offset(store: Store, log: list[AuditEntry]) -> None:
    mexico = dt.timezone(dt.timedelta(hours=-6))
    since = log[24].record.at.astimezone(mexico)
    assert [e.seq for e in store.iter_audit(AuditFilter(since=since))] == list(range(25, 31))


def test_filter_after_seq_and_limit(store: Store, log: list[AuditEntry]) -> None:
    assert list(store.iter_audit(AuditFilter(after_seq=25))) == log[25:]
    assert list(store.iter_audit(AuditFilter(limit=4))) == log[:4]
    assert list(store.iter_audit(AuditFilter(after_seq=30))) == []
    combined = AuditFilter(peer="PAN", after_seq=10, limit=3)
    assert [e.seq for e in store.iter_audit(combined)] == [12, 15, 18]


@pytest.mark.parametrize("batch", [1, 7, 30, 31])
def test_batching_never_changes_the_result(store: Store, log: list[AuditEntry], batch: int) -> None:
    assert list(store.iter_audit(batch=batch)) == log
    by_peer = AuditFilter(peer="CRI", since=log[5].record.at)
    assert list(store.iter_audit(by_peer, batch=batch)) == list(store.iter_audit(by_peer))
    limited = AuditFilter(after_seq=2, limit=9)
    assert list(store.iter_audit(limited, batch=batch)) == log[2:11]


def test_iteration_streams_and_sees_later_batches(store: Store, log: list[AuditEntry]) -> None:
    """Batches are separate queries: a reader part-way through sees entries appended since."""
    reader = store.iter_audit(batch=10)
    first = [next(reader) for _ in range(10)]
    assert first == log[:10]
    store.append_audit(record(31))
    rest = list(reader)
    assert [e.seq for e in rest] == list(range(11, 32))
    verify_chain([*first, *rest])


# --- checkpoints ------------------------------------------------------------------------------


def test_checkpoints_round_trip(store: Store) -> None:
    entries = fill(store, 9)
    made = [
        make_checkpoint(entries[seq - 1], "PAN", NODE_KEY, T0 + dt.timedelta(hours=seq))
        for seq in (3, 6, 9)
    ]
    for checkpoint in (made[1], made[2], made[0]):  # stored out of order, listed in order
        store.add_checkpoint(checkpoint)
    assert store.checkpoints() == made
    assert store.checkpoints(since_seq=3) == made[1:]
    assert store.checkpoints(since_seq=9) == []
    assert store.last_checkpoint_seq() == 9
    assert all(is_utc(c.at) for c in store.checkpoints())
    summary = verify_chain_with_checkpoints(
        store.iter_audit(), store.checkpoints(), lambda _c, _k, _at: NODE_KEY.public_key
    )
    assert (summary.count, summary.checkpoints) == (9, 3)


# --- node state -------------------------------------------------------------------------------


def test_state_upsert(store: Store) -> None:
    assert store.get_state("directory.version") is None
    store.put_state("directory.version", "1", T0)
    assert store.get_state("directory.version") == ("1", T0)
    later = T0 + dt.timedelta(days=1, microseconds=7)
    store.put_state("directory.version", "2", later)
    assert store.get_state("directory.version") == ("2", later)
    store.put_state("other", "x" * 5000, T0)
    assert store.get_state("other") == ("x" * 5000, T0)
    assert store.get_state("directory.version") == ("2", later)


def test_states_written_together_are_all_written_or_none(store: Store) -> None:
    store.put_states({"match.mode": "oprf", "match.epoch": "1"}, T0)
    later = T0 + dt.timedelta(hours=1)
    store.put_states({"match.mode": "voprf", "match.epoch": "2"}, later)
    assert store.matching.states(("match.mode", "match.epoch")) == {
        "match.mode": "voprf",
        "match.epoch": "2",
    }
    with pytest.raises(StoreError):  # the second value breaks NOT NULL: the first is undone
        store.put_states({"match.mode": "oprf", "match.epoch": None}, later)  # type: ignore[dict-item]
    assert store.get_state("match.mode") == ("voprf", later)
    assert store.get_state("match.epoch") == ("2", later)


def test_datetimes_come_back_aware_utc(store: Store) -> None:
    panama = dt.timezone(dt.timedelta(hours=-5))
    local = dt.datetime(2026, 11, 28, 7, 30, 0, 999_999, tzinfo=panama)
    store.put_state("k", "v", local)
    state = store.get_state("k")
    assert state is not None
    _value, updated = state
    assert is_utc(updated)
    assert updated == local
    assert updated.hour == 12
    assert updated.microsecond == 999_999
    entry = store.append_audit(record(1, at=local))
    (stored,) = store.iter_audit()
    assert is_utc(stored.record.at)
    assert stored.record.at == local
    assert stored.entry_hash == entry.entry_hash


def test_concurrent_state_writes_of_a_new_key(
    database_url: str, store: Store, database_backend: str, request: pytest.FixtureRequest
) -> None:
    """Another process inserted the same new key and has not committed yet."""
    other = database.make_engine(database_url)
    outcome: list[object] = []

    def put() -> None:
        try:
            store.put_state("jobs.last_pull", "mine", T0 + dt.timedelta(seconds=1))
            outcome.append("ok")
        except Exception as exc:
            outcome.append(exc)

    try:
        with database.writer(other).connect() as conn, conn.begin():
            conn.execute(
                insert(node_state).values(key="jobs.last_pull", value="theirs", updated_at=T0)
            )
            thread = threading.Thread(target=put)
            thread.start()
            if database_backend == "postgres":
                _wait_for_lock_wait(database_url, request.getfixturevalue("postgres_admin_engine"))
            else:
                time.sleep(0.2)
        thread.join(timeout=60)
    finally:
        other.dispose()
    assert outcome == ["ok"]
    assert store.get_state("jobs.last_pull") == ("mine", T0 + dt.timedelta(seconds=1))


# --- agreements and revocations -------------------------------------------------------------


def _revoke(store: Store, document: str, key_id: str = "k1", at: dt.datetime = T0) -> bool:
    return store.policies.save_revocation(
        "PAN-CRI",
        "a" * 64,
        document,
        at,
        key_id=key_id,
        public_key=bytes(range(32)),
        directory_hash="d" * 64,
    )


def test_every_revocation_of_an_agreement_is_kept_with_its_evidence(
    store: Store, second_store: Store
) -> None:
    assert _revoke(store, "revoked by PAN from June")
    assert _revoke(store, "revoked by CRI at once", key_id="k2", at=T0 + dt.timedelta(seconds=1))
    assert not _revoke(store, "revoked by PAN from June")  # the very same document: nothing new
    kept = second_store.policies.revocations("a" * 64)
    assert [r.document for r in kept] == ["revoked by PAN from June", "revoked by CRI at once"]
    assert [r.key_id for r in kept] == ["k1", "k2"]
    assert kept[0].public_key == bytes(range(32)) and kept[0].directory_hash == "d" * 64
    assert kept[0].installed_at == T0 and is_utc(kept[0].installed_at)
    assert second_store.policies.revocations("b" * 64) == []
    assert second_store.policies.marker()[2] == 2


def test_the_same_agreement_re_signed_replaces_the_signatures_only(
    store: Store, second_store: Store
) -> None:
    policies = store.policies
    assert policies.save_agreement("PAN-CRI", 1, "h" * 64, "signed by old key", T0) == "installed"
    marker = second_store.policies.marker()
    later = T0 + dt.timedelta(days=1)
    assert policies.save_agreement("PAN-CRI", 1, "h" * 64, "signed by old key", later) == (
        "unchanged"
    )
    assert second_store.policies.marker() == marker
    assert policies.save_agreement("PAN-CRI", 1, "h" * 64, "signed by new key", later) == (
        "re-signed"
    )
    assert second_store.policies.marker() != marker  # other processes rebuild their views
    (stored,) = second_store.policies.agreements()
    assert (stored.document, stored.installed_at) == ("signed by new key", T0)
    with pytest.raises(InvalidArgumentError, match="different content"):
        policies.save_agreement("PAN-CRI", 1, "i" * 64, "another text", later)
