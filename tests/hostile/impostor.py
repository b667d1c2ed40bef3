"""An impostor of PAN for the hostile tests: it listens with PAN's TLS key and answers every
call through PAN's real pipeline (PAN's store, agreements and signing key), then hands PAN's
genuine signed answers to a ``forge`` that may alter them, so a test can send the querier
answers PAN really signed but that are wrong for the request.

Used by ``test_response_binding`` (answers bound to another request, method or recipient) and
``test_response_citations`` (answers citing malformed agreements).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
import pytest

from crypto.envelope import Sealed, decode_header, seal
from enlace.v1 import envelope_pb2, stats_pb2
from hostile.toolkit import (
    AGGREGATE,
    AGREEMENT_ID,
    HELPER,
    ROWS,
    STATS_PURPOSE,
    Federation,
    backend_federation,
    furnish,
    in_process,
)
from node.client import PeerClient, PeerReply
from node.demo.federation import free_port
from node.server.pipeline import MethodSpec, Pipeline

COUNTRIES = ("PAN", "CRI", "HND")

#: What the impostor makes of PAN's genuine answers to the call it is serving:
#: ``(request, answers) -> answers``; ``answers`` are PAN's signed responses to ``request``.
Forge = Callable[[Sealed, list[Sealed]], list[Sealed]]


@dataclass
class Impostor:
    """Listens with PAN's TLS key; answers through PAN's real pipeline, then ``forge``."""

    fed: Federation
    pipeline: Pipeline
    methods: dict[str, MethodSpec]
    endpoint: str = ""
    forge: Forge | None = None
    earlier: dict[str, list[Sealed]] = dataclasses.field(default_factory=dict)

    def handle(self, method: str, request: Sealed) -> list[Sealed]:
        spec = self.methods[method]
        cri_tls = self.fed.federation.homes["CRI"].keys.tls_certificate.read_bytes()
        outcome = self.pipeline.handle(spec, request, cri_tls)
        assert outcome.error is None, outcome.error  # PAN really answered this request
        answers = outcome.responses or [outcome.response]
        forged = self.forge(request, answers) if self.forge else answers
        self.earlier[method] = answers
        return forged

    def refusal_for(self, request: Sealed, method: str) -> Sealed:
        """PAN's genuine, signed refusal of ``request`` (handled a second time: a replay)."""
        outcome = self.pipeline.handle(
            self.methods[method],
            request,
            self.fed.federation.homes["CRI"].keys.tls_certificate.read_bytes(),
        )
        assert outcome.error is not None and outcome.error.status_name == "UNAUTHENTICATED"
        return outcome.response


def wire(sealed: Sealed) -> envelope_pb2.Envelope:
    return envelope_pb2.Envelope(header=sealed.header, signature=sealed.signature, body=sealed.body)


def sealed_of(wire: envelope_pb2.Envelope) -> Sealed:
    return Sealed(bytes(wire.header), bytes(wire.signature), bytes(wire.body))


def serve_impostor(impostor: Impostor) -> grpc.Server:
    def unary(method: str) -> Callable[[envelope_pb2.Envelope, grpc.ServicerContext], object]:
        return lambda request, _context: wire(impostor.handle(method, sealed_of(request))[0])

    def stream(method: str) -> Callable[[envelope_pb2.Envelope, grpc.ServicerContext], object]:
        return lambda request, _context: iter(
            [wire(s) for s in impostor.handle(method, sealed_of(request))]
        )

    decode, encode = envelope_pb2.Envelope.FromString, envelope_pb2.Envelope.SerializeToString
    by_service: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
    for name, spec in impostor.methods.items():
        service, method = name[1:].rsplit("/", 1)
        make = grpc.unary_stream_rpc_method_handler if spec.streaming else (
            grpc.unary_unary_rpc_method_handler
        )  # fmt: skip
        handler = (stream if spec.streaming else unary)(name)
        by_service.setdefault(service, {})[method] = make(
            handler, request_deserializer=decode, response_serializer=encode
        )
    keys = impostor.fed.federation.homes["PAN"].keys
    credentials = grpc.ssl_server_credentials(
        [(keys.tls_key.read_bytes(), keys.tls_certificate.read_bytes())],
        root_certificates=impostor.fed.federation.homes["CRI"].keys.tls_certificate.read_bytes(),
        require_client_auth=True,
    )
    server = grpc.server(futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(s, h) for s, h in by_service.items()]
    )
    port = free_port()
    server.add_secure_port(f"127.0.0.1:{port}", credentials)
    server.start()
    impostor.endpoint = f"127.0.0.1:{port}"
    return server


@contextmanager
def running_impostor(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[Impostor]:
    """A federation of :data:`COUNTRIES` (and the helper) on the backend ``request`` names,
    furnished with data, and PAN's impostor serving it until the block ends."""
    with backend_federation(request, tmp_path_factory, name, COUNTRIES, helper=HELPER) as (
        fed,
        root,
    ):
        furnish(fed, root / "data")
        pipeline, methods = in_process(fed.runtimes["PAN"])
        made = Impostor(fed, pipeline, methods)
        server = serve_impostor(made)
        try:
            yield made
        finally:
            server.stop(grace=None)


def resigned(impostor: Impostor, answer: Sealed, **changes: str) -> Sealed:
    """PAN's ``answer`` with header ``changes``, signed again with PAN's own key."""
    header = dataclasses.replace(decode_header(answer.header), **changes)
    return seal(header, answer.body, impostor.fed.runtimes["PAN"].signing_key)


def aggregate(client: PeerClient) -> PeerReply[stats_pb2.AggregateResponse]:
    body = ROWS[AGGREGATE].body(client)
    return client.call(
        AGGREGATE,
        body,
        stats_pb2.AggregateResponse,
        purpose=STATS_PURPOSE,
        agreement=AGREEMENT_ID,
    )
