"""What the security stack costs: signed, pinned, audited ``Ping`` against plain gRPC ``Ping``.

Why: every exchange is signed, sent over pinned mutual TLS, verified and appended to a
hash-chained audit log on both sides (DESIGN §2, §4); the target is at most 1.5× the latency of
an unsigned gRPC call on loopback. Layers, measured in one run and interleaved in rounds so that
drift on a shared machine hits all alike:

* ``plain`` (the anchor): a trivial grpcio handler echoing ``enlace.v1.PingRequest`` →
  ``PingResponse`` on an insecure 127.0.0.1 port, in its own process; ``mtls``: the same
  behind mutual TLS with the nodes' own certificates;
* ``full``: ``/enlace.v1.NodeService/Ping`` from CRI's :class:`~node.client.PeerClient` to a
  real ``enlace serve`` process of PAN (a 2-node federation in a temporary directory);
* to attribute the difference, in-process and without network: ``envelope`` (seal and open
  request and response), ``audit`` (one record appended; a call makes 2), ``nonce`` (one
  replay-cache insert) and ``nonce_raw`` (the same on the bare sqlite3 connection), and
  ``pipeline`` (PAN's :class:`~node.server.pipeline.Pipeline` handling one sealed request).

    python bench/bench_ping.py [--calls N] [--seconds S] [--concurrency C] [--json]

Every loop is bounded by a call count *and* a time budget. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent import futures
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc
from _util import (
    ChildProcess,
    Sample,
    Summary,
    anchor_ratios,
    machine,
    mtls_server_credentials,
    print_json,
    print_layers,
    run_bounded,
    serve_until_stdin_closes,
    summarise,
)

from crypto.envelope import Header, Sealed, format_time, open_envelope, seal, sha256_hex
from crypto.keys import tls_server_name
from enlace.v1 import node_pb2
from node.audit import AuditRecord
from node.client import PeerClient
from node.demo.federation import LocalFederation, create_federation, free_port
from node.demo.processes import NodeProcess
from node.runtime import NodeRuntime, open_runtime
from node.server.authorize import default_authorizer
from node.server.node_service import method_specs
from node.server.pipeline import Pipeline
from node.store import open_store

PING = "/enlace.v1.NodeService/Ping"
TARGET_RATIO = 1.5
ANCHOR_WORKERS = 16  # as many as a node's server (node.server.app.NodeServer)
NETWORK = ("plain", "mtls", "full")
LOCAL = ("envelope", "audit", "nonce", "nonce_raw", "pipeline")
DESCRIPTIONS = {
    "plain": "plain gRPC, insecure, no envelope (anchor)",
    "mtls": "gRPC + mutual TLS, no envelope",
    "full": "signed + pinned mTLS + verified + audited both sides",
    "envelope": "seal+open request and response, no network",
    "audit": "AuditRecord + audit append, SQLite (2 per call)",
    "nonce": "replay-cache insert, SQLite (1 per call)",
    "nonce_raw": "the same insert on the bare sqlite3 connection (floor)",
    "pipeline": "server Pipeline.handle in-process, no network",
}
PER_CALL = {"envelope": 1, "audit": 2, "nonce": 1, "pipeline": 1}

Call = Callable[[], object]


@dataclass(frozen=True)
class Layer:
    """One thing to measure: the call, and the server process whose CPU time it costs."""

    call: Call
    server_pid: int | None = None


# ---------------------------------------------------------------------- the anchor (child)


def serve_anchor(args: argparse.Namespace) -> int:
    """Child process: the trivial Ping on an insecure port and, if given keys, an mTLS port."""

    def ping(request: node_pb2.PingRequest, context: grpc.ServicerContext) -> node_pb2.PingResponse:
        return node_pb2.PingResponse(payload=request.payload)

    handler = grpc.unary_unary_rpc_method_handler(
        ping,
        request_deserializer=node_pb2.PingRequest.FromString,
        response_serializer=node_pb2.PingResponse.SerializeToString,
    )
    executor = futures.ThreadPoolExecutor(max_workers=ANCHOR_WORKERS)
    server = grpc.server(executor, options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("enlace.v1.NodeService", {"Ping": handler}),)
    )
    server.add_insecure_port(f"127.0.0.1:{args.plain_port}")
    if args.tls_port:
        credentials = mtls_server_credentials(args.tls_key, args.tls_cert, args.client_ca)
        server.add_secure_port(f"127.0.0.1:{args.tls_port}", credentials)
    server.start()
    serve_until_stdin_closes()
    server.stop(grace=1.0).wait()
    return 0


# ---------------------------------------------------------------------- layers (client side)


def _check_echo(answer: node_pb2.PingResponse, payload: bytes) -> None:
    if answer.payload != payload:
        raise RuntimeError("the server did not echo the payload")


def _stub_call(channel: grpc.Channel, payload: bytes) -> Call:
    stub = channel.unary_unary(
        PING,
        request_serializer=node_pb2.PingRequest.SerializeToString,
        response_deserializer=node_pb2.PingResponse.FromString,
    )
    request = node_pb2.PingRequest(payload=payload)

    def call() -> None:
        _check_echo(stub(request, timeout=10.0), payload)

    return call


def plain_layer(stack: ExitStack, port: int, payload: bytes) -> Call:
    channel = stack.enter_context(grpc.insecure_channel(f"127.0.0.1:{port}"))
    return _stub_call(channel, payload)


def mtls_layer(
    stack: ExitStack,
    port: int,
    fed: LocalFederation,
    payload: bytes,
    *,
    server: str = "PAN",
    client: str = "CRI",
) -> Call:
    """Ping over mutual TLS: ``client``'s key, ``server``'s certificate pinned, as a node's
    channel to its peer (also the anchor of ``bench_match.py``'s fan-out)."""
    key_pem, cert_pem = fed.homes[client].keys.load_tls()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=fed.directory.member(server).tls_certificate.encode("ascii"),
        private_key=key_pem,
        certificate_chain=cert_pem,
    )
    options = [("grpc.ssl_target_name_override", tls_server_name(server))]
    channel = stack.enter_context(
        grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options)
    )
    return _stub_call(channel, payload)


