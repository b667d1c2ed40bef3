"""``enlace init``, ``enlace serve``, ``enlace peers``, ``enlace info``: a node's own life."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import time
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from crypto.keys import certificate_not_after
from enlace.v1 import node_pb2
from node.cli.common import (
    FittedTable,
    HomeOption,
    JsonOption,
    cli_errors,
    console,
    id_column,
    member_country,
    print_json,
    styled,
    text_column,
)
from node.client import PeerClient
from node.errors import ConfigError, PeerError
from node.home import NodeHome, init_home
from node.ops.logging_json import ACCESS_LOGGER, AccessLog
from node.ops.metrics import MetricsServer, NodeMetrics
from node.peer_checks import printable
from node.runtime import NodeRuntime, open_runtime
from node.server.app import NodeServer
from node.server.jobs import NodeJobs
from node.server.node_service import SERVICE

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("serve")(serve)
    app.command("peers")(peers)


def init(
    home: HomeOption,
    country: Annotated[str, typer.Option(help="ISO 3166 alpha-3 code (CRM for the ST).")],
    name: Annotated[str, typer.Option(help="Institution operating the node.")] = "",
    endpoint: Annotated[
        str, typer.Option(envvar="ENLACE_ENDPOINT", help="host:port peers use to reach the node.")
    ] = "127.0.0.1:7001",
    roles: Annotated[str, typer.Option(help="Comma-separated: member,secretariat,helper.")] = (
        "member"
    ),
    database_url: Annotated[
        str, typer.Option(envvar="ENLACE_DATABASE_URL", help="SQLAlchemy URL; SQLite if empty.")
    ] = "",
    directory_source: Annotated[
        str, typer.Option(help="Where to refresh the directory: a file path or peer:ISO3.")
    ] = "",
    as_json: JsonOption = False,
) -> None:
    """Create a node home: configuration, signing, X25519 and TLS keys, member descriptor."""
    with cli_errors(as_json):
        chosen_roles = tuple(r.strip() for r in roles.split(",") if r.strip())
        if "member" in chosen_roles:  # a helper node may be run under a code of its own
            country = member_country(country, "--country", secretariat=False)
        created = init_home(
            home,
            country=country,
            name=name or f"Migration authority of {country.upper()}",
            endpoint=endpoint,
            roles=chosen_roles,
            now=dt.datetime.now(dt.UTC),
            database_url=database_url,
            directory_source=directory_source,
        )
        member = created.member()
        summary = {
            "home": str(home),
            "country": member.country,
            "signing_key_id": member.signing_keys[0].key_id,
            "tls_fingerprint": member.tls_fingerprint,
            "member_descriptor": str(created.member_path),
        }
        if as_json:
            print_json(summary)
            return
        console.print(Text.assemble(("Node home created", "green"), f" at {home}"))
        for key, value in summary.items():
            console.print(f"  {key:18} {value}", highlight=False, soft_wrap=True)
        console.print(
            f"Next: send {created.member_path} to the directory administrators, then "
            f"`enlace directory publish DIR.json --home {home}` and "
            f"`enlace serve --home {home}`.",
            highlight=False,
            soft_wrap=True,
        )


def serve(
    home: HomeOption,
    listen: Annotated[str, typer.Option(envvar="ENLACE_LISTEN", help="Bind address.")] = "",
) -> None:
    """Run the node until SIGTERM or SIGINT, then drain calls and write a final checkpoint."""
    from node.server.factory import build_server

    with cli_errors():
        node_home = NodeHome(home)
        if "ENLACE_LOG_LEVEL" not in os.environ:  # before the database opens and migrates
            logging.getLogger().setLevel(node_home.config().log_level.upper())
        runtime = open_runtime(node_home)
        server = build_server(runtime, listen=listen or None)
        jobs = NodeJobs(runtime)
        metrics_server = instrument(runtime, server, jobs)
        # The handler only records the signal. Setting a threading.Event from it could
        # deadlock: the handler runs in the main thread, which may be inside that Event's
        # wait() holding its lock (a SIGTERM right after start hung the node until SIGKILL).
        signals: list[int] = []

        def _stop(signum: int, _frame: Any) -> None:
            signals.append(signum)

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        server.start()
        jobs.start()
        console.print(
            f"{runtime.config.country} serving on {server.address} "
            f"(directory v{runtime.directory.current(runtime.clock.now()).version})",
            highlight=False,
        )
        if metrics_server is not None:
            console.print(f"metrics on http://{metrics_server.address}/metrics", highlight=False)
        while not signals:
            time.sleep(0.2)  # a signal interrupts the sleep; its handler takes no lock
        log.info("stopping: calls in progress get up to 5 s to finish")
        server.stop(grace=5.0)
        leader = jobs.leader.is_leader
        jobs.shutdown()  # the leader signs a final checkpoint
        if metrics_server is not None:
            metrics_server.stop()
        head = runtime.store.audit_head()[0]
        runtime.close()
        if leader:
            log.info("stopped; final checkpoint signed over audit entry %d", head)
        else:
            log.info("stopped; the leader among the replicas signs the checkpoints")


def instrument(runtime: NodeRuntime, server: NodeServer, jobs: NodeJobs) -> MetricsServer | None:
    """Access log (at INFO; JSON logs get request ids), and the Prometheus endpoint when
    ``metrics_listen`` is set."""
    json_logs = os.environ.get("ENLACE_LOG_FORMAT", "").strip().lower() == "json"
    if json_logs or logging.getLogger(ACCESS_LOGGER).isEnabledFor(logging.INFO):
        server.pipeline.observers.append(AccessLog())  # also tags records with the request id
    if not runtime.config.metrics_listen:
        return None
    metrics = NodeMetrics(runtime, leader=jobs.leader)
    server.pipeline.observers.append(metrics.observe_call)
    jobs.observers.append(metrics.observe_job)
    try:
        return metrics.serve(runtime.config.metrics_listen)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot serve metrics on {runtime.config.metrics_listen!r}: {exc}",
            hint="set metrics_listen (ENLACE_METRICS_LISTEN) to a free host:port",
        ) from None


def probe_peers(runtime: NodeRuntime, timeout: float = 3.0) -> list[dict[str, Any]]:
    """Ping every other member; one row per peer, failures included."""
    now = runtime.clock.now()
    directory = runtime.directory.current(now)
    rows: list[dict[str, Any]] = []
    for member in directory.members:
        if member.country == runtime.config.country:
            continue
        row: dict[str, Any] = {
            "country": member.country,
            "name": member.name,
            "endpoint": member.endpoint,
            "roles": list(member.roles),
            "tls_fingerprint": member.tls_fingerprint,
        }
        row["certificate_expires"] = certificate_not_after(member.tls_certificate.encode())
        try:
            with PeerClient(runtime, member.country, timeout=timeout) as client:
                reply = client.call(
                    f"/{SERVICE}/Ping", node_pb2.PingRequest(), node_pb2.PingResponse
                )
                info = client.call(
                    f"/{SERVICE}/GetInfo", node_pb2.GetInfoRequest(), node_pb2.GetInfoResponse
                ).message
            row.update(
                reachable=True,
                latency_ms=round(reply.elapsed_ms, 2),
                directory_version=info.directory_version,
                software_version=printable(info.software_version, 100),  # a peer's text
                error="",
            )
        except PeerError as exc:
            row.update(reachable=False, latency_ms=None, directory_version=None, error=str(exc))
        rows.append(row)
    return rows


def peers(
    home: HomeOption,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each peer.")] = 3.0,
    as_json: JsonOption = False,
) -> None:
    """Table of peers: reachability, latency, directory version, certificate expiry."""
    with cli_errors(as_json):
        runtime = open_runtime(NodeHome(home))
        try:
            rows = probe_peers(runtime, timeout)
        finally:
            runtime.close()
        if as_json:
            print_json(rows)
        else:
            console.print(peers_table(rows))
        if not all(r["reachable"] for r in rows):
            raise typer.Exit(2)


def peers_table(rows: list[dict[str, Any]]) -> RenderableType:
    """The peers table, then one line per unreachable peer with the whole error and its hint:
    an error is a sentence, which a table column would cut into a word per line."""
    table = FittedTable(title="Peers", key="country")
    text_column(table, "country")
    id_column(table, "endpoint")  # read back and typed into configurations: never split
    text_column(table, "reachable")
    text_column(table, "latency ms")
    text_column(table, "directory", drop=1)  # usually one version: said below when narrow
    text_column(table, "cert expires")
    errors: list[RenderableType] = []
    for r in rows:
        table.add_row(
            r["country"],
            r["endpoint"],
            styled("yes", "green") if r["reachable"] else styled("no", "red"),
            f"{r['latency_ms']:.1f}" if r["latency_ms"] is not None else "—",
            f"v{r['directory_version']}" if r["directory_version"] else "—",
            r["certificate_expires"].date().isoformat(),
        )
        if not r["reachable"]:
            # A peer's error usually begins with its code already ("GTM: UNAVAILABLE …").
            country, error = r["country"], str(r["error"])
            rest = error[len(country) :] if error.startswith(f"{country}: ") else f": {error}"
            errors.append(Text.assemble((country, "bold"), rest))
    return Group(table, *errors)
