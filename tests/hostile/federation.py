"""A federation of real nodes on loopback for the hostile, fuzz and fault tests.

Why not ``tests/integration``'s fixture: these suites share one federation per module and
backend (set-up is the slow part), need the method table each served node registered, and
build the in-process pipeline the fuzzer calls. The nodes are real (homes, keys, directory,
stores, mutual TLS), with one :class:`~node.clock.ManualClock` each.

Invariants: databases are private to one federation (SQLite files in a temporary directory,
or PostgreSQL schemas that are dropped afterwards); servers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, make_url, text

from node.client import PeerClient
from node.clock import ManualClock
from node.demo.agreements import STATS_DIMENSIONS, sign_and_install
from node.demo.federation import LocalFederation, create_federation
from node.ingest.pipeline import ingest
from node.matching.filters import Holder
from node.records.generate import generate
from node.runtime import NodeRuntime, open_runtime
from node.server.app import NodeServer
from node.server.factory import build_server
from node.server.pipeline import MethodSpec, Pipeline
from policies.agreement import Agreement, Disclosure, Grant, Quotas

AGREEMENT_ID = "HOSTILE-PAN-CRI"
STATS_PURPOSE, MATCH_PURPOSE = "quarterly_matrices", "identity_verification"
DIRECTORY_PURPOSE = "consular_directory"
HELPER = "HLP"
FURNISHED = (
    "encounters",
    "travel_documents",
    "document_alerts",
    "persons_of_interest",
    "biometric_templates",
    "consular_directory",
)


@contextlib.contextmanager
def recording_methods() -> Iterator[dict[str, MethodSpec]]:
    """Record every method a :class:`NodeServer` built meanwhile registers (a spy that calls
    through to :func:`node.server.edge.generic_handler`, so the server is unchanged)."""
    from node.server import app

    seen: dict[str, MethodSpec] = {}
    namespace = vars(app)
    original = namespace["generic_handler"]

    def spy(pipeline: Pipeline, service: str, specs: list[MethodSpec]) -> Any:
        seen.update((spec.full_name, spec) for spec in specs)
        return original(pipeline, service, specs)

    namespace["generic_handler"] = spy
    try:
        yield seen
    finally:
        namespace["generic_handler"] = original


def in_process(runtime: NodeRuntime) -> tuple[Pipeline, dict[str, MethodSpec]]:
    """The pipeline and method table :func:`build_server` gives ``runtime``, without serving."""
    with recording_methods() as seen:
        server = build_server(runtime, listen="127.0.0.1:0")
    server.stop(grace=0)
    return server.pipeline, dict(seen)


@dataclass
class Federation:
    """Real homes, real mTLS servers on loopback, one ManualClock per node (as in
    ``tests/integration``), plus the method table of every node served."""

    federation: LocalFederation
    runtimes: dict[str, NodeRuntime]
    clocks: dict[str, ManualClock]
    servers: dict[str, NodeServer] = field(default_factory=dict)
    methods: dict[str, dict[str, MethodSpec]] = field(default_factory=dict)

    def serve(self, country: str) -> NodeServer:
        with recording_methods() as seen:
            server = build_server(self.runtimes[country])
        server.start()
        self.servers[country] = server
        self.methods[country] = dict(seen)
        return server

    def client(self, caller: str, callee: str, timeout: float = 10.0) -> PeerClient:
        return PeerClient(self.runtimes[caller], callee, timeout=timeout)

    def now(self, country: str = "PAN") -> dt.datetime:
        return self.clocks[country].now()

    def close(self) -> None:
        for server in self.servers.values():
            server.stop(grace=0.5)
        for runtime in self.runtimes.values():
            runtime.close()


@contextlib.contextmanager
def databases(
    root: Path, names: Iterable[str], admin: Engine | None = None
) -> Iterator[dict[str, str]]:
    """One private, empty database per name: SQLite files under ``root``, or (with ``admin``, an
    autocommit engine on a PostgreSQL server) one schema each, dropped afterwards."""
    names = list(names)
    if admin is None:
        root.mkdir(parents=True, exist_ok=True)
        yield {n: f"sqlite+pysqlite:///{root / f'{n}.db'}" for n in names}
        return
    schemas = {n: f"h_{secrets.token_hex(6)}" for n in names}
    base = make_url(admin.url.render_as_string(hide_password=False))
    urls = {}
    for name, schema in schemas.items():
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        query = {"options": f"-csearch_path={schema}", "application_name": f"enlace-h-{schema}"}
        urls[name] = base.update_query_dict(query).render_as_string(hide_password=False)
    try:
        yield urls
    finally:
        with admin.connect() as conn:
            for schema in schemas.values():
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": f"enlace-h-{schema}"},
                )
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


#: The two backends a module-scoped federation fixture runs on (``params=BACKENDS``).
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@contextlib.contextmanager
def backend_federation(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    countries: tuple[str, ...],
    *,
    helper: str,
) -> Iterator[tuple[Federation, Path]]:
    """A federation of ``countries``, the Secretariat and ``helper`` on the fixture's backend
    (its param, one of :data:`BACKENDS`), with its scratch root; closed afterwards."""
    admin = (
        request.getfixturevalue("postgres_admin_engine") if request.param == "postgres" else None
    )
    root = tmp_path_factory.mktemp(f"{name}-{request.param}")
    with databases(root / "db", (*countries, "CRM", helper), admin) as urls:
        live = open_federation(root / "fed", urls, countries, helper=helper)
        try:
            yield live, root
        finally:
            live.close()


def open_federation(
    root: Path,
    urls: Mapping[str, str],
    countries: tuple[str, ...] = ("PAN", "CRI", "HND"),
    *,
    helper: str = "",
) -> Federation:
    """``urls`` holds one database URL per country, the Secretariat ``CRM`` and the helper."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    local = create_federation(root, countries, now, database_urls=dict(urls), helper=helper)
    clocks = {c: ManualClock(now) for c in local.homes}
    runtimes = {c: open_runtime(h, clocks[c]) for c, h in local.homes.items()}
    return Federation(local, runtimes, clocks)


