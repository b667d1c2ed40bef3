"""Background upkeep of a serving node: directory refresh, replay-cache purge, checkpoints.

APScheduler runs the jobs in its own threads; each job takes ``now`` from the runtime clock and
logs (never raises) so one failing job never stops the others or the server.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from enlace.v1 import node_pb2
from node.audit import checkpoint_due, make_checkpoint
from node.errors import EnlaceError
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
    def __init__(self, runtime: NodeRuntime) -> None:
        self.runtime = runtime
        self.scheduler = BackgroundScheduler(timezone="UTC")
        config = runtime.config
        self.scheduler.add_job(
            self._safe(refresh_directory),
            "interval",
            seconds=config.directory_refresh_seconds,
            id="directory-refresh",
        )
        self.scheduler.add_job(
            self._safe(lambda rt: rt.store.purge_nonces(rt.clock.now())),
            "interval",
            seconds=max(60, config.skew_seconds),
            id="nonce-purge",
        )
        self.scheduler.add_job(
            self._safe(lambda rt: rt.store.checkpoint_wal()), "interval", seconds=30, id="wal"
        )
        self.scheduler.add_job(
            self._safe(lambda rt: write_checkpoint(rt, force=False)),
            "interval",
            seconds=10,
            id="audit-checkpoint",
        )

    def _safe(self, job: object) -> object:
        def run() -> None:
            try:
                job(self.runtime)  # type: ignore[operator]
            except (EnlaceError, OSError) as exc:
                log.warning("job failed: %s", exc)
            except Exception:  # a background job must never kill the node
                log.exception("job crashed")

        return run

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=True)
        write_checkpoint(self.runtime)
