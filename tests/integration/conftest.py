"""A small live federation for integration tests: real homes, real mTLS servers on loopback.

Each node has its own :class:`~node.clock.ManualClock`, so tests can skew one side, expire
the directory, or walk through quota windows without sleeping.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from node.client import PeerClient
from node.clock import ManualClock
from node.demo.federation import LocalFederation, create_federation
from node.runtime import NodeRuntime, open_runtime
from node.server.app import NodeServer
from node.server.factory import build_server


@dataclass
class LiveFederation:
    federation: LocalFederation
    runtimes: dict[str, NodeRuntime]
    clocks: dict[str, ManualClock]
    servers: dict[str, NodeServer] = field(default_factory=dict)

    def serve(self, country: str) -> NodeServer:
        server = build_server(self.runtimes[country])
        server.start()
        self.servers[country] = server
        return server

    def client(self, caller: str, callee: str, timeout: float = 5.0) -> PeerClient:
        return PeerClient(self.runtimes[caller], callee, timeout=timeout)

    def close(self) -> None:
        for server in self.servers.values():
            server.stop(grace=0.5)
        for runtime in self.runtimes.values():
            runtime.close()


@pytest.fixture
def live_federation_factory(
    tmp_path: Path, database_url_factory: Callable[[], str]
) -> Iterator[Callable[..., LiveFederation]]:
    made: list[LiveFederation] = []

    def make(
        countries: tuple[str, ...] = ("PAN", "CRI", "HND"), **kwargs: object
    ) -> LiveFederation:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        urls = {c: database_url_factory() for c in (*countries, "CRM")}
        federation = create_federation(
            tmp_path / f"fed{len(made)}",
            countries,
            now,
            database_urls=urls,
            **kwargs,  # type: ignore[arg-type]
        )
        clocks = {c: ManualClock(now) for c in federation.homes}
        runtimes = {c: open_runtime(h, clocks[c]) for c, h in federation.homes.items()}
        live = LiveFederation(federation, runtimes, clocks)
        made.append(live)
        return live

    yield make
    for live in made:
        live.close()


@pytest.fixture
def live(live_federation_factory: Callable[..., LiveFederation]) -> LiveFederation:
    """PAN, CRI, HND and the ST; PAN is serving."""
    federation = live_federation_factory()
    federation.serve("PAN")
    return federation


@pytest.fixture
def restore_target(
    database_backend: str, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], str]]:
    """Where a backup restores: ``target(schema)`` is "" for SQLite (the new home holds the
    database), or a new, empty PostgreSQL database whose connections look in ``schema`` (the
    dump recreates the node's schema there)."""
    if database_backend == "sqlite":
        yield lambda schema: ""
        return
    import secrets

    admin = request.getfixturevalue("postgres_admin_engine")
    name = f"restore_{secrets.token_hex(5)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = make_url(admin.url).set(database=name)

    def target(schema: str) -> str:
        url = base.update_query_dict({"options": f"-csearch_path={schema}"})
        return url.render_as_string(hide_password=False)

    yield target
    with admin.connect() as conn:
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
