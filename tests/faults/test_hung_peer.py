"""Peers that hang mid-stream, on both sides of the one streaming RPC (MatchService.SyncFilter).

* A holder that sends the first signed chunk of a filter and then hangs: the querier's
  deadline fires, the call fails with DEADLINE_EXCEEDED (audited on the querier's side),
  nothing half-received is cached, and the next sync against a holder that answers succeeds.
* Queriers that read the first chunk and then stop reading, more of them than the node has
  worker threads: the node keeps answering everyone else at once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from hostile.toolkit import MATCH_PURPOSE, PING, Federation, databases, furnish, open_federation

from crypto.envelope import Header, Sealed, format_time, seal, sha256_hex
from crypto.keys import tls_server_name
from enlace.v1 import envelope_pb2, match_pb2, node_pb2
from node.errors import PeerError
from node.matching.client import MatchClient
from node.matching.peers import SYNC

DATASET = "travel_documents"


@pytest.fixture(params=[300], ids=["records=300"])
def fed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Federation]:
    with databases(tmp_path / "db", ("PAN", "CRI", "HND", "CRM")) as urls:
        live = open_federation(tmp_path / "fed", urls)
        try:
            furnish(live, tmp_path / "data", encounters=request.param)
            yield live
        finally:
            live.close()


class HangingHolder:
    """PAN's endpoint, PAN's TLS identity and signing key: the first chunk, then silence."""

    def __init__(self, fed: Federation) -> None:
        pan = fed.runtimes["PAN"]
        self.key = pan.signing_key
        self.release = threading.Event()
        self.hung = threading.Event()
        key_pem, cert_pem = pan.home.keys.load_tls()
        clients = fed.runtimes["CRI"].home.keys.load_tls()[1]
        self.server = grpc.server(
            futures.ThreadPoolExecutor(4),
            options=[("grpc.so_reuseport", 0)],
        )
        handler = grpc.unary_stream_rpc_method_handler(
            self.sync,
            request_deserializer=envelope_pb2.Envelope.FromString,
            response_serializer=envelope_pb2.Envelope.SerializeToString,
        )
        self.server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "enlace.v1.MatchService", {"SyncFilter": handler}
                ),
            )
        )
        credentials = grpc.ssl_server_credentials(
            [(key_pem, cert_pem)], root_certificates=clients, require_client_auth=True
        )
        self.server.add_secure_port(fed.federation.endpoint("PAN"), credentials)
        self.now = pan.clock.now

    def sync(
        self, request: envelope_pb2.Envelope, context: grpc.ServicerContext
    ) -> Iterator[envelope_pb2.Envelope]:
        asked = Sealed(bytes(request.header), bytes(request.signature), bytes(request.body))
        # A well-formed first chunk (a malformed one is refused at once, before any hang).
        body = match_pb2.FilterChunk(
            kind=match_pb2.FilterChunk.FULL,
            manifest=match_pb2.SignedManifest(body=b"{}", signature=b"", key_id=self.key.key_id),
            total_size=32768,
            payload_sha256="0" * 64,
            index=0,
            count=2,
            data=bytes(16384),
        ).SerializeToString()
        header = Header(
            kind="response",
            method=SYNC,
            sender="PAN",
            recipient="CRI",
            issued_at=format_time(self.now()),
            nonce=os.urandom(16).hex(),
            key_id=self.key.key_id,
            body_sha256=sha256_hex(body),
            request_digest=asked.digest,
            status="OK",
        )
        first = seal(header, body, self.key)
        yield envelope_pb2.Envelope(header=first.header, signature=first.signature, body=first.body)
        self.hung.set()
        self.release.wait(30)  # hangs mid-stream until the test lets it go

    def __enter__(self) -> HangingHolder:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.stop(grace=0).wait()


def test_a_holder_that_hangs_mid_stream_times_out_and_nothing_is_cached(fed: Federation) -> None:
    cri = fed.runtimes["CRI"]
    with HangingHolder(fed) as holder, MatchClient(cri, timeout=2.0) as client:
        started = time.monotonic()
        with pytest.raises(PeerError) as caught:
            client.sync("PAN", DATASET, MATCH_PURPOSE)
        waited = time.monotonic() - started
        assert holder.hung.is_set(), "the holder never got to hang"
    assert caught.value.status_name == "DEADLINE_EXCEEDED"
    assert 1.5 < waited < 15, waited
    assert client.filters.get("PAN", DATASET) is None
    assert not cri.store.matching.peer_filters()
    last = list(cri.store.iter_audit())[-1].record
    assert (last.direction, last.method, last.status) == ("outbound", SYNC, "DEADLINE_EXCEEDED")
    # The holder answers again: the same sync now completes and is cached.
    fed.serve("PAN")
    with MatchClient(cri, timeout=10.0) as client:
        cached = client.sync("PAN", DATASET, MATCH_PURPOSE)
    assert cached.manifest.holder == "PAN" and len(cached.filter) > 0


@pytest.mark.parametrize("fed", [3000], ids=["records=3000"], indirect=True)
def test_queriers_that_stop_reading_mid_stream_do_not_stall_the_node(fed: Federation) -> None:
    """A filter of several chunks (identities of 3,000 encounters at 16 KiB per chunk)."""
    fed.serve("PAN")
    stalled: list[tuple[grpc.Channel, Any]] = []
    request = match_pb2.SyncFilterRequest(dataset="identities", chunk_size=16384)
    with fed.client("CRI", "PAN") as sealer:
        count = 0
        try:
            for _ in range(24):  # more than the node's 16 worker threads
                sealed = sealer.seal_request(
                    SYNC, request.SerializeToString(), purpose=MATCH_PURPOSE
                )
                wire = envelope_pb2.Envelope(
                    header=sealed.header, signature=sealed.signature, body=sealed.body
                )
                channel = _channel(fed)
                stream = channel.unary_stream(
                    SYNC,
                    request_serializer=envelope_pb2.Envelope.SerializeToString,
                    response_deserializer=envelope_pb2.Envelope.FromString,
                )(wire, timeout=60)
                first = next(stream)  # read one chunk, then stop reading
                count = match_pb2.FilterChunk.FromString(bytes(first.body)).count
                stalled.append((channel, stream))
            assert count >= 2, "the filter fits one chunk: nothing is left mid-stream"
            started = time.monotonic()
            reply = sealer.call(PING, node_pb2.PingRequest(payload=b"x"), node_pb2.PingResponse)
            assert reply.message.payload == b"x"
            assert time.monotonic() - started < 3.0
        finally:
            for channel, stream in stalled:
                stream.cancel()
                channel.close()
        reply = sealer.call(PING, node_pb2.PingRequest(payload=b"y"), node_pb2.PingResponse)
    assert reply.message.payload == b"y"


def _channel(fed: Federation) -> grpc.Channel:
    cri = fed.runtimes["CRI"]
    member = cri.directory.current(cri.clock.now()).member("PAN")
    key_pem, cert_pem = cri.home.keys.load_tls()
    credentials = grpc.ssl_channel_credentials(member.tls_certificates_pem, key_pem, cert_pem)
    options = [("grpc.ssl_target_name_override", tls_server_name("PAN"))]
    return grpc.secure_channel(member.endpoint, credentials, options=options)
