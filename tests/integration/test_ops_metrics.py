"""The Prometheus endpoint and the JSON access log of a serving node, scraped over HTTP."""

from __future__ import annotations

import io
import json
import logging
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from enlace.v1 import node_pb2, stats_pb2
from node.errors import PeerError
from node.ops.logging_json import ACCESS_LOGGER, AccessLog, JsonFormatter
from node.ops.metrics import NodeMetrics
from node.server.jobs import NodeJobs
from node.stats.answer import budget_scope

PING = "/enlace.v1.NodeService/Ping"
AGGREGATE = "/enlace.v1.StatsService/Aggregate"


def scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as answer:
        body = answer.read().decode()
    samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture
def watched(live):  # type: ignore[no-untyped-def]
    pan = live.runtimes["PAN"]
    jobs = NodeJobs(pan)
    assert jobs.leader.check()  # alone on its database: it leads (SQLite: always)
    metrics = NodeMetrics(pan, leader=jobs.leader)
    live.servers["PAN"].pipeline.observers.append(metrics.observe_call)
    jobs.observers.append(metrics.observe_job)
    server = metrics.serve("127.0.0.1:0")
    yield live, metrics, jobs, server.address
    server.stop()
    jobs.leader.release()


def test_requests_latency_and_refusals_by_method_status_and_peer(watched) -> None:  # type: ignore[no-untyped-def]
    live, _metrics, _jobs, address = watched
    with live.client("CRI", "PAN") as client:
        for _ in range(3):
            client.call(PING, node_pb2.PingRequest(), node_pb2.PingResponse)
        with pytest.raises(PeerError) as refused:  # refused calls are counted too
            client.call(
                AGGREGATE,
                stats_pb2.AggregateRequest(
                    dataset="encounters",
                    measure="persons",
                    dimensions=["nationality"],
                    period="2023",
                ),
                stats_pb2.AggregateResponse,
            )
    with live.client("HND", "PAN") as client:
        client.call(PING, node_pb2.PingRequest(), node_pb2.PingResponse)
    samples = scrape(address)
    ok = (("method", PING), ("peer", "CRI"), ("status", "OK"))
    assert samples[("enlace_requests_total", ok)] == 3
    assert (
        samples[("enlace_requests_total", (("method", PING), ("peer", "HND"), ("status", "OK")))]
        == 1
    )
    denied = [
        labels
        for (name, labels), value in samples.items()
        if name == "enlace_requests_total" and ("method", AGGREGATE) in labels and value == 1
    ]
    assert [dict(labels)["status"] for labels in denied] == [refused.value.status_name]
    assert samples[("enlace_request_seconds_count", (("method", PING),))] == 4
    assert samples[("enlace_scheduler_leader", ())] == 1  # SQLite: the only process leads
    assert samples[("enlace_directory_version", ())] == 1
    assert samples[("enlace_audit_entries", ())] == 5
    own = ("enlace_expiry_seconds", (("kind", "tls_certificate"), ("subject", "PAN")))
    assert 364 * 86400 < samples[own] <= 365 * 86400
    assert samples[("enlace_expiry_alarm", (("kind", "directory"), ("subject", "v1")))] == 0


def test_made_up_senders_do_not_grow_the_label_set(watched) -> None:  # type: ignore[no-untyped-def]
    _live, metrics, _jobs, address = watched
    for i in range(5):
        metrics.observe_call(PING, "UNAUTHENTICATED", f"Q{i:02d}", 0.001)
    samples = scrape(address)
    peers = {dict(labels)["peer"] for (name, labels) in samples if name == "enlace_requests_total"}
    assert peers == {"unknown"}


def test_quota_budget_and_scheduler_runs(watched) -> None:  # type: ignore[no-untyped-def]
    live, _metrics, jobs, address = watched
    pan = live.runtimes["PAN"]
    now = pan.clock.now()
    quarter = f"{now.year}-Q{(now.month - 1) // 3 + 1}"
    day = now.strftime("%Y-%m-%d")
    store = pan.store.policies
    store.consume_quota("PAN-CRI:PAN>CRI:stats", [day, quarter], 7, lambda used: None)
    store.consume_quota(budget_scope("CRI"), [quarter, "total"], 250_000_000, lambda used: None)
    store.consume_quota(budget_scope("CRI"), ["total"], 500_000_000, lambda used: None)
    jobs._safe(lambda rt: None, "nonce-purge")()  # type: ignore[operator]
    jobs._safe(lambda rt: 1 / 0, "audit-checkpoint")()  # type: ignore[operator]
    samples = scrape(address)
    scope = ("scope", "PAN-CRI:PAN>CRI:stats")
    assert samples[("enlace_quota_used", (scope, ("window", "day")))] == 7
    assert samples[("enlace_quota_used", (scope, ("window", "quarter")))] == 7
    budget = (("peer", "CRI"), ("period", quarter))
    assert samples[("enlace_privacy_budget_used", budget)] == pytest.approx(0.25)
    total = (("peer", "CRI"), ("period", "total"))  # what a budget_total caps, never reset
    assert samples[("enlace_privacy_budget_used", total)] == pytest.approx(0.75)
    runs = "enlace_scheduler_job_runs_total"
    assert samples[(runs, (("job", "nonce-purge"), ("outcome", "ok")))] == 1
    assert samples[(runs, (("job", "audit-checkpoint"), ("outcome", "failed")))] == 1


def test_json_access_log_carries_the_request_id_of_the_audit_entry(live) -> None:  # type: ignore[no-untyped-def]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    live.servers["PAN"].pipeline.observers.append(AccessLog())
    try:
        with live.client("CRI", "PAN") as client:
            reply = client.call(PING, node_pb2.PingRequest(), node_pb2.PingResponse)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == reply.request_digest[:16]
    assert (line["method"], line["peer"], line["status"]) == (PING, "CRI", "OK")
    assert (
        line["level"] == "INFO" and line["logger"] == ACCESS_LOGGER and line["time"].endswith("Z")
    )
    inbound = [
        e for e in live.runtimes["PAN"].store.iter_audit() if e.record.direction == "inbound"
    ]
    assert inbound[-1].record.request_digest.startswith(line["request_id"])


def test_json_formatter_inside_a_call_and_for_exceptions() -> None:
    from node.server.pipeline import CURRENT_CALL

    formatter = JsonFormatter()
    token = CURRENT_CALL.set(("ab" * 32, "/enlace.v1.NodeService/GetInfo"))
    try:
        record = logging.LogRecord(
            "node.server", logging.WARNING, __file__, 1, "x %s", ("y",), None
        )
        inside = json.loads(formatter.format(record))
    finally:
        CURRENT_CALL.reset(token)
    assert inside["request_id"] == "ab" * 8 and inside["message"] == "x y"
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("n", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    outside = json.loads(formatter.format(record))
    assert "request_id" not in outside and "ValueError: boom" in outside["exception"]
