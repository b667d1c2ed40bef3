"""A follow-up belongs to the peer that asked it: another member cannot fetch it by its id.

Why: DESIGN §7 — the holder returns the granted attributes of a hit to the querier that
revealed the output, after its operator's approval. The follow-up id travels in the answer,
so another member that learnt it (a leaked log, a guessed id) could otherwise collect the
attributes released for someone else's case. PAN's grant to CRI needs approval; HND has a
follow-up grant of its own, so only ownership stands between HND and CRI's answer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from match_support import install, match_agreement, read_csv, serving_holder

from enlace.v1 import match_pb2
from node.errors import PeerError
from node.matching.client import MatchClient, Outcome
from node.matching.followup import decide
from node.matching.keys import document_input
from node.matching.peers import FOLLOW_UP

PURPOSE = "identity_verification"
DATASET = "travel_documents"
GRANTED = ["first_seen_quarter"]


@pytest.fixture
def fed(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    live = serving_holder(
        live_federation_factory(),
        tmp_path_factory.getbasetemp(),
        300,
        12,
        publish=[DATASET],
        approval=True,
        attributes=tuple(GRANTED),
    )
    now = live.clocks["PAN"].now()
    install(live.runtimes, match_agreement("PAN", "HND", now, attributes=tuple(GRANTED)), now)
    return live


def _fetch(client: MatchClient, followup_id: str) -> match_pb2.FollowUpResponse:
    request = match_pb2.FollowUpRequest(
        dataset=DATASET, followup_id=followup_id, attributes=GRANTED
    )
    reply = client.client("PAN").call(
        FOLLOW_UP, request, match_pb2.FollowUpResponse, purpose=PURPOSE
    )
    return reply.message


def test_another_peer_cannot_fetch_an_approved_follow_up_by_its_id(fed: Any) -> None:
    files: Path = fed.files
    doc = read_csv(files / f"{DATASET}.csv")[0]
    value = document_input(doc["document_number"], doc["issuing_state"])
    pan = fed.runtimes["PAN"].store
    with MatchClient(fed.runtimes["CRI"]) as cri:
        outputs, cached, _ = cri.evaluate("PAN", DATASET, [value], PURPOSE)
        assert cached.filter.contains(outputs[0])
        hit = Outcome(0, "PAN", DATASET, "hit", epoch=cached.manifest.epoch, output=outputs[0])
        pending = cri.follow_up(hit, case_reference="C-7", purpose=PURPOSE, attributes=GRANTED)
        assert pending.status == "pending"
        decide(
            pan, pending.followup_id, approve=True, by="op", note="", now=fed.clocks["PAN"].now()
        )

        with MatchClient(fed.runtimes["HND"]) as hnd, pytest.raises(PeerError) as caught:
            _fetch(hnd, pending.followup_id)
        assert caught.value.status_name == "NOT_FOUND"
        assert pending.followup_id in caught.value.message and "HND" in caught.value.message
        # Nothing was released on HND's call: the approved answer still waits for CRI.
        held = pan.matching.followup(pending.followup_id, "inbound")
        assert held is not None and held.peer == "CRI"
        assert held.status == "approved" and held.released is None
        refused = [e.record for e in pan.iter_audit() if e.record.peer == "HND"]
        assert [(r.status, r.decision) for r in refused] == [("NOT_FOUND", "denied")]

        # CRI, whose follow-up it is, gets it.
        answer = _fetch(cri, pending.followup_id)
    assert answer.status == "released"
    assert [a.name for a in answer.attributes] == GRANTED
    released = pan.matching.followup(pending.followup_id, "inbound")
    assert released is not None and released.status == "released"
