"""A member's signed but malformed table (or consular directory) is that member's failure.

Why: the pull stored every verified answer as it came; a member answering a negative count (or
a table of other dimensions) was stored as ``complete`` and then made the regional
aggregation refuse the table for every member. It must be recorded as missing for that member
alone, with the reason, while the other members' tables are stored and summed. Likewise a
consular entry with an escape sequence or a line break never reaches the merged directory.

How: over real gRPC, the answer of PAN is altered after it verified — what a PAN node that
signs a malformed table delivers to the querier's checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from st_support import QUARTER, office, serving_members

from node.secretariat import consular, pull
from node.secretariat.outputs import regional_matrix

LiveFederation = Any  # tests/integration/conftest.py
MEMBERS = ("PAN", "CRI", "HND")


def alter_answers_of(
    monkeypatch: pytest.MonkeyPatch, peer: str, change: Callable[[Any], None]
) -> None:
    """The Secretariat receives ``peer``'s answers changed by ``change`` after they verified, as
    if ``peer`` had signed them so (signatures are the hostile tests' concern)."""
    genuine = pull.Retrier.call

    def call(self: pull.Retrier, client: Any, *args: Any, **kwargs: Any) -> Any:
        reply = genuine(self, client, *args, **kwargs)
        if client.peer == peer:
            change(reply.message)
        return reply

    monkeypatch.setattr(pull.Retrier, "call", call)


def test_a_member_releasing_a_negative_count_is_missing_alone(
    live_federation_factory: Callable[..., LiveFederation], monkeypatch: pytest.MonkeyPatch
) -> None:
    live = serving_members(live_federation_factory(MEMBERS), MEMBERS)

    def negative(answer: Any) -> None:
        answer.cells[0].has_value, answer.cells[0].value = True, -40

    alter_answers_of(monkeypatch, "PAN", negative)
    st = office(live.runtimes["CRM"])
    report = st.collect(QUARTER, matrices=["M03"])
    assert report.pull is not None and report.pull.missing == ["PAN"]
    failed = report.pull.members["PAN"].failed["M03"]
    assert failed.startswith("INVALID_ARGUMENT") and "releases a negative count (-40)" in failed
    assert {c: o.status for c, o in report.pull.members.items() if c != "PAN"} == {
        "CRI": "complete",
        "HND": "complete",
    }
    rows = live.runtimes["CRM"].store.secretariat.results(period=QUARTER)
    assert {(r.member, r.status) for r in rows if r.received_at is not None} == {
        ("CRI", "complete"),
        ("HND", "complete"),
    }
    regional = regional_matrix(st, "M03", QUARTER)
    assert set(regional.table.contributors) == {"CRI", "HND"}
    assert regional.table.missing == ("PAN",)


def test_a_member_sending_a_malformed_consular_entry_is_missing_alone(
    live_federation_factory: Callable[..., LiveFederation], monkeypatch: pytest.MonkeyPatch
) -> None:
    live = serving_members(live_federation_factory(MEMBERS), MEMBERS)

    def forged(answer: Any) -> None:
        answer.entries[0].city = "Tegucigalpa\x1b[2J\r\nIND,HND,forged"

    alter_answers_of(monkeypatch, "HND", forged)
    collection = consular.collect(live.runtimes["CRM"])
    assert set(collection.received) == {"PAN", "CRI"} and list(collection.missing) == ["HND"]
    assert "city" in collection.missing["HND"] and "control character" in collection.missing["HND"]
    assert "\x1b" not in collection.missing["HND"]
    assert not any("forged" in e.city for e in collection.entries)
    assert all(r != "HND" for e in collection.entries for r in e.reported_by)
