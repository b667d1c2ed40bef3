"""What a ``--case`` follow-up table says of one hit: a node error is that peer's failure, a bug
is not (it must surface, not be read as the peer's refusal)."""

from __future__ import annotations

import pytest

from node.cli.followups_view import FAILED, NOT_ASKED, follow_up_entry
from node.errors import PeerError, StoreError
from node.store.followup_store import FollowUpRecord

WHERE = {"peer": "PAN", "dataset": "travel_documents", "case_reference": "CR-2026-0001"}


def _raise(error: Exception) -> FollowUpRecord:
    raise error


@pytest.mark.parametrize(
    "error",
    [
        PeerError("PAN: follow-up refused", peer="PAN", status_name="PERMISSION_DENIED"),
        StoreError("database is locked"),
    ],
)
def test_a_node_error_is_that_peers_failure_and_names_it(error: Exception) -> None:
    entry = follow_up_entry(
        dict(WHERE), granted=True, ask=lambda: _raise(error), purpose="identity_verification"
    )
    assert entry["status"] == FAILED
    assert entry["reason"] == str(error)
    assert entry["peer"] == "PAN"


def test_a_bug_is_raised_not_shown_as_the_peers_failure() -> None:
    with pytest.raises(KeyError):
        follow_up_entry(
            dict(WHERE),
            granted=True,
            ask=lambda: _raise(KeyError("released")),
            purpose="identity_verification",
        )


def test_not_granted_is_not_asked() -> None:
    asked: list[int] = []

    def ask() -> FollowUpRecord:
        asked.append(1)
        raise AssertionError("must not be called")

    entry = follow_up_entry(dict(WHERE), granted=False, ask=ask, purpose="identity_verification")
    assert entry["status"] == NOT_ASKED
    assert not asked
