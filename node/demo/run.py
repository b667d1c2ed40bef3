"""``enlace demo``: a local federation of real node processes, end to end.

Steps (each printed as it happens): create the node homes and a threshold-signed directory;
start every node as its own ``enlace serve`` process on a loopback port; wait until each
answers gRPC health over mutual TLS; have every node ping every other with signed, audited
calls; show what the agreements allow and deny, fetch a countersigned copy and have a peer
pull a protected matrix under one; match, screen, probe; let the Secretariat pull; verify
every node's audit chain; stop the nodes gracefully. Later capabilities add their own steps
here, so the demo always shows the whole system.

Nodes left up by ``keep_running`` record their pids in ``<home>/serve.pid``. A later run
refuses to rebuild a directory whose nodes still run (deleting homes under live processes
would orphan them); :func:`stop_demo` (``enlace demo --stop``) stops them.
"""

from __future__ import annotations

import datetime as dt
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enlace.v1 import agreements_pb2, node_pb2
from node.agreements import AgreementBook, party_keys
from node.client import PeerClient
from node.demo.agreements import install_demo_agreements
from node.demo.biometrics import biometric_step, prepare_biometrics
from node.demo.federation import LocalFederation, create_federation
from node.demo.manifests import manifest_step
from node.demo.matching import matching_step, prepare_matching
from node.demo.processes import NodeProcess, RunningNode, running_nodes, stop_running
from node.demo.secretariat import prepare_secretariat, secretariat_step
from node.demo.stats import peer_matrix_step
from node.errors import ConfigError, PeerError
from node.runtime import NodeRuntime, open_runtime
from policies.decision import Request
from policies.signatures import load_signed_agreement, verify_agreement

DEFAULT_COUNTRIES = ("PAN", "CRI", "HND", "MEX")
MARKER = ".enlace-demo"
PID_FILE = "serve.pid"

Say = Callable[[str], None]


@dataclass
class DemoResult:
    root: Path
    countries: list[str]
    pings: list[dict[str, Any]] = field(default_factory=list)
    agreements: list[str] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    fetched: dict[str, Any] = field(default_factory=dict)
    peer_matrix: dict[str, Any] = field(default_factory=dict)
    audit: dict[str, dict[str, Any]] = field(default_factory=dict)
    matching: dict[str, Any] = field(default_factory=dict)
    biometrics: dict[str, Any] = field(default_factory=dict)
    secretariat: dict[str, Any] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)
    #: The nodes left running (``keep_running``): country, pid, endpoint, home, log.
    running: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def all_reachable(self) -> bool:
        return bool(self.pings) and all(p["ok"] for p in self.pings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "countries": self.countries,
            "pings": self.pings,
            "agreements": self.agreements,
            "decisions": self.decisions,
            "fetched_agreement": self.fetched.get("agreement", ""),
            "fetched": self.fetched,
            "peer_matrix": self.peer_matrix,
            "all_reachable": self.all_reachable,
            "audit": self.audit,
            "matching": self.matching,
            "biometrics": self.biometrics,
            "secretariat": self.secretariat,
            "exit_codes": self.exit_codes,
            "running": self.running,
            **({"stop_command": stop_command(self.root)} if self.running else {}),
            "seconds": round(self.seconds, 2),
        }


def stop_command(root: Path) -> str:
    """The exact command that stops the nodes a demo in ``root`` left running."""
    return f"enlace demo --stop --dir {shlex.quote(str(root))}"


def describe_running(nodes: list[RunningNode]) -> str:
    return ", ".join(f"{n.country} (pid {n.pid}, {n.endpoint})" for n in nodes)


def _require_demo_dir(root: Path) -> None:
    if not (root / MARKER).exists():
        raise ConfigError(
            f"{root} exists and was not created by `enlace demo`; refusing to delete it",
            hint="pass another --dir",
        )


def prepare_root(root: Path) -> None:
    """Start from scratch, but only ever delete a directory an earlier demo created, and
    never under nodes an earlier ``--keep-running`` left up (they would be orphaned)."""
    if root.exists():
        _require_demo_dir(root)
        running = running_nodes(root, PID_FILE)
        if running:
            raise ConfigError(
                f"demo nodes are still running in {root}: {describe_running(running)}; "
                "refusing to delete their homes",
                hint=f"stop them with `{stop_command(root)}`, then run the demo again",
            )
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / MARKER).write_text("created by enlace demo\n", encoding="utf-8")


