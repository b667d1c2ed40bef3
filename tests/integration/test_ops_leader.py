"""Two ``enlace serve`` replicas of one node on one PostgreSQL database: exactly one runs the
scheduled jobs; when it is killed, the other takes over within a bounded time."""

from __future__ import annotations

import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from node.demo.federation import free_port
from node.demo.processes import NodeProcess
from node.ops.leader import CHECK_SECONDS, LeaderElection

TAKEOVER_SECONDS = 4 * CHECK_SECONDS + 10


def leader_gauge(metrics: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=2) as answer:
            body = answer.read().decode()
    except OSError:
        return None
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "enlace_scheduler_leader":
                return sample.value
    return None


def wait_for(condition, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return False


def test_advisory_lock_admits_one_leader_per_node(database_url: str) -> None:
    engine = create_engine(database_url)
    first, second = LeaderElection(engine, "PAN"), LeaderElection(engine, "PAN")
    other = LeaderElection(engine, "CRI")
    try:
        assert first.check() is True
        assert second.check() is (engine.dialect.name != "postgresql")
        assert other.check() is True  # another node's lock
        if engine.dialect.name == "postgresql":
            first.release()
            assert second.check() is True and first.check() is False
    finally:
        for election in (first, second, other):
            election.release()
        engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize(
    "database_backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_two_replicas_one_leader_and_takeover(live_federation_factory) -> None:  # type: ignore[no-untyped-def]
    # Replicas share a PostgreSQL database; a SQLite node is one process, always its leader.
    live = live_federation_factory(("PAN", "CRI"))
    home = live.federation.homes["PAN"]
    listens = [live.federation.endpoint("PAN"), f"127.0.0.1:{free_port()}"]
    metrics = [f"127.0.0.1:{free_port()}" for _ in listens]
    replicas = [NodeProcess("PAN", home, address) for address in listens]
    for replica, listen, scrape in zip(replicas, listens, metrics, strict=True):
        replica.start(extra_env={"ENLACE_LISTEN": listen, "ENLACE_METRICS_LISTEN": scrape})
    try:
        deadline = time.monotonic() + 60
        for replica in replicas:
            replica.wait_ready(deadline)
        assert wait_for(lambda: sorted(leader_gauge(m) or 0 for m in metrics) == [0.0, 1.0], 30), [
            leader_gauge(m) for m in metrics
        ]
        time.sleep(2 * CHECK_SECONDS)  # stays exactly one over several checks
        gauges = [leader_gauge(m) for m in metrics]
        assert sorted(g or 0 for g in gauges) == [0.0, 1.0]
        leader = gauges.index(1.0)
        follower = 1 - leader
        replicas[leader].kill()  # SIGKILL: no release; PostgreSQL ends its session
        assert wait_for(lambda: leader_gauge(metrics[follower]) == 1.0, TAKEOVER_SECONDS)
        assert replicas[follower].healthy()
    finally:
        codes = [r.stop() for r in replicas]
    assert codes[follower] == 0
