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

from collections.abc import Iterator

import pytest

from crypto.envelope import Sealed
from enlace.v1 import match_pb2
from hostile.impostor import (
    Forge,
    Impostor,
    aggregate,
    resigned,
    running_impostor,
)
from hostile.toolkit import (
    AGGREGATE,
    AGREEMENT_ID,
    BACKENDS,
    MATCH_PURPOSE,
)
from node.audit import verify_chain
from node.client import PeerClient
from node.errors import PeerError
from node.matching.peers import SYNC, PeerFilters, StreamingPeerClient, sync_filter

OTHER_METHOD = "/enlace.v1.NodeService/GetInfo"


@pytest.fixture(scope="module", params=BACKENDS)
def impostor(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Impostor]:
    with running_impostor(request, tmp_path_factory, "binding") as made:
        yield made


# -- the forgeries ----------------------------------------------------------------------------
def _case(impostor: Impostor, name: str, method: str) -> Forge:
    if name == "earlier-answer":
        return lambda _request, _answers: impostor.earlier[method]
    if name == "addressed-to-HND":
        return lambda _r, answers: [resigned(impostor, a, recipient="HND") for a in answers]
    if name == "sender-HND":  # PAN's key and key id, but the header claims HND sent it
        return lambda _r, answers: [resigned(impostor, a, sender="HND") for a in answers]
    if name == "other-method":
        return lambda _r, answers: [resigned(impostor, a, method=OTHER_METHOD) for a in answers]
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
    "sender-HND": "response signed by 'HND'",
    "other-method": "not bound to this request",
    "refusal-with-grpc-ok": "response status 'UNAUTHENTICATED'",
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


@pytest.mark.parametrize("case", list(CASES))
def test_a_wrong_unary_answer_signed_by_pan_is_refused_and_audited(
    impostor: Impostor, case: str
) -> None:
    cri = impostor.fed.runtimes["CRI"]
    with PeerClient(cri, "PAN", endpoint=impostor.endpoint) as client:
        impostor.forge = None
        honest = aggregate(client)  # the impostor relays PAN's genuine answer: accepted
        assert honest.header.sender == "PAN" and honest.header.status == "OK"
        before = _head(impostor)
        impostor.forge = _case(impostor, case, AGGREGATE)
        try:
            with pytest.raises(PeerError) as caught:
                aggregate(client)
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
