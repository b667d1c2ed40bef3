"""Lost database connection: a serving node cut off PostgreSQL mid-load, then let back.

The node's database URL goes through :class:`faults.proxy.Relay`; peers call it from several
threads while every connection is reset and new ones refused for a while. What the node must
do (documented in docs/assurance.md): answer UNAVAILABLE (or, when only a handler's query
failed, INTERNAL, signed and audited) — never UNKNOWN, never the exception text, SQL or
database address — keep its process and server up, and serve
normally as soon as the database is reachable again, with an audit chain that verifies and
every exchange it acknowledged in it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile.toolkit import (
    AGGREGATE,
    PING,
    STATS_PURPOSE,
    Federation,
    databases,
    hostile_agreement,
    install,
    open_federation,
)
from sqlalchemy import Engine, make_url

from enlace.v1 import node_pb2, stats_pb2
from faults.proxy import Relay
from node.audit import verify_chain
from node.errors import PeerError

pytestmark = pytest.mark.postgres
LEAKS = ("psycopg", "SQL", "sqlalchemy", "Traceback", "connection to server")


@pytest.fixture
def cut_off(postgres_admin_engine: Engine, tmp_path: Path) -> Iterator[tuple[Federation, Relay]]:
    server = make_url(postgres_admin_engine.url)
    assert server.host and server.port
    with (
        Relay(server.host, server.port) as relay,
        databases(tmp_path / "db", ("PAN", "CRI", "HND", "CRM"), postgres_admin_engine) as urls,
    ):
        urls["PAN"] = make_url(urls["PAN"]).set(port=relay.port).render_as_string(False)
        fed = open_federation(tmp_path / "fed", urls)
        try:
            install(fed, hostile_agreement("PAN", "CRI", fed.now()))
            fed.serve("PAN")
            yield fed, relay
        finally:
            fed.close()


Seen = list[tuple[float, str, str, str]]  # (when, status, request digest, message)


def _load(fed: Federation, stop: threading.Event, seen: Seen) -> None:
    stats = stats_pb2.AggregateRequest(dataset="encounters", dimensions=["sex"], period="2023")
    with fed.client("CRI", "PAN", timeout=5.0) as client:
        while not stop.is_set():
            for method, request, answer, purpose in (
                (PING, node_pb2.PingRequest(payload=b"p"), node_pb2.PingResponse, ""),
                (AGGREGATE, stats, stats_pb2.AggregateResponse, STATS_PURPOSE),
            ):
                try:
                    reply = client.call(method, request, answer, purpose=purpose)
                    seen.append((time.monotonic(), "OK", reply.request_digest, ""))
                except PeerError as exc:
                    seen.append((time.monotonic(), exc.status_name, "", exc.message))
                    time.sleep(0.02)


def test_a_node_cut_off_its_database_answers_unavailable_and_recovers(
    cut_off: tuple[Federation, Relay],
) -> None:
    fed, relay = cut_off
    seen: Seen = []
    stop = threading.Event()
    threads = [threading.Thread(target=_load, args=(fed, stop, seen)) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        cut = time.monotonic()
        relay.cut()  # mid-load: open transactions die, new connections are refused
        time.sleep(1.5)
        relay.restore()
        restored = time.monotonic()
        time.sleep(3.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    before = {status for when, status, _, _ in seen if when < cut}
    during = [status for when, status, _, _ in seen if cut <= when < restored + 1.0]
    after = [status for when, status, _, _ in seen if when >= restored + 1.0]
    assert before == {"OK"}, before
    # Mostly UNAVAILABLE (nothing could be recorded); INTERNAL, signed and audited, when a
    # handler's query failed but the refusal could still be written on a fresh connection; a
    # call in flight at the cut may also outlive the caller's 5 s deadline.
    assert "UNAVAILABLE" in during
    assert set(during) <= {"OK", "UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED"}, set(during)
    assert len(after) > 5 and set(after) == {"OK"}, after  # recovered
    leaked = [m for _, s, _, m in seen if s != "OK" and any(word in m for word in LEAKS)]
    assert not leaked, leaked[:3]
    print(
        f"database cut 1.5 s: {len(during)} calls then ({dict(Counter(during))}); "
        f"{len(after)} calls after, all OK"
    )
    store = fed.runtimes["PAN"].store
    verify_chain(store.iter_audit())
    logged = {e.record.request_digest for e in store.iter_audit()}
    acknowledged = {digest for _, status, digest, _ in seen if status == "OK"}
    assert acknowledged <= logged, f"{len(acknowledged - logged)} acknowledged calls not logged"