def ping_matrix(runtimes: dict[str, NodeRuntime], say: Say) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for caller, runtime in runtimes.items():
        for callee in runtimes:
            if callee == caller:
                continue
            try:
                with PeerClient(runtime, callee, timeout=5.0) as client:
                    reply = client.call(
                        "/enlace.v1.NodeService/Ping",
                        node_pb2.PingRequest(payload=caller.encode()),
                        node_pb2.PingResponse,
                    )
                rows.append(
                    {"from": caller, "to": callee, "ok": True, "ms": round(reply.elapsed_ms, 2)}
                )
            except PeerError as exc:
                rows.append({"from": caller, "to": callee, "ok": False, "error": str(exc)})
                say(f"  {caller} → {callee}: FAILED {exc}")
    return rows


DECISIONS = (
    ("CRI", "PAN", "match", "travel_documents", "identity_verification", ()),
    ("CRI", "MEX", "stats", "encounters", "quarterly_matrices", ("nationality", "quarter")),
    ("CRI", "MEX", "match", "travel_documents", "identity_verification", ()),
    ("CRM", "HND", "stats", "encounters", "quarterly_matrices", ("nationality", "quarter")),
    ("CRI", "HND", "stats", "encounters", "quarterly_matrices", ("nationality",)),
    ("CRM", "PAN", "match", "travel_documents", "identity_verification", ()),
)


def agreement_decisions(runtimes: dict[str, NodeRuntime]) -> list[dict[str, Any]]:
    """Ask each holder's own book, as its server would, about a few described requests."""
    rows: list[dict[str, Any]] = []
    for requester, holder, service, dataset, purpose, dims in DECISIONS:
        if holder not in runtimes or requester not in runtimes:
            continue
        runtime = runtimes[holder]
        now = runtime.clock.now()
        request = Request(requester, holder, service, dataset, purpose, frozenset(dims))
        explanation = AgreementBook(runtime).current(now).explain(request, now)
        rows.append(
            {
                "request": f"{requester} asks {holder} for {service} on {dataset} ({purpose})",
                "allowed": explanation.allowed,
                "why": explanation.reasons[0].message if explanation.reasons else "",
                "rule": explanation.decision.agreement_id if explanation.decision else "",
            }
        )
    return rows


def stop_demo(root: Path) -> list[dict[str, Any]]:
    """Stop the nodes an earlier ``enlace demo --keep-running`` left running in ``root``.

    Returns one entry per node (country, pid, endpoint, home, log, outcome); empty when none
    was running. Only processes recorded in the homes' pid files that are still an
    ``enlace serve`` of that home are signalled.
    """
    if not root.exists():
        return []
    _require_demo_dir(root)
    nodes = running_nodes(root, PID_FILE)
    outcome = stop_running(nodes)
    return [n.to_dict() | {"outcome": outcome[n.country]} for n in nodes]


def fetch_agreement(
    runtimes: dict[str, NodeRuntime], caller: str, holder: str, agreement_id: str
) -> dict[str, Any]:
    """Fetch the countersigned copy over the network, as `enlace policy fetch` does, and
    verify both parties' signatures against the caller's directory."""
    if caller not in runtimes or holder not in runtimes:
        return {}
    runtime = runtimes[caller]
    with PeerClient(runtime, holder) as client:
        reply = client.call(
            "/enlace.v1.AgreementService/GetAgreement",
            agreements_pb2.GetAgreementRequest(agreement_id=agreement_id),
            agreements_pb2.GetAgreementResponse,
        )
    now = runtime.clock.now()
    verified = verify_agreement(
        load_signed_agreement(reply.message.document),
        party_keys(runtime.directory.current(now)),
        now,
    )
    return {
        "agreement": verified.id,
        "version": verified.version,
        "from": holder,
        "by": caller,
        "parties": list(verified.agreement.parties),
        "signatures": dict(verified.key_ids),
        "verified": True,
        "hash": verified.hash,
    }


