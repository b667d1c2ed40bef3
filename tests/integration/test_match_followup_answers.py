"""What a follow-up answer carries, over real gRPC: the status, and the granted attributes once
released; never a count of the matched records; and which case references are refused.

PAN holds synthetic records; the grant gives CRI only ``first_seen_quarter`` of identities and
needs PAN's operator's approval, so the answers pass through pending, denied and released.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from match_support import (
    outbound,
    read_csv,
    serving_holder,
)

from enlace.v1 import match_pb2
from node.errors import PeerError
from node.matching.client import MatchClient, Outcome
from node.matching.followup import decide
from node.matching.peers import FOLLOW_UP
from node.matching.sources import person_query

PURPOSE = "identity_verification"
GRANTED = ("first_seen_quarter",)


@pytest.fixture
def fed(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    return serving_holder(
        live_federation_factory(),
        tmp_path_factory.getbasetemp(),
        400,
        11,
        publish=["identities"],
        approval=True,
        attributes=GRANTED,
    )


def _hit_on_a_person_with_many_records(fed: Any, client: MatchClient) -> Outcome:
    files: Path = fed.files
    rows = [r for r in read_csv(files / "encounters.csv") if r["birth_date"]]
    person_id, count = Counter(r["person_id"] for r in rows).most_common(1)[0]
    assert count > 1  # a count would say something here
    person = next(r for r in rows if r["person_id"] == person_id)
    query = person_query(person["surname"], person["given_names"], person["birth_date"])
    (hit,) = client.run([query], ["identities"], purpose=PURPOSE, peers=["PAN"]).hits()
    return hit


def _ask(client: MatchClient, request: match_pb2.FollowUpRequest) -> match_pb2.FollowUpResponse:
    reply = client.client("PAN").call(
        FOLLOW_UP, request, match_pb2.FollowUpResponse, purpose=PURPOSE
    )
    return reply.message


def _exactly(answer: match_pb2.FollowUpResponse, **fields: Any) -> None:
    """``answer`` holds these fields and nothing else, not even a field this node ignores."""
    assert {f.name for f, _ in answer.ListFields()} == set(fields)
    assert answer.SerializeToString() == match_pb2.FollowUpResponse(**fields).SerializeToString()


def test_pending_and_denied_answers_say_nothing_but_their_status(fed: Any) -> None:
    now = fed.clocks["PAN"].now()
    with MatchClient(fed.runtimes["CRI"]) as client:
        hit = _hit_on_a_person_with_many_records(fed, client)
        ask = match_pb2.FollowUpRequest(
            dataset="identities", epoch=hit.epoch, output=hit.output, case_reference="C-1",
            attributes=list(GRANTED),
        )  # fmt: skip
        pending = _ask(client, ask)
        _exactly(pending, followup_id=pending.followup_id, status="pending")
        decide(fed.runtimes["PAN"].store, pending.followup_id, approve=False, by="op",
               note="not for this case", now=now)  # fmt: skip
        fetch = match_pb2.FollowUpRequest(
            dataset="identities", epoch=hit.epoch, followup_id=pending.followup_id,
            attributes=list(GRANTED),
        )  # fmt: skip
        denied = _ask(client, fetch)
        _exactly(
            denied, followup_id=pending.followup_id, status="denied", reason="not for this case"
        )

        again = _ask(client, ask)
        decide(fed.runtimes["PAN"].store, again.followup_id, approve=True, by="op", note="",
               now=now)  # fmt: skip
        fetch.followup_id = again.followup_id
        released = _ask(client, fetch)
    (value,) = [a.value for a in released.attributes if a.name == "first_seen_quarter"]
    _exactly(
        released,
        followup_id=again.followup_id,
        status="released",
        attributes=[match_pb2.Attribute(name="first_seen_quarter", value=value)],
    )
    # The holder's operator still sees how many of its own records matched.
    inbound = fed.runtimes["PAN"].store.matching.followup(again.followup_id, "inbound")
    assert inbound is not None and inbound.to_dict()["records"] > 1


def test_the_querier_shows_no_count_it_was_not_given(fed: Any) -> None:
    with MatchClient(fed.runtimes["CRI"]) as client:
        hit = _hit_on_a_person_with_many_records(fed, client)
        record = client.follow_up(hit, case_reference="C-2", purpose=PURPOSE)
    assert record.status == "pending"
    (stored,) = outbound(fed.runtimes["CRI"])
    for shown in (record.to_dict(), stored.to_dict()):
        assert "records" not in shown
        assert shown["status"] == "pending" and shown["released"] is None


BAD_REFERENCES = (
    (" ", "only spaces"),
    ("   ", "only spaces"),
    ("", "has 0 characters"),
    ("x" * 200 + "\n", "has 201 characters"),
    ("x" * 199 + "\n", "outside printable ASCII"),
    ("C-1\n", "outside printable ASCII"),
    ("C\t1", "outside printable ASCII"),
    ("x" * 201, "has 201 characters"),
)


def test_a_bad_case_reference_is_refused_whole(fed: Any) -> None:
    with MatchClient(fed.runtimes["CRI"]) as client:
        hit = _hit_on_a_person_with_many_records(fed, client)
        for reference, problem in BAD_REFERENCES:
            ask = match_pb2.FollowUpRequest(
                dataset="identities", epoch=hit.epoch, output=hit.output,
                case_reference=reference, attributes=list(GRANTED),
            )  # fmt: skip
            with pytest.raises(PeerError) as caught:
                _ask(client, ask)
            assert caught.value.status_name == "INVALID_ARGUMENT", reference
            message = caught.value.message
            assert "case_reference" in message and problem in message, reference
            assert "1 to 200 printable ASCII characters" in message
    assert fed.runtimes["PAN"].store.matching.followups() == []


def test_the_longest_case_reference_and_inner_spaces_are_kept(fed: Any) -> None:
    with MatchClient(fed.runtimes["CRI"]) as client:
        hit = _hit_on_a_person_with_many_records(fed, client)
        for reference in ("x" * 200, " CRI 2026 / 7 "):
            ask = match_pb2.FollowUpRequest(
                dataset="identities", epoch=hit.epoch, output=hit.output,
                case_reference=reference, attributes=list(GRANTED),
            )  # fmt: skip
            assert _ask(client, ask).status == "pending"
    stored = fed.runtimes["PAN"].store.matching.followups()
    assert sorted(f.case_reference for f in stored) == sorted(("x" * 200, " CRI 2026 / 7 "))


def test_the_answer_has_no_field_a_count_could_travel_in() -> None:
    fields = match_pb2.FollowUpResponse.DESCRIPTOR.fields_by_name
    assert set(fields) == {"followup_id", "status", "attributes", "reason"}
    with pytest.raises(ValueError):
        match_pb2.FollowUpResponse(records=3)  # type: ignore[call-arg]


def test_a_peer_cannot_answer_for_another_peers_follow_up(
    fed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HND, having learnt the id of CRI's follow-up with PAN (a log, a guess), answers with
    that id and forged values: refused, and PAN's record stays as PAN answered it. HND's
    answer is stood in for after verification: its signature is the transport's to check
    (hostile tests); what is tested is what CRI records of a verified answer."""
    from types import SimpleNamespace

    from node.client import PeerClient, PeerReply

    with MatchClient(fed.runtimes["CRI"]) as client:
        hit = _hit_on_a_person_with_many_records(fed, client)
        mine = client.follow_up(hit, case_reference="C-9", purpose=PURPOSE)
        assert mine.peer == "PAN" and mine.status == "pending"
        forged = match_pb2.FollowUpResponse(
            followup_id=mine.followup_id,
            status="released",
            attributes=[match_pb2.Attribute(name="first_seen_quarter", value="2019-Q1")],
        )
        real_call = PeerClient.call

        def call(self: PeerClient, method: str, request: Any, response_type: Any, **kw: Any) -> Any:
            if self.peer != "HND":
                return real_call(self, method, request, response_type, **kw)
            return PeerReply(forged, SimpleNamespace(agreement="HND-CRI-1"), "0" * 64, 1.0)

        monkeypatch.setattr(PeerClient, "call", call)
        theirs = Outcome(0, "HND", "identities", "hit", epoch=hit.epoch, output=b"\x01" * 32)
        refusals = {
            "": "the new follow-up's id",  # a holder gives every new follow-up a new id
            mine.followup_id: "is one of PAN's on identities, not HND's on identities",
            "f" * 32: f"it answers for follow-up {mine.followup_id}, this node asked about",
        }
        for asked, says in refusals.items():
            with pytest.raises(PeerError, match="follow-up answer cannot be recorded") as caught:
                client.follow_up(
                    theirs, case_reference="C-9", purpose=PURPOSE, attributes=GRANTED,
                    followup_id=asked,
                )  # fmt: skip
            assert says in str(caught.value), (asked, caught.value)
        kept = client.runtime.store.matching.followup(mine.followup_id, "outbound")
        assert kept is not None
        assert (kept.peer, kept.status, kept.released) == ("PAN", "pending", None)


def test_a_denial_shows_its_reason_on_the_first_fetch(fed: Any) -> None:
    """The record ``followup fetch`` prints is the one stored: status, the holder's note and
    when it decided, all from the answer just received."""
    now = fed.clocks["PAN"].now()
    with MatchClient(fed.runtimes["CRI"]) as client:
        hit = _hit_on_a_person_with_many_records(fed, client)
        asked = client.follow_up(hit, case_reference="C-2", purpose=PURPOSE)
        assert (asked.status, asked.note) == ("pending", None)
        decide(fed.runtimes["PAN"].store, asked.followup_id, approve=False, by="op",
               note="not for this case", now=now)  # fmt: skip
        fetched = client.follow_up(
            hit, case_reference="C-2", purpose=PURPOSE, followup_id=asked.followup_id
        )
    assert (fetched.status, fetched.note) == ("denied", "not for this case")
    assert fetched.decided_at is not None
    assert fetched == client.runtime.store.matching.followup(asked.followup_id, "outbound")
