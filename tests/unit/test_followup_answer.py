"""A peer's follow-up answer is checked before this node records it.

Why: the answer is signed by the peer, but its fields go into this node's store, whose
columns have limits and which on PostgreSQL cannot hold NUL. A malformed answer (a peer's bug
or a hostile peer) made a ``--case`` command fail with a database error half-way through its
follow-ups; it must be that peer's failure, named, with nothing stored.
"""

from __future__ import annotations

import pytest

from enlace.v1 import match_pb2
from node.errors import PeerError
from node.matching.followup_answer import MAX_REASON, check_answer, check_owner
from node.store.followup_store import FollowUpRecord

ASKED = ("first_seen_quarter", "event_type")
GOOD_ID = "3f2b9c4e8a1d4f6b9e0c7a5d2b1e8f40"


def _answer(**fields: object) -> match_pb2.FollowUpResponse:
    values = {"followup_id": GOOD_ID, "status": "released", "reason": ""} | fields
    attributes = values.pop("attributes", [("first_seen_quarter", "2026-Q2")])
    answer = match_pb2.FollowUpResponse(**values)  # type: ignore[arg-type]
    answer.attributes.extend(match_pb2.Attribute(name=n, value=v) for n, v in attributes)  # type: ignore[attr-defined]
    return answer


@pytest.mark.parametrize(
    "answer",
    [
        _answer(),
        _answer(status="pending", attributes=[], reason="waiting for an officer of PAN"),
        _answer(status="denied", attributes=[], reason="x" * MAX_REASON),
        _answer(status="denied", attributes=[], reason="line one\n\tline two"),
    ],
)
def test_a_well_formed_answer_is_accepted(answer: match_pb2.FollowUpResponse) -> None:
    check_answer("PAN", answer, ASKED)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (_answer(followup_id="a" * 33), "is not 32 hex digits"),
        (_answer(followup_id="../../etc/passwd"), "is not 32 hex digits"),
        (_answer(status="exfiltrated"), "is not one of approved, denied, pending, released"),
        (_answer(status="pending"), "values released with status 'pending'"),
        (_answer(reason="bad\x00reason"), "holds a NUL"),
        (_answer(reason="x" * (MAX_REASON + 1)), "longer than 1000 characters"),
        (_answer(attributes=[("surname", "PÉREZ")]), "'surname' was not asked for"),
        (_answer(attributes=[("event_type", "a\x00b")]), "holds a NUL"),
        (_answer(status="denied", attributes=[], reason="no\x1b[2J"), "reason holds a control"),
        (_answer(attributes=[("event_type", "x\x9b31m")]), "'event_type' holds a control"),
    ],
)
def test_a_malformed_answer_is_the_peers_failure(
    answer: match_pb2.FollowUpResponse, problem: str
) -> None:
    with pytest.raises(PeerError) as raised:
        check_answer("PAN", answer, ASKED)
    assert problem in str(raised.value)
    assert raised.value.peer == "PAN" and raised.value.status_name == "INVALID_ARGUMENT"
    assert "PAN's follow-up answer cannot be recorded" in str(raised.value)


def _recorded(peer: str, dataset: str) -> FollowUpRecord:
    import datetime as dt

    return FollowUpRecord(
        "a" * 32, "outbound", peer, dataset, 1, "", "C-1", "identity_verification", "X-1",
        ("first_seen_quarter",), (), "pending", dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    )  # fmt: skip


def test_an_answer_is_held_to_the_follow_up_it_was_asked_about() -> None:
    pan = _recorded("PAN", "identities")
    check_owner("PAN", "a" * 32, pan, asked_id="a" * 32, dataset="identities")  # a fetch
    check_owner("PAN", "b" * 32, None, asked_id="", dataset="identities")  # a new one
    refused = {
        "another peer's": ("HND", "a" * 32, pan, "a" * 32, "identities"),
        "another dataset's": ("PAN", "a" * 32, pan, "a" * 32, "travel_documents"),
        "an id already recorded for a new one": ("PAN", "a" * 32, pan, "", "identities"),
        "not the id asked about": ("PAN", "a" * 32, pan, "c" * 32, "identities"),
    }
    for case, (peer, answer_id, existing, asked, dataset) in refused.items():
        with pytest.raises(PeerError, match="follow-up answer cannot be recorded"):
            check_owner(peer, answer_id, existing, asked_id=asked, dataset=dataset)
            pytest.fail(case)
