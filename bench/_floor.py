"""The fan-out's floor: the design's required work per call, done as leanly as Python allows.

Why: ``bench_match.py`` measures one document query fanned out to ten holders beside plain
gRPC over mutual TLS, which shows what eleven processes talking over loopback cost the
machine. That alone cannot say whether the 15 ms target is within reach of any
implementation of the protocol here, or only of a leaner one than ours. This floor answers
that: per call, only what DESIGN §2, §4 and §7 cannot do without, with no abstraction around
it.

* Querier: hash the input to the group once per fan-out; per holder a fresh blind and an
  Ed25519 signature over the exact request bytes; after the answer, the holder's signature
  and its binding to the request's digest checked, the element unblinded and finalised, and
  one hash-chained audit row committed in its own SQLite transaction.
* Holder (one process per holder, ``python bench/_floor.py --serve …``): the request's
  signature verified, the blinded element evaluated (``OprfServerKey.blind_evaluate``, which
  refuses invalid points), the answer signed and bound to the request's digest, and, before it
  is sent, the replay nonce and one hash-chained audit row committed in one transaction.
* Both stores as a node's: SQLite in WAL mode, ``synchronous=NORMAL``.

What the node does and this leaves out: canonical JSON headers with their freshness, recipient
and method checks; the directory's key lookup; the agreement's decision and quota; the key
epoch and filter version; the full audit record with its validation; the filter lookup; the
thread pool and the retry paths. The gap between the floor and plain gRPC is what the required
cryptography and durable writes cost; the gap between the node and the floor is what all the
rest costs. Figures only; nothing here is asserted or used by the node.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import sqlite3
import sys
import threading
from collections.abc import Callable
from concurrent import futures
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import grpc
import nacl.signing

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._util import ChildProcess, mtls_server_credentials, serve_until_stdin_closes
from crypto.keys import tls_server_name
from crypto.oprf import HashedInputs, Mode, OprfServerKey, blind, hash_inputs

METHOD = "/bench.Floor/Evaluate"
WORKERS = 16  # as a node's server
SCHEMA = """
CREATE TABLE IF NOT EXISTS nonces (
    sender TEXT NOT NULL, nonce TEXT NOT NULL, expires_at TEXT NOT NULL,
    PRIMARY KEY (sender, nonce));
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, at TEXT NOT NULL, peer TEXT NOT NULL,
    request_digest TEXT NOT NULL, response_digest TEXT NOT NULL,
    prev_hash TEXT NOT NULL, entry_hash TEXT NOT NULL UNIQUE);
"""


class _Chain:
    """A hash-chained audit table on one connection; callers hold ``lock`` around a write."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()
        self.head = "0" * 64

    def append(self, peer: str, request_digest: str, response_digest: str) -> None:
        at = dt.datetime.now(dt.UTC).isoformat()
        entry = hashlib.sha256(
            "|".join((self.head, at, peer, request_digest, response_digest)).encode()
        ).hexdigest()
        self.db.execute(
            "INSERT INTO audit (at, peer, request_digest, response_digest, prev_hash,"
            " entry_hash) VALUES (?, ?, ?, ?, ?, ?)",
            (at, peer, request_digest, response_digest, self.head, entry),
        )
        self.head = entry


def _holder_keys(seed: bytes) -> tuple[OprfServerKey, nacl.signing.SigningKey]:
    signing = nacl.signing.SigningKey(hashlib.sha256(b"floor-signing" + seed).digest())
    return OprfServerKey.derive(seed, b"bench floor"), signing


class ReplayedError(Exception):
    """The request's nonce was seen before: nothing was committed and nothing is answered."""


class FloorHolder:
    """One holder's per-call work: verify, evaluate, sign bound to the request, and commit
    the nonce and one audit row in one transaction before answering."""

    def __init__(self, seed: bytes, querier: bytes, db: Path) -> None:
        self.oprf, self.signer = _holder_keys(seed)
        self.querier = nacl.signing.VerifyKey(querier)
        self.chain = _Chain(db)

    def answer(self, request: bytes) -> bytes:
        signature, message = request[:64], request[64:]
        self.querier.verify(message, signature)
        nonce, element = message[:16], message[16:48]
        evaluated = self.oprf.blind_evaluate([element])[0]
        digest = hashlib.sha256(request).digest()
        body = digest + evaluated
        answer: bytes = self.signer.sign(body).signature + body
        chain = self.chain
        with chain.lock:
            chain.db.execute("BEGIN IMMEDIATE")
            try:
                chain.db.execute(
                    "INSERT INTO nonces VALUES (?, ?, ?)", ("CRI", nonce.hex(), "9999-12-31")
                )
                chain.append("CRI", digest.hex(), hashlib.sha256(answer).hexdigest())
                chain.db.execute("COMMIT")
            except sqlite3.IntegrityError:
                chain.db.execute("ROLLBACK")
                raise ReplayedError from None
        return answer


