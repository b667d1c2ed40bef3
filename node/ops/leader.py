"""Which replica of a node runs the scheduled jobs.

Why: several ``enlace serve`` processes of one node may share one PostgreSQL database (a
load balancer in front, any replica answers any call). APScheduler 3 keeps its jobs per
process and cannot share a job store between processes, so without election every replica
would purge the replay cache, sign audit checkpoints and pull the Secretariat's matrices on
its own schedule. One replica, the leader, runs them; the others only serve.

How: the leader holds a PostgreSQL *session* advisory lock (``pg_try_advisory_lock``) on a
dedicated connection that belongs to no pool. PostgreSQL releases the lock when that session
ends — the process exits, is killed, or loses its connection — and another replica takes it on
its next :meth:`LeaderElection.check`. A SQLite node is one process over one file, so it is
always its own leader.

Invariants:
* At most one session holds the lock at any time (PostgreSQL guarantees it); a replica claims
  leadership only after ``pg_try_advisory_lock`` returned true on its own session, and
  re-confirms it on each check by looking for the lock of *its* backend in ``pg_locks``
  (a silently re-opened connection would not hold it).
* Any error on the dedicated connection drops leadership at once (the connection is closed,
  which releases a lock it might still hold), so a replica never acts as leader on a lock it
  cannot prove it holds.
* The lock key is derived from the database, the schema and the node's country, so nodes
  sharing one server (tests use one schema per node) never contend with each other.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
from collections.abc import Callable

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

log = logging.getLogger("node.leader")

# How often every replica checks (and, if free, takes) the lock; a dead leader is replaced
# within about this time once PostgreSQL has noticed its session is gone.
CHECK_SECONDS = 5


def lock_key(database: str, schema: str, node: str) -> int:
    """A signed 64-bit advisory-lock key, distinct per database, schema and node."""
    digest = hashlib.sha256(f"enlace/scheduler\n{database}\n{schema}\n{node}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def replica_name() -> str:
    """How this process names itself in logs and metrics: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


class LeaderElection:
    """Leadership of one node's scheduler among its replicas. Thread-safe."""

    def __init__(
        self,
        engine: Engine,
        node: str,
        *,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.node = node
        self.backend = engine.dialect.name
        self._url = engine.url
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._connection: Connection | None = None
        self._key = 0
        self._leader = self.backend != "postgresql"
        self._on_change = on_change

    @property
    def is_leader(self) -> bool:
        return self._leader

    def check(self) -> bool:
        """Take the lock if it is free, or confirm we still hold it; returns leadership."""
        if self.backend != "postgresql":
            return True
        with self._lock:
            before = self._leader
            try:
                self._leader = self._confirm() if self._leader else self._try_take()
            except SQLAlchemyError as exc:
                log.warning(
                    "leader election: database connection lost (%s)", exc.__class__.__name__
                )
                self._drop_connection()
                self._leader = False
            after = self._leader
        if after != before:
            if after:
                log.info("%s: %s is now the scheduler leader", self.node, replica_name())
            else:
                log.warning("%s: %s is no longer the scheduler leader", self.node, replica_name())
            if self._on_change is not None:
                self._on_change(after)
        return after

    def release(self) -> None:
        """Give up leadership (on shutdown), so another replica takes over at once."""
        if self.backend != "postgresql":
            return
        with self._lock:
            if self._connection is not None and self._leader:
                # Closing the session below releases the lock anyway.
                with contextlib.suppress(SQLAlchemyError):
                    self._connection.execute(
                        text("SELECT pg_advisory_unlock(:key)"), {"key": self._key}
                    )
            self._drop_connection()
            self._leader = False
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- internals ---------------------------------------------------------------------------
    def _session(self) -> Connection:
        if self._connection is None:
            if self._engine is None:
                # NullPool: closing the connection really ends the session (and its locks).
                self._engine = create_engine(self._url, poolclass=NullPool)
            connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            row = connection.execute(text("SELECT current_database(), current_schema()")).one()
            self._key = lock_key(str(row[0]), str(row[1] or ""), self.node)
            self._connection = connection
        return self._connection

    def _try_take(self) -> bool:
        connection = self._session()
        taken = connection.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
        ).scalar_one()
        return bool(taken)

    def _confirm(self) -> bool:
        connection = self._session()
        unsigned = self._key & 0xFFFFFFFFFFFFFFFF
        held = connection.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid() AND granted AND objsubid = 1 "
                "AND classid = CAST(CAST(:hi AS bigint) AS oid) "
                "AND objid = CAST(CAST(:lo AS bigint) AS oid))"
            ),
            {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF},
        ).scalar_one()
        if not held:
            self._drop_connection()
        return bool(held)

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._connection.close()
            self._connection = None