def start_anchor(
    stack: ExitStack, fed: LocalFederation, *, server: str = "PAN", client: str = "CRI"
) -> tuple[ChildProcess, int, int]:
    """The trivial Ping server in its own process, with ``server``'s TLS key and only
    ``client`` trusted: (process, insecure port, mutual-TLS port)."""
    plain_port, tls_port = free_port(), free_port()
    keys = fed.homes[server].keys
    anchor = ChildProcess(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve-anchor",
            f"--plain-port={plain_port}",
            f"--tls-port={tls_port}",
            f"--tls-key={keys.tls_key}",
            f"--tls-cert={keys.tls_certificate}",
            f"--client-ca={fed.homes[client].keys.tls_certificate}",
        ]
    )
    stack.enter_context(anchor)
    return anchor, plain_port, tls_port


def full_layer(stack: ExitStack, cri: NodeRuntime, payload: bytes) -> Call:
    client = stack.enter_context(PeerClient(cri, "PAN"))
    request = node_pb2.PingRequest(payload=payload)

    def call() -> None:
        _check_echo(client.call(PING, request, node_pb2.PingResponse).message, payload)

    return call


def _response_header(pan: NodeRuntime, request: Sealed, body: bytes) -> Header:
    """What PAN's pipeline signs for an allowed Ping (see ``Pipeline._respond``)."""
    key = pan.signing_key
    return Header(
        kind="response",
        method=PING,
        sender="PAN",
        recipient="CRI",
        issued_at=format_time(pan.clock.now()),
        nonce=os.urandom(16).hex(),
        key_id=key.key_id,
        body_sha256=sha256_hex(body),
        request_digest=request.digest,
        status="OK",
    )


def envelope_layer(
    client: PeerClient, pan: NodeRuntime, fed: LocalFederation, payload: bytes
) -> Call:
    now = client.runtime.clock.now()
    cri_key = fed.directory.signing_key("CRI", client.runtime.signing_key.key_id, now)
    pan_key = fed.directory.signing_key("PAN", pan.signing_key.key_id, now)
    body = node_pb2.PingRequest(payload=payload).SerializeToString()

    def call() -> None:
        request = client.seal_request(PING, body)
        open_envelope(request, cri_key, "request")
        response = seal(_response_header(pan, request, body), body, pan.signing_key)
        open_envelope(response, pan_key, "response")

    return call


def audit_layer(stack: ExitStack, client: PeerClient, pan: NodeRuntime, root: Path) -> Call:
    """A store of its own, so the chain it extends is as short as a fresh node's."""
    store = open_store(f"sqlite+pysqlite:///{root / 'bench-audit.db'}")
    stack.callback(store.close)
    body = node_pb2.PingResponse(payload=b"x" * 32).SerializeToString()
    request = client.seal_request(PING, body)
    response = seal(_response_header(pan, request, body), body, pan.signing_key)

    def call() -> None:
        store.append_audit(
            AuditRecord(
                at=pan.clock.now(),
                direction="inbound",
                peer="CRI",
                method=PING,
                request_header=request.header,
                request_signature=request.signature,
                request_digest=request.digest,
                decision="allowed",
                status="OK",
                reason="",
                agreement_id="",
                agreement_hash="",
                response_header=response.header,
                response_signature=response.signature,
                response_digest=response.digest,
                extra={},
            )
        )

    return call


