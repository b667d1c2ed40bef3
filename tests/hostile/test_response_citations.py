"""A response genuinely signed by PAN that cites a malformed agreement is PAN's failure.

Why: every verified response's cited agreement id and hash go into the querier's audit chain
(``agreement_id`` holds 200 characters, ``agreement_hash`` 64; PostgreSQL stores no NUL) and
onto what the answer creates (pulled tables, follow-ups). A peer citing an over-long id, a NUL
or an escape sequence made the audit append fail with a database error on PostgreSQL — not a
:class:`PeerError`, so a Secretariat pull or a ``--case`` run stopped for every peer — and on
SQLite stored it as is.

How: the impostor of :mod:`hostile.test_response_binding` (PAN's real pipeline behind PAN's
TLS key) re-signs PAN's genuine answer with the one header field changed, with PAN's own key.

Invariants: the call raises :class:`PeerError` ``INVALID_ARGUMENT`` naming the citation; the
querier's outbound audit entry records the refusal (the response bytes kept as evidence, the
citation columns empty); the chain verifies; the honest answer still goes through.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hostile.impostor import Impostor, aggregate, resigned, running_impostor
from hostile.toolkit import BACKENDS, MATCH_PURPOSE
from node.audit import verify_chain
from node.client import PeerClient
from node.errors import PeerError
from node.matching.peers import PeerFilters, StreamingPeerClient, sync_filter

#: header field -> what PAN's forged answer cites, and what the error must say.
CASES = {
    "long-agreement": ("agreement", "A" * 300, "is not an agreement id"),
    "nul-agreement": ("agreement", "PAN-CRI\x00", "is not an agreement id"),
    "escape-agreement": ("agreement", "PAN\x1b]0;owned\x07", "is not an agreement id"),
    "long-hash": ("agreement_hash", "f" * 300, "is not 64 hex digits"),
    "nul-hash": ("agreement_hash", "\x00" * 64, "is not 64 hex digits"),
}


@pytest.fixture(scope="module", params=BACKENDS)
def impostor(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Impostor]:
    with running_impostor(request, tmp_path_factory, "citations") as made:
        yield made


def _cite(impostor: Impostor, case: str) -> None:
    field, value, _ = CASES[case]
    impostor.forge = lambda _r, answers: [resigned(impostor, a, **{field: value}) for a in answers]


@pytest.mark.parametrize("case", list(CASES))
def test_a_unary_answer_citing_a_malformed_agreement_is_refused_and_audited(
    impostor: Impostor, case: str
) -> None:
    cri = impostor.fed.runtimes["CRI"]
    with PeerClient(cri, "PAN", endpoint=impostor.endpoint) as client:
        impostor.forge = None
        assert aggregate(client).header.agreement  # the honest answer cites its agreement
        before = cri.store.audit_head()[0]
        _cite(impostor, case)
        try:
            with pytest.raises(PeerError) as caught:
                aggregate(client)
        finally:
            impostor.forge = None
    error = caught.value
    assert error.status_name == "INVALID_ARGUMENT" and error.peer == "PAN"
    assert CASES[case][2] in error.message and "PAN's answer cannot be used" in error.message
    assert "\x00" not in error.message and "\x1b" not in error.message
    entries = [e for e in cri.store.iter_audit() if e.seq > before]
    assert len(entries) == 1
    record = entries[0].record
    assert record.status == "INVALID_ARGUMENT" and record.response_header
    assert (record.agreement_id, record.agreement_hash) == ("", "")
    verify_chain(cri.store.iter_audit())


def test_a_filter_stream_citing_a_malformed_agreement_installs_nothing(
    impostor: Impostor,
) -> None:
    cri = impostor.fed.runtimes["CRI"]
    _cite(impostor, "long-agreement")
    try:
        with StreamingPeerClient(cri, "PAN", endpoint=impostor.endpoint) as client:
            filters = PeerFilters(cri)
            with pytest.raises(PeerError) as caught:
                sync_filter(client, filters, "travel_documents", purpose=MATCH_PURPOSE)
    finally:
        impostor.forge = None
    assert caught.value.status_name == "INVALID_ARGUMENT"
    assert "is not an agreement id" in caught.value.message
    assert filters.get("PAN", "travel_documents") is None
    verify_chain(cri.store.iter_audit())
