"""Background upkeep of a serving node: directory refresh, replay-cache purge, checkpoints.

APScheduler runs the jobs in its own threads; each job takes ``now`` from the runtime clock and
logs (never raises) so one failing job never stops the others or the server.
"""

from __future__ import annotations

import logging
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from enlace.v1 import node_pb2
from node.audit import make_checkpoint
from node.errors import EnlaceError
from node.runtime import NodeRuntime
from node.trust.directory import parse_directory_json

log = logging.getLogger("node.jobs")


def write_checkpoint(runtime: NodeRuntime) -> int:
    """Sign a checkpoint over the chain head if entries were added since the last one."""
    head_seq, _ = runtime.store.audit_head()
    if head_seq == 0 or head_seq <= runtime.store.last_checkpoint_seq():
        return 0
    entry = runtime.store.audit_entry(head_seq)
    if entry is None:  # pragma: no cover - head always names an entry
        return 0
    checkpoint = make_checkpoint(
        entry, runtime.config.country, runtime.signing_key, runtime.clock.now()
    )
    runtime.store.add_checkpoint(checkpoint)
    return head_seq


def refresh_directory(runtime: NodeRuntime) -> bool:
    """Fetch the directory from the configured source and adopt it if it verifies."""
    source = runtime.config.directory_source
    if not source:
        return False
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
            self._safe(write_checkpoint), "interval", seconds=60, id="audit-checkpoint"
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