def nonce_layer(pan: NodeRuntime) -> Call:
    expires = pan.clock.now() + dt.timedelta(minutes=5)

    def call() -> None:
        pan.store.remember_nonce("CRI", os.urandom(16).hex(), expires)

    return call


def nonce_raw_layer(stack: ExitStack, pan: NodeRuntime) -> Call:
    """The replay-cache transaction without SQLAlchemy: what the database itself costs."""
    raw = pan.store.engine.raw_connection()
    stack.callback(raw.close)
    connection: Any = raw.driver_connection
    expires = (pan.clock.now() + dt.timedelta(minutes=5)).replace(tzinfo=None).isoformat(" ")
    statement = "INSERT INTO nonces (sender, nonce, expires_at) VALUES (?, ?, ?)"

    def call() -> None:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(statement, ("CRI", os.urandom(16).hex(), expires))
        connection.execute("COMMIT")

    return call


def pipeline_layer(client: PeerClient, pan: NodeRuntime, payload: bytes) -> Call:
    """Only the server side is timed: the call seals its request first, off the clock."""
    pipeline = Pipeline(pan, default_authorizer(), require_tls=False)
    spec = next(s for s in method_specs() if s.full_name == PING)
    body = node_pb2.PingRequest(payload=payload).SerializeToString()

    def call() -> float:
        sealed = client.seal_request(PING, body)
        started = time.perf_counter()
        outcome = pipeline.handle(spec, sealed, None)
        elapsed = time.perf_counter() - started
        if outcome.error is not None:
            raise outcome.error
        return elapsed

    return call


# ---------------------------------------------------------------------- orchestration


@dataclass
class Plan:
    layers: list[str]
    calls: int
    seconds: float
    concurrency: int
    rounds: int
    warmup: int
    payload: bytes


def build_layers(
    plan: Plan, stack: ExitStack, root: Path, say: Callable[[str], None]
) -> dict[str, Layer]:
    now = dt.datetime.now(dt.UTC)
    fed = create_federation(root / "federation", ("PAN", "CRI"), now, secretariat="")
    layers: dict[str, Layer] = {}
    wanted = set(plan.layers)
    if wanted & {"plain", "mtls"}:
        anchor, plain_port, tls_port = start_anchor(stack, fed)
        say(f"anchor gRPC server pid {anchor.pid} on 127.0.0.1:{plain_port} and :{tls_port}")
        layers["plain"] = Layer(plain_layer(stack, plain_port, plan.payload), anchor.pid)
        layers["mtls"] = Layer(mtls_layer(stack, tls_port, fed, plan.payload), anchor.pid)
    cri = open_runtime(fed.homes["CRI"])
    stack.callback(cri.close)
    if "full" in wanted:
        node = NodeProcess("PAN", fed.homes["PAN"], fed.endpoint("PAN"))
        node.start()
        stack.callback(node.stop)
        node.wait_ready(time.monotonic() + 60)
        pid = node.process.pid if node.process else None
        say(f"PAN node process pid {pid} at {node.endpoint}")
        layers["full"] = Layer(full_layer(stack, cri, plan.payload), pid)
    if wanted & set(LOCAL):
        # PAN's runtime in this process, on a database of its own (the node process has its).
        local_db = f"sqlite+pysqlite:///{root / 'pan-local.db'}"
        pan = open_runtime(fed.homes["PAN"], database_url=local_db)
        stack.callback(pan.close)
        sealer = stack.enter_context(PeerClient(cri, "PAN"))
        layers["envelope"] = Layer(envelope_layer(sealer, pan, fed, plan.payload))
        layers["audit"] = Layer(audit_layer(stack, sealer, pan, root))
        layers["nonce"] = Layer(nonce_layer(pan))
        layers["nonce_raw"] = Layer(nonce_raw_layer(stack, pan))
        layers["pipeline"] = Layer(pipeline_layer(sealer, pan, plan.payload))
    return {name: layers[name] for name in plan.layers}


def measure(plan: Plan, layers: dict[str, Layer], say: Callable[[str], None]) -> dict[str, Sample]:
    """Warm every layer up, then measure them in interleaved rounds."""
    samples = {name: Sample() for name in layers}
    per_round = math.ceil(plan.calls / plan.rounds)
    budget = plan.seconds / plan.rounds
    for name, layer in layers.items():
        threads = plan.concurrency if name in NETWORK else 1
        run_bounded(layer.call, calls=plan.warmup, seconds=max(budget, 5.0), concurrency=threads)
    for round_no in range(plan.rounds):
        for name, layer in layers.items():
            left = plan.calls - len(samples[name].latencies)
            if left <= 0:
                continue
            sample = run_bounded(
                layer.call,
                calls=min(per_round, left),
                seconds=budget,
                concurrency=plan.concurrency if name in NETWORK else 1,
                server_pid=layer.server_pid,
            )
            samples[name].extend(sample)
        say(f"round {round_no + 1}/{plan.rounds} done")
    return samples


