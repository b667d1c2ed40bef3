"""Answers genuinely signed by PAN that are wrong for the request: the querier refuses them.

Why: DESIGN §4 says responses are signed like requests and bind the request digest; the client
(:meth:`node.client.PeerClient._verify`) checks the sender, the recipient, the request digest,
the method and the status. A peer — or anyone holding its keys — could otherwise pass off an
old answer, one meant for another node or another method, or a refusal as data.

How: an impostor listens with PAN's TLS certificate and, for every call, runs PAN's real
pipeline in process (PAN's store, agreements and signing key), then answers with what the case
makes of PAN's genuine response: a response to an earlier request, a refusal PAN really signed
(sent with gRPC OK), or PAN's response header with one field changed and re-signed with PAN's
own key (so exactly one check of the client stands between it and acceptance). Done for a unary
call (Stats Aggregate) and the SyncFilter stream.

Invariants: each answer is a :class:`PeerError` ``UNAUTHENTICATED`` naming the failed check;
the querier's outbound audit entry records it; no filter is installed from a refused stream.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass

import grpc
import pytest

from crypto.envelope import Sealed, decode_header, seal
from enlace.v1 import envelope_pb2, match_pb2, stats_pb2
from hostile.toolkit import (
    AGGREGATE,
    AGREEMENT_ID,
    BACKENDS,
    HELPER,
    MATCH_PURPOSE,
    ROWS,
    STATS_PURPOSE,
    Federation,
    backend_federation,
    furnish,
    in_process,
)
from node.audit import verify_chain
from node.client import PeerClient, PeerReply
from node.demo.federation import free_port
from node.errors import PeerError
from node.matching.peers import SYNC, PeerFilters, StreamingPeerClient, sync_filter
from node.server.pipeline import MethodSpec, Pipeline

COUNTRIES = ("PAN", "CRI", "HND")
OTHER_METHOD = "/enlace.v1.NodeService/GetInfo"

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


def _wire(sealed: Sealed) -> envelope_pb2.Envelope:
    return envelope_pb2.Envelope(header=sealed.header, signature=sealed.signature, body=sealed.body)


def _sealed(wire: envelope_pb2.Envelope) -> Sealed:
    return Sealed(bytes(wire.header), bytes(wire.signature), bytes(wire.body))


def _serve(impostor: Impostor) -> grpc.Server:
    def unary(method: str) -> Callable[[envelope_pb2.Envelope, grpc.ServicerContext], object]:
        return lambda request, _context: _wire(impostor.handle(method, _sealed(request))[0])

    def stream(method: str) -> Callable[[envelope_pb2.Envelope, grpc.ServicerContext], object]:
        return lambda request, _context: iter(
            [_wire(s) for s in impostor.handle(method, _sealed(request))]
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


@pytest.fixture(scope="module", params=BACKENDS)
def impostor(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Impostor]:
    with backend_federation(request, tmp_path_factory, "binding", COUNTRIES, helper=HELPER) as (
        fed,
        root,
    ):
        furnish(fed, root / "data")
        pipeline, methods = in_process(fed.runtimes["PAN"])
        made = Impostor(fed, pipeline, methods)
        server = _serve(made)
        try:
            yield made
        finally:
            server.stop(grace=None)


# -- the forgeries ----------------------------------------------------------------------------
def _resigned(impostor: Impostor, answer: Sealed, **changes: str) -> Sealed:
    """PAN's ``answer`` with header ``changes``, signed again with PAN's own key."""
    header = dataclasses.replace(decode_header(answer.header), **changes)
    return seal(header, answer.body, impostor.fed.runtimes["PAN"].signing_key)


def _case(impostor: Impostor, name: str, method: str) -> Forge:
    if name == "earlier-answer":
        return lambda _request, _answers: impostor.earlier[method]
    if name == "addressed-to-HND":
        return lambda _r, answers: [_resigned(impostor, a, recipient="HND") for a in answers]
    if name == "sender-HND":  # PAN's key and key id, but the header claims HND sent it
        return lambda _r, answers: [_resigned(impostor, a, sender="HND") for a in answers]
    if name == "other-method":
        return lambda _r, answers: [_resigned(impostor, a, method=OTHER_METHOD) for a in answers]
    if name == "refusal-with-grpc-ok":
        return lambda request, _answers: [impostor.refusal_for(request, method)]
    if name == "altered-body":
        return lambda _r, answers: [
            Sealed(a.header, a.signature, a.body + b"\x08\x01") for a in answers
        ]
    raise AssertionError(name)


#: Each case, and the failed check the querier's error must name.
CASES = {
    "earlier-answer": "not bound to this request",
    "addressed-to-HND": "addressed to another node",
    "sender-HND": "response signed by HND",
    "other-method": "not bound to this request",
    "refusal-with-grpc-ok": "response status UNAUTHENTICATED",
    "altered-body": "body does not match the signed body digest",
}


def _outbound_refusals(impostor: Impostor, since: int) -> list[str]:
    store = impostor.fed.runtimes["CRI"].store
    return [
        e.record.reason
        for e in store.iter_audit()
        if e.seq > since and e.record.direction == "outbound" and e.record.status != "OK"
    ]


def _head(impostor: Impostor) -> int:
    return impostor.fed.runtimes["CRI"].store.audit_head()[0]


def _aggregate(client: PeerClient) -> PeerReply[stats_pb2.AggregateResponse]:
    body = ROWS[AGGREGATE].body(client)
    return client.call(
        AGGREGATE,
        body,
        stats_pb2.AggregateResponse,
        purpose=STATS_PURPOSE,
        agreement=AGREEMENT_ID,
    )


@pytest.mark.parametrize("case", list(CASES))
def test_a_wrong_unary_answer_signed_by_pan_is_refused_and_audited(
    impostor: Impostor, case: str
) -> None:
    cri = impostor.fed.runtimes["CRI"]
    with PeerClient(cri, "PAN", endpoint=impostor.endpoint) as client:
        impostor.forge = None
        honest = _aggregate(client)  # the impostor relays PAN's genuine answer: accepted
        assert honest.header.sender == "PAN" and honest.header.status == "OK"
        before = _head(impostor)
        impostor.forge = _case(impostor, case, AGGREGATE)
        try:
            with pytest.raises(PeerError) as caught:
                _aggregate(client)
        finally:
            impostor.forge = None
    error = caught.value
    assert error.status_name == "UNAUTHENTICATED"
    assert "does not verify" in error.message and CASES[case] in error.message
    # Exactly one outbound entry, recording the refusal and why.
    reasons = _outbound_refusals(impostor, before)
    assert len(reasons) == 1 and CASES[case] in reasons[0]
    assert _head(impostor) == before + 1
    verify_chain(cri.store.iter_audit())


@pytest.mark.parametrize("case", list(CASES))
def test_a_wrong_filter_stream_signed_by_pan_installs_nothing(
    impostor: Impostor, case: str
) -> None:
    cri = impostor.fed.runtimes["CRI"]
    with StreamingPeerClient(cri, "PAN", endpoint=impostor.endpoint) as client:
        # An earlier, genuine stream (kept by the impostor; not installed here).
        impostor.forge = None
        chunks: list[object] = []
        request = match_pb2.SyncFilterRequest(dataset="travel_documents")
        client.receive(
            SYNC,
            request,
            match_pb2.FilterChunk,
            chunks.append,
            purpose=MATCH_PURPOSE,
            agreement=AGREEMENT_ID,
        )
        assert chunks
        before = _head(impostor)
        filters = PeerFilters(cri)
        impostor.forge = _case(impostor, case, SYNC)
        try:
            with pytest.raises(PeerError) as caught:
                sync_filter(
                    client,
                    filters,
                    "travel_documents",
                    purpose=MATCH_PURPOSE,
                    agreement=AGREEMENT_ID,
                )
        finally:
            impostor.forge = None
    error = caught.value
    assert error.status_name == "UNAUTHENTICATED"
    assert "refused at message 1" in error.message and CASES[case] in error.message
    reasons = _outbound_refusals(impostor, before)
    assert len(reasons) == 1 and CASES[case] in reasons[0]
    # Nothing was cached: neither in memory nor in the store.
    assert filters.get("PAN", "travel_documents") is None
    assert PeerFilters(cri).get("PAN", "travel_documents") is None
    assert not [f for f in cri.store.matching.peer_filters() if f.dataset == "travel_documents"]
    verify_chain(cri.store.iter_audit())


def test_the_impostor_relays_pans_genuine_answers_unchanged(impostor: Impostor) -> None:
    """The control: without a forgery the same route installs PAN's filter."""
    cri = impostor.fed.runtimes["CRI"]
    impostor.forge = None
    with StreamingPeerClient(cri, "PAN", endpoint=impostor.endpoint) as client:
        filters = PeerFilters(cri)
        cached = sync_filter(
            client, filters, "identities", purpose=MATCH_PURPOSE, agreement=AGREEMENT_ID
        )
    assert cached.peer == "PAN" and cached.manifest.dataset == "identities"
    assert PeerFilters(cri).get("PAN", "identities") is not None  # stored, and verifies
