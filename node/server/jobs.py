"""Background upkeep of a serving node: directory refresh, replay-cache purge, checkpoints,
key rollover, expiry alarms and the purge of screened manifests past their retention.

APScheduler runs the jobs in its own threads; each job takes ``now`` from the runtime clock and
logs (never raises) so one failing job never stops the others or the server. Among replicas
of one node only the elected leader runs the jobs that act on the shared database.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from enlace.v1 import node_pb2
from node.audit import checkpoint_due, make_checkpoint
from node.errors import EnlaceError
from node.manifests.retention import purge_expired
from node.ops.leader import CHECK_SECONDS as LEADER_CHECK_SECONDS
from node.ops.leader import LeaderElection
from node.ops.rotation import apply_due_rotations, log_expiry_alarms
from node.runtime import NodeRuntime
from node.trust.directory import parse_directory_json

log = logging.getLogger("node.jobs")


def write_checkpoint(runtime: NodeRuntime, *, force: bool = True) -> int:
    """Sign a checkpoint over the chain head; returns its seq, or 0 when none was due.

    ``force`` checkpoints whenever entries were added since the last checkpoint; otherwise
    only when :func:`node.audit.checkpoint_due` says so (every ``audit_checkpoint_every``
    entries or ``audit_checkpoint_seconds`` seconds).
    """
    head_seq, _ = runtime.store.audit_head()
    head = runtime.store.audit_entry(head_seq) if head_seq else None
    checkpoints = runtime.store.checkpoints(
        since_seq=max(0, runtime.store.last_checkpoint_seq() - 1)
    )
    last = checkpoints[-1] if checkpoints else None
    now = runtime.clock.now()
    config = runtime.config
    due = checkpoint_due(
        last,
        head,
        now,
        every_entries=1 if force else config.audit_checkpoint_every,
        every=dt.timedelta(seconds=0 if force else config.audit_checkpoint_seconds),
    )
    if head is None or not due:
        return 0
    runtime.store.add_checkpoint(make_checkpoint(head, config.country, runtime.signing_key, now))
    return head.seq


def refresh_directory(runtime: NodeRuntime) -> bool:
    """Fetch the directory from the configured source and adopt it if it verifies."""
    # Without a configured source the node re-reads its own HOME/directory.json, so that
    # `enlace directory publish` takes effect on a running node without a restart.
    source = runtime.config.directory_source or str(runtime.home.directory_path)
    now = runtime.clock.now()
    if source.startswith("peer:"):
        from node.client import PeerClient

        peer = source.split(":", 1)[1]
        current = runtime.directory.peek()
        with PeerClient(runtime, peer) as client:
            reply = client.call(
                "/enlace.v1.NodeService/GetDirectory",
                node_pb2.GetDirectoryRequest(known_version=current.version if current else 0),
                node_pb2.GetDirectoryResponse,
            )
        if not reply.message.directory_json:
            return False
        candidate = parse_directory_json(reply.message.directory_json)
    else:
        candidate = parse_directory_json(Path(source).read_bytes())
    return runtime.directory.offer(candidate, now)


class NodeJobs:
    """The node's scheduled jobs. Replicas of one node on one PostgreSQL database elect one
    leader (:class:`node.ops.leader.LeaderElection`): jobs run only there unless added with
    ``every_replica=True`` (work on process-local state: the directory copy, the active keys,
    SQLite's WAL). ``observers`` see ``(job, outcome, seconds)`` of every run or skip."""

    def __init__(self, runtime: NodeRuntime, leader: LeaderElection | None = None) -> None:
        self.runtime = runtime
        self.leader = leader or LeaderElection(runtime.store.engine, runtime.config.country)
        self.observers: list[Callable[[str, str, float], None]] = []
        self.scheduler = BackgroundScheduler(timezone="UTC")
        config = runtime.config
        self.scheduler.add_job(
            self._safe(lambda _rt: self.leader.check(), "leader", every_replica=True),
            "interval",
            seconds=LEADER_CHECK_SECONDS,
            id="leader",
        )
        self.scheduler.add_job(
            self._safe(refresh_directory, "directory-refresh", every_replica=True),
            "interval",
            seconds=config.directory_refresh_seconds,
            id="directory-refresh",
        )
        self.scheduler.add_job(
            self._safe(apply_due_rotations, "key-rollover", every_replica=True),
            "interval",
            seconds=30,
            id="key-rollover",
        )
        self.scheduler.add_job(
            self._safe(lambda rt: rt.store.purge_nonces(rt.clock.now()), "nonce-purge"),
            "interval",
            seconds=max(60, config.skew_seconds),
            id="nonce-purge",
        )
        self.scheduler.add_job(
            self._safe(lambda rt: rt.store.checkpoint_wal(), "wal", every_replica=True),
            "interval",
            seconds=30,
            id="wal",
        )
        self.scheduler.add_job(
            self._safe(lambda rt: write_checkpoint(rt, force=False), "audit-checkpoint"),
            "interval",
            seconds=10,
            id="audit-checkpoint",
        )
        self.scheduler.add_job(
            self._safe(log_expiry_alarms, "expiry-alarms"), "interval", hours=6, id="expiry-alarms"
        )
        self.scheduler.add_job(  # passenger data: kept no longer than the retention says
            self._safe(lambda rt: purge_expired(rt.store, rt.clock.now()), "manifest-purge"),
            "interval",
            hours=1,
            id="manifest-purge",
        )

    def _safe(self, job: object, name: str = "job", *, every_replica: bool = False) -> object:
        def run() -> None:
            started = time.perf_counter()
            outcome = "ok"
            if not every_replica and not self.leader.is_leader:
                outcome = "skipped"
            else:
                try:
                    job(self.runtime)  # type: ignore[operator]
                except (EnlaceError, OSError) as exc:
                    outcome = "failed"
                    log.warning("job %s failed: %s", name, exc)
                except Exception:  # a background job must never kill the node
                    outcome = "failed"
                    log.exception("job %s crashed", name)
            for observe in self.observers:
                observe(name, outcome, time.perf_counter() - started)

        return run

    def start(self) -> None:
        self.leader.check()
        apply_due_rotations(self.runtime)
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=True)
        if self.leader.is_leader:
            write_checkpoint(self.runtime)
        self.leader.release()