def report(plan: Plan, summaries: dict[str, Summary]) -> dict[str, Any]:
    import google.protobuf
    import sqlalchemy

    rel = anchor_ratios(
        summaries, anchor="plain", stack="full", compared=NETWORK, per_call=PER_CALL
    )
    result: dict[str, Any] = {
        "benchmark": "ping",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **machine(),
        "grpcio": grpc.__version__,
        "protobuf": google.protobuf.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "params": {
            "calls": plan.calls,
            "seconds": plan.seconds,
            "concurrency": plan.concurrency,
            "rounds": plan.rounds,
            "warmup": plan.warmup,
            "payload_bytes": len(plan.payload),
        },
        "layers": [{**s.to_dict(), "ratios": rel[s.name]} for s in summaries.values()],
    }
    if "full" in rel and "p50_vs_anchor" in rel["full"]:
        result["target"] = {
            "max_latency_ratio": TARGET_RATIO,
            "p50_ratio": rel["full"]["p50_vs_anchor"],
            "p99_ratio": rel["full"]["p99_vs_anchor"],
            "met": rel["full"]["p50_vs_anchor"] <= TARGET_RATIO,
        }
    return result


def print_table(result: dict[str, Any]) -> None:
    params = result["params"]
    title = (
        f"Ping: {params['concurrency']} client thread(s), {params['payload_bytes']}-byte "
        f"payload, {result['cpus']} CPUs, grpcio {result['grpcio']}"
    )
    verdict = ""
    target = result.get("target")
    if target:
        verdict = (
            f"full stack p50 = {target['p50_ratio']:.2f}× plain gRPC, p99 = "
            f"{target['p99_ratio']:.2f}× (target ≤ {TARGET_RATIO}×): "
            + ("met" if target["met"] else "NOT met")
        )
    print_layers(title, result["layers"], anchor="plain", overhead_of="full", verdict=verdict)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="measured calls per layer")
    parser.add_argument("--seconds", type=float, default=10.0, help="time budget per layer")
    parser.add_argument("--concurrency", type=int, default=1, help="client threads (network)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per layer")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured calls per layer")
    parser.add_argument("--payload-bytes", type=int, default=32, help="Ping payload size")
    parser.add_argument(
        "--layers", default=",".join((*NETWORK, *LOCAL)), help="comma-separated layers to run"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    hidden = argparse.SUPPRESS
    parser.add_argument("--serve-anchor", action="store_true", help=hidden)
    parser.add_argument("--plain-port", type=int, default=0, help=hidden)
    parser.add_argument("--tls-port", type=int, default=0, help=hidden)
    parser.add_argument("--tls-key", default="", help=hidden)
    parser.add_argument("--tls-cert", default="", help=hidden)
    parser.add_argument("--client-ca", default="", help=hidden)
    args = parser.parse_args(argv)
    layers = [x.strip() for x in args.layers.split(",") if x.strip()]
    unknown = set(layers) - set(DESCRIPTIONS)
    if unknown:
        parser.error(f"unknown layers: {', '.join(sorted(unknown))}")
    limits = (
        (0 < args.calls <= 1_000_000, "--calls must be 1..1e6"),
        (0 < args.seconds <= 3600, "--seconds must be in (0, 3600]"),
        (1 <= args.concurrency <= 64, "--concurrency must be 1..64"),
        (1 <= args.rounds <= args.calls, "--rounds must be 1..calls"),
        (1 <= args.warmup <= 100_000, "--warmup must be 1..1e5"),
        (0 <= args.payload_bytes <= 64 * 1024, "--payload-bytes must be 0..65536"),
    )
    for ok, message in limits:
        if not ok:
            parser.error(message)
    args.layers = layers
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_anchor:
        return serve_anchor(args)
    plan = Plan(
        layers=args.layers,
        calls=args.calls,
        seconds=args.seconds,
        concurrency=args.concurrency,
        rounds=args.rounds,
        warmup=args.warmup,
        payload=os.urandom(args.payload_bytes),
    )

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="enlace-bench-") as tmp, ExitStack() as stack:
        layers = build_layers(plan, stack, Path(tmp), say)
        samples = measure(plan, layers, say)
    summaries = {n: summarise(n, DESCRIPTIONS[n], s) for n, s in samples.items()}
    result = report(plan, summaries)
    if args.json:
        print_json(result)
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
