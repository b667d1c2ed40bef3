"""A notification or emergency-update receipt that is signed but malformed is the peer's failure.

Why: the Secretariat records the member's notification id on the reminder (a text column: a NUL
made the write fail on PostgreSQL, which stopped the reminders of every member after it) and
prints it; a member prints the Secretariat's emergency id and detail (an escape sequence would
reach its terminal). Each must be refused, named, and the other members reminded.

How: over real gRPC, the answer is rewritten after it verified — what a peer signing a
malformed receipt delivers to the querier's checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from st_support import QUARTER, office, serving_members

from node.client import PeerClient
from node.errors import PeerError
from node.secretariat.emergency import EMERGENCY, send_emergency_update
from node.secretariat.notify import NOTIFY

MEMBERS = ("PAN", "CRI", "HND")


def _rewriting(
    monkeypatch: pytest.MonkeyPatch, method: str, peer: str, rewrite: Callable[[Any], None]
) -> None:
    genuine = PeerClient.call

    def call(self: PeerClient, called: str, *args: Any, **kwargs: Any) -> Any:
        reply = genuine(self, called, *args, **kwargs)
        if called == method and self.peer == peer:
            rewrite(reply.message)
        return reply

    monkeypatch.setattr(PeerClient, "call", call)


def test_a_malformed_notification_id_fails_that_reminder_only(
    live_federation_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    live = serving_members(live_federation_factory(MEMBERS, valid_days=200), MEMBERS)

    def nul(answer: Any) -> None:
        answer.notification_id = "N\x00" + "0" * 400

    _rewriting(monkeypatch, NOTIFY, "CRI", nul)
    st = office(live.runtimes["CRM"], grace_days=0)
    sent = st.remind_late("2024Q2", channels=("node",))  # long over: everyone is late
    by = {r["member"]: r for r in sent}
    assert {m: r["status"] for m, r in by.items()} == {
        "PAN": "sent",
        "CRI": "failed",
        "HND": "sent",
    }
    assert "CRI's notification receipt cannot be used" in by["CRI"]["detail"]
    assert "\x00" not in by["CRI"]["detail"]


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("emergency_id", "E\x1b]0;owned\x07", "is not E and 16 hex digits"),
        ("detail", "pulling now\x1b[2J", "detail 'pulling now\\x1b[2J' holds a control"),
        ("detail", "x" * 501, "detail is longer than 500 characters"),
    ],
)
def test_a_malformed_emergency_receipt_is_the_secretariats_failure(
    live_federation_factory: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    field: str,
    value: str,
    problem: str,
) -> None:
    live = serving_members(live_federation_factory(MEMBERS, valid_days=200), MEMBERS)
    live.serve("CRM")
    _rewriting(monkeypatch, EMERGENCY, "CRM", lambda answer: setattr(answer, field, value))
    with pytest.raises(PeerError) as raised:
        send_emergency_update(live.runtimes["PAN"], QUARTER, ["M01"], "corrected records")
    error = raised.value
    assert error.peer == "CRM" and error.status_name == "INVALID_ARGUMENT"
    assert "CRM's emergency update receipt cannot be used" in error.message
    assert problem in error.message, error.message
    assert "\x1b" not in error.message
