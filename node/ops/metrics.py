"""The node's Prometheus metrics and the HTTP endpoint that serves them.

Why: operators watch many nodes from one Prometheus; a node must say, without anyone logging
in, how many calls it answers and refuses (by method, status and peer), how fast, how much of
each quota and privacy budget is used, which filter versions it publishes and caches, whether
its scheduler runs, and how long until its directory, keys and certificates expire.

Invariants:
* Each :class:`NodeMetrics` has its own ``CollectorRegistry`` (several nodes can live in one
  test process); nothing registers on prometheus_client's global registry.
* Label values are bounded: ``peer`` is a country listed in the directory or ``unknown`` (a
  caller cannot grow the label set by sending made-up sender codes), ``method`` is one of the
  served methods, ``status`` a gRPC status name.
* State gauges are read at scrape time, each group inside its own ``try``: a failing query
  drops that group from one scrape and logs at debug level; it never fails the scrape.
* The endpoint serves metrics only (no secrets, no records); bind it to localhost or a
  monitoring network, never to the federation's public address.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from node import __version__
from node.ops.leader import LeaderElection
from node.ops.rotation import alarm_window, expiry_report
from node.runtime import NodeRuntime
from node.store.schema import metadata
from policies.disclosure import TOTAL_PERIOD
from policies.quota import quota_windows

log = logging.getLogger("node.metrics")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
NANO = 1_000_000_000  # the DP budget is counted in nano-epsilon (see node.stats.answer)


class NodeMetrics:
    """Counters fed by the pipeline and the scheduler, plus gauges read from the node."""

    def __init__(self, runtime: NodeRuntime, *, leader: LeaderElection | None = None) -> None:
        self.runtime = runtime
        self.leader = leader
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "enlace_requests",
            "Calls answered by this node, by method, gRPC status and calling peer.",
            ["method", "status", "peer"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "enlace_request_seconds",
            "Time to handle one call (checks, handler, audit, signing), by method.",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.job_runs = Counter(
            "enlace_scheduler_job_runs",
            "Scheduled job runs by job and outcome (ok, failed, skipped when not the leader).",
            ["job", "outcome"],
            registry=self.registry,
        )
        self.job_seconds = Histogram(
            "enlace_scheduler_job_seconds",
            "Duration of scheduled job runs.",
            ["job"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        info = Gauge(
            "enlace_node_info",
            "Constant 1, labelled with the node's country and software version.",
            ["country", "version"],
            registry=self.registry,
        )
        info.labels(runtime.config.country, __version__).set(1)
        self.registry.register(_StateCollector(self))

    def observe_call(
        self, method: str, status: str, peer: str, seconds: float, _request_digest: str = ""
    ) -> None:
        """A :data:`node.server.pipeline.CallObserver`."""
        directory = self.runtime.directory.peek()
        known = directory is not None and any(m.country == peer for m in directory.members)
        self.requests.labels(method, status, peer if known else "unknown").inc()
        self.latency.labels(method).observe(seconds)

    def observe_job(self, job: str, outcome: str, seconds: float) -> None:
        self.job_runs.labels(job, outcome).inc()
        if outcome != "skipped":
            self.job_seconds.labels(job).observe(seconds)

    def serve(self, address: str) -> MetricsServer:
        """Serve ``/metrics`` over HTTP on ``host:port`` in a daemon thread."""
        host, _, port = address.rpartition(":")
        server, thread = start_http_server(
            int(port), addr=host.strip("[]") or "127.0.0.1", registry=self.registry
        )
        return MetricsServer(server, thread, f"{host}:{server.server_port}")


@dataclass
class MetricsServer:
    server: Any
    thread: Any
    address: str

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


class _StateCollector(Collector):
    """Gauges computed on each scrape from the directory, the home and the database."""

    def __init__(self, metrics: NodeMetrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []  # unchecked collector: families vary with the node's state

    def collect(self) -> Iterator[Metric]:
        groups: list[Callable[[], list[GaugeMetricFamily]]] = [
            self._leader,
            self._expiry,
            self._audit,
            self._quotas,
            self._filters,
        ]
        for group in groups:
            try:
                yield from group()
            except Exception as exc:  # one bad group must not fail the scrape
                log.debug("metrics group %s failed: %s", group.__name__, exc)

    def _leader(self) -> list[GaugeMetricFamily]:
        leader = self.metrics.leader
        family = _gauge(
            "enlace_scheduler_leader", "1 when this replica runs the scheduled jobs.", []
        )
        family.add_metric([], 1.0 if leader is None or leader.is_leader else 0.0)
        return [family]

    def _expiry(self) -> list[GaugeMetricFamily]:
        runtime = self.metrics.runtime
        now = runtime.clock.now()
        directory = runtime.directory.peek()
        seconds = _gauge(
            "enlace_expiry_seconds",
            "Seconds until trust data stops working (negative: expired).",
            ["kind", "subject"],
        )
        alarm = _gauge(
            "enlace_expiry_alarm",
            "1 when the item expires within its alarm window (directory_warn_days, 30 days).",
            ["kind", "subject"],
        )
        for item in expiry_report(runtime.home, directory, runtime.config.country):
            left = item.remaining(now)
            seconds.add_metric([item.kind, item.subject], left.total_seconds())
            alarm.add_metric(
                [item.kind, item.subject], 1.0 if left <= alarm_window(item.kind, runtime) else 0.0
            )
        version = _gauge("enlace_directory_version", "Version of the installed directory.", [])
        version.add_metric([], float(directory.version if directory else 0))
        signing = _gauge(
            "enlace_signing_key_active", "1 for the key id this replica signs with.", ["key_id"]
        )
        signing.add_metric([runtime.signing_key.key_id], 1.0)
        return [seconds, alarm, version, signing]

    def _audit(self) -> list[GaugeMetricFamily]:
        store = self.metrics.runtime.store
        head, _ = store.audit_head()
        checkpoint = store.last_checkpoint_seq()
        entries = _gauge("enlace_audit_entries", "Entries in the audit chain (head seq).", [])
        entries.add_metric([], float(head))
        covered = _gauge(
            "enlace_audit_checkpoint_seq", "Entry covered by the latest signed checkpoint.", []
        )
        covered.add_metric([], float(checkpoint))
        return [entries, covered]

    def _quotas(self) -> list[GaugeMetricFamily]:
        runtime = self.metrics.runtime
        table = metadata.tables["quota_usage"]
        windows = {w.key: name for name, w in quota_windows(runtime.clock.now()).items()}
        with runtime.store.engine.connect() as conn:
            rows = conn.execute(
                select(table.c.scope, table.c.window_key, table.c.used).where(
                    table.c.window_key.in_([*windows, TOTAL_PERIOD])
                )
            ).all()
        quota = _gauge(
            "enlace_quota_used",
            "Units used in the current window, per agreement quota scope.",
            ["scope", "window"],
        )
        budget = _gauge(
            "enlace_privacy_budget_used",
            "Differential-privacy epsilon spent per peer (whatever agreement): this quarter "
            "(period YYYY-Qn), and in all (period total, never reset).",
            ["peer", "period"],
        )
        for row in rows:
            scope = str(row.scope)
            if scope.startswith("dp:"):
                peer = scope[3:]
                if ":" not in peer:  # "dp:AGREEMENT:PEER" rows predate per-peer budgets
                    budget.add_metric([peer, str(row.window_key)], int(row.used) / NANO)
            elif str(row.window_key) in windows:
                quota.add_metric([scope, windows[str(row.window_key)]], float(row.used))
        return [quota, budget]

    def _filters(self) -> list[GaugeMetricFamily]:
        family = _gauge(
            "enlace_filter_version",
            "Match filter versions: published by this node, or cached from a peer.",
            ["side", "peer", "dataset"],
        )
        engine = self.metrics.runtime.store.engine
        own = metadata.tables.get("match_filters")
        cached = metadata.tables.get("match_peer_filters")
        with engine.connect() as conn:
            if own is not None:
                for row in conn.execute(
                    select(own.c.dataset, func.max(own.c.version)).group_by(own.c.dataset)
                ):
                    family.add_metric(["published", "", str(row[0])], float(row[1]))
            if cached is not None:
                query = select(cached.c.peer, cached.c.dataset, cached.c.version)
                for peer, dataset, version in conn.execute(query).tuples():
                    family.add_metric(["cached", str(peer), str(dataset)], float(version))
        return [family]