def run_demo(
    root: Path,
    countries: tuple[str, ...] = DEFAULT_COUNTRIES,
    *,
    keep_running: bool = False,
    say: Say = print,
    on_pings: Callable[[DemoResult], None] | None = None,
) -> DemoResult:
    """Run the demo in ``root``; ``say`` narrates each step as it happens, and ``on_pings``
    (if given) is called right after step 4 to show the ping matrix in its place."""
    from node.cli.audit_cmd import verify_log
    from node.server.jobs import write_checkpoint

    started = time.monotonic()
    prepare_root(root)
    now = dt.datetime.now(dt.UTC)
    say(f"1. Creating node homes and a 2-of-3 signed directory in {root}")
    federation: LocalFederation = create_federation(root, countries, now)
    everyone = list(federation.homes)
    result = DemoResult(root, everyone)
    say("   Installing bilateral agreements, signed by both parties")
    setup = {c: open_runtime(federation.homes[c]) for c in everyone}
    try:
        result.agreements = install_demo_agreements(setup, now)
        say("   Generating and importing synthetic records; building match filters")
        result.matching = prepare_matching(setup, root, now, say)
        result.biometrics = prepare_biometrics(setup, root, now, say)
        result.secretariat = prepare_secretariat(setup, root, now, say)
    finally:
        for runtime in setup.values():
            runtime.close()
    nodes = [
        NodeProcess(
            c,
            federation.homes[c],
            federation.endpoint(c),
            pid_file=federation.homes[c].root / PID_FILE,
        )
        for c in federation.homes
    ]
    say(
        f"2. Starting {len(nodes)} node processes: "
        + ", ".join(f"{n.country}@{n.endpoint}" for n in nodes)
    )
    runtimes: dict[str, NodeRuntime] = {}
    try:
        for node in nodes:
            node.start()
        deadline = time.monotonic() + 30
        for node in nodes:
            node.wait_ready(deadline)
        say("3. Every node answers gRPC health over mutual TLS")
        runtimes = {c: open_runtime(federation.homes[c]) for c in everyone}
        say("4. Every node pings every other node (signed, pinned, audited both sides)")
        result.pings = ping_matrix(runtimes, say)
        if on_pings is not None:
            on_pings(result)
        say("5. Agreements: allowed, denied, a countersigned copy fetched, a matrix pulled")
        result.decisions = agreement_decisions(runtimes)
        for line in result.decisions:
            say(f"   {'ALLOWED' if line['allowed'] else 'DENIED '}  {line['request']}")
            if not line["allowed"]:
                say(f"            {line['why']}")
        result.fetched = fetch_agreement(runtimes, "CRI", "PAN", "PAN-CRI-MATCH")
        if result.fetched:
            signers = " and ".join(
                f"{party} (key {key})" for party, key in result.fetched["signatures"].items()
            )
            say(
                f"   CRI fetched PAN's countersigned copy of {result.fetched['agreement']} "
                f"version {result.fetched['version']}: signed by {signers}; "
                "both signatures verify against the directory"
            )
        result.peer_matrix = peer_matrix_step(runtimes, say)
        say("6. Private identity matching from Costa Rica (OPRF; peers learn nothing asked)")
        result.matching.update(matching_step(runtimes, root, say))
        result.matching["manifest"] = manifest_step(runtimes, root, say)
        say("7. Biometric identification from Costa Rica (protected face codes, per-peer keys)")
        result.biometrics.update(biometric_step(runtimes, root, say))
        say("8. The Secretariat pulls the regional matrices; a member goes down and comes back")
        result.secretariat.update(secretariat_step(runtimes, nodes, root, say))
        say("9. Verifying every node's audit chain and checkpoint")
        for country, runtime in runtimes.items():
            write_checkpoint(runtime)
            result.audit[country] = verify_log(runtime)
    finally:
        for runtime in runtimes.values():
            runtime.close()
        if not keep_running:
            for node in nodes:
                result.exit_codes[node.country] = node.stop()
    if keep_running:
        result.running = [n.to_dict() for n in running_nodes(root, PID_FILE)]
    result.seconds = time.monotonic() - started
    return result