def hostile_agreement(
    holder: str,
    requester: str,
    now: dt.datetime,
    *,
    agreement_id: str = AGREEMENT_ID,
    per_day: int | None = None,
) -> Agreement:
    """Every service ``holder`` offers, granted to ``requester``: a baseline the attacks abuse."""
    quotas = Quotas(per_day=per_day, per_quarter=None)
    match_sets = ("travel_documents", "document_alerts", "persons_of_interest", "identities")
    attributes = ("first_seen_quarter", "event_type", "nationality_basis", "alert_type")
    grants = (
        Grant(
            holder,
            requester,
            "stats",
            ("encounters", "matrices"),
            (STATS_PURPOSE,),
            quotas,
            dimensions=STATS_DIMENSIONS,
            disclosure=Disclosure(profile="standard"),
        ),
        Grant(holder, requester, "match", match_sets, (MATCH_PURPOSE,), quotas),
        Grant(holder, requester, "biometric", ("biometric_templates",), (MATCH_PURPOSE,), quotas),
        Grant(
            holder,
            requester,
            "followup",
            (*match_sets, "biometric_templates"),
            (MATCH_PURPOSE,),
            quotas,
            attributes=(*attributes, "nationality"),
            followup_requires_approval=False,
        ),
        Grant(
            holder, requester, "directory", ("consular_directory",), (DIRECTORY_PURPOSE,), quotas
        ),
    )
    start = now - dt.timedelta(days=1)
    return Agreement(
        agreement_id,
        1,
        (holder, requester),
        "Hostile-peer test baseline",
        start,
        start + dt.timedelta(days=365),
        grants,
    )


def install(fed: Federation, agreement: Agreement) -> str:
    return sign_and_install(agreement, fed.runtimes, fed.now(agreement.parties[0]))


def furnish(fed: Federation, data: Path, *, encounters: int = 300) -> None:
    """PAN holds synthetic records of every dataset and published filters; the baseline
    agreement grants CRI everything. Handlers then do real work for the requests sent."""
    pan, now = fed.runtimes["PAN"], fed.now()
    generate("PAN", encounters, 7, data, templates_fraction=0.5)
    for dataset in FURNISHED:
        ingest(pan.store, dataset, [data / f"{dataset}.csv"], now=now)
    Holder(pan.store, pan.home, "PAN", pan.signing_key).update(now)
    install(fed, hostile_agreement("PAN", "CRI", now))
    install(fed, hostile_agreement("PAN", "CRM", now, agreement_id="HOSTILE-PAN-CRM"))