class FloorQuerier:
    """The querier's per-holder work: a fresh blind, the request signed, the answer's
    signature and binding checked, the output finalised, one audit row committed."""

    def __init__(self, db: Path, filler: int) -> None:
        self.key = nacl.signing.SigningKey.generate()
        self.chain = _Chain(db)
        self.padding = b"\x20" * filler

    def ask(
        self,
        send: Callable[[bytes], bytes],
        country: str,
        holder_key: nacl.signing.VerifyKey,
        points: HashedInputs,
    ) -> bytes:
        state = blind(points.inputs, Mode.OPRF, points=points)
        message = os.urandom(16) + state.blinded_elements[0] + self.padding
        request = self.key.sign(message).signature + message
        answer = send(request)
        holder_key.verify(answer[64:], answer[:64])
        digest = hashlib.sha256(request).digest()
        if answer[64:96] != digest:
            raise RuntimeError(f"{country}'s answer is not bound to the request")
        (output,) = state.finalize([answer[96:128]])
        chain = self.chain
        with chain.lock:
            chain.db.execute("BEGIN IMMEDIATE")
            chain.append(country, digest.hex(), hashlib.sha256(answer).hexdigest())
            chain.db.execute("COMMIT")
        return output


def serve(args: argparse.Namespace) -> int:
    """Child process: one holder's Evaluate on a mutual-TLS port."""
    seeds = Path(args.keys).read_text(encoding="ascii").split()
    holder = FloorHolder(bytes.fromhex(seeds[0]), bytes.fromhex(seeds[1]), Path(args.db))

    def evaluate(request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            return holder.answer(request)
        except ReplayedError:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, "replayed nonce")

    server = grpc.server(futures.ThreadPoolExecutor(WORKERS), options=[("grpc.so_reuseport", 0)])
    handler = grpc.unary_unary_rpc_method_handler(evaluate)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.Floor", {"Evaluate": handler}),)
    )
    credentials = mtls_server_credentials(args.tls_key, args.tls_cert, args.client_ca)
    server.add_secure_port(f"127.0.0.1:{args.port}", credentials)
    server.start()
    serve_until_stdin_closes()
    server.stop(grace=1.0).wait()
    return 0


def floor_fanout(
    stack: ExitStack, root: Path, federation: Any, holders: list[str], *, filler: int
) -> tuple[Callable[[bytes], None], list[int]]:
    """Start one floor holder per country (its own TLS key, only CRI trusted) and return the
    querier's fan-out of one input to all of them, and the holders' pids. ``filler`` bytes
    stand in for the JSON header a node's request carries, so the wire sizes match."""
    from node.demo.federation import free_port

    querier = FloorQuerier(root / "floor-querier.db", filler)
    key_pem, cert_pem = federation.homes["CRI"].keys.load_tls()
    peers: list[tuple[str, Any, nacl.signing.VerifyKey]] = []
    pids = []
    for country in holders:
        seed = os.urandom(32)
        keys = root / f"floor-{country}.keys"
        keys.touch(mode=0o600)
        keys.write_text(f"{seed.hex()} {bytes(querier.key.verify_key).hex()}", encoding="ascii")
        port, tls = free_port(), federation.homes[country].keys
        child = ChildProcess([
            sys.executable, str(Path(__file__).resolve()), "--serve", f"--port={port}",
            f"--keys={keys}", f"--db={root / f'floor-{country}.db'}",
            f"--tls-key={tls.tls_key}", f"--tls-cert={tls.tls_certificate}",
            f"--client-ca={federation.homes['CRI'].keys.tls_certificate}",
        ])  # fmt: skip
        stack.enter_context(child)
        pids.append(child.pid)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=federation.directory.member(country).tls_certificate.encode(),
            private_key=key_pem,
            certificate_chain=cert_pem,
        )
        options = [("grpc.ssl_target_name_override", tls_server_name(country))]
        channel = stack.enter_context(
            grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options)
        )
        _, signer = _holder_keys(seed)
        peers.append((country, channel.unary_unary(METHOD), signer.verify_key))
    pool = stack.enter_context(futures.ThreadPoolExecutor(WORKERS))

    def one(peer: tuple[str, Any, nacl.signing.VerifyKey], points: HashedInputs) -> bytes:
        country, stub, holder_key = peer
        return querier.ask(lambda request: stub(request, timeout=10.0), country, holder_key, points)

    def fan(value: bytes) -> None:
        points = hash_inputs([value], Mode.OPRF)
        outputs = list(pool.map(lambda peer: one(peer, points), peers))
        if len(set(outputs)) != len(peers):  # ten keys, ten different outputs
            raise RuntimeError("two holders gave the same output")

    return fan, pids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", required=True)
    for name in ("port", "keys", "db", "tls-key", "tls-cert", "client-ca"):
        parser.add_argument(f"--{name}", required=True)
    return serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
