"""A helper's signed but malformed sum fails its round, named; it does not escape the round.

Why: the Secretariat decoded the helper's sum without a guard: a sum of another length, or
one that does not add up to counts, raised out of the collection and left the round ``open``
in the store for ever. It must end the round as ``failed`` with the helper named, like a
helper that does not answer.

How: over real gRPC, the helper's GetSum answer is rewritten after it verified — what a helper
signing a malformed sum delivers to the Secretariat's checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from st_support import QUARTER, office, prepare

from node.client import PeerClient
from node.secretariat.share_service import GET_SUM

MEMBERS = ("PAN", "CRI", "HND")
HELPER = "QHP"


def _short(answer: Any) -> None:
    answer.sum = answer.sum[:-8]


def _corrupt(answer: Any) -> None:
    answer.sum = b"\xff" * len(answer.sum)


@pytest.mark.parametrize(
    ("rewrite", "problem"),
    [(_short, "bytes, expected"), (_corrupt, "do not add up to counts")],
)
def test_a_malformed_sum_fails_the_round(
    live_federation_factory: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    rewrite: Callable[[Any], None],
    problem: str,
) -> None:
    live = live_federation_factory(MEMBERS, helper=HELPER)
    prepare(live, MEMBERS)
    for node in (*MEMBERS, HELPER):
        live.serve(node)
    genuine = PeerClient.call

    def call(self: PeerClient, method: str, *args: Any, **kwargs: Any) -> Any:
        reply = genuine(self, method, *args, **kwargs)
        if method == GET_SUM:
            rewrite(reply.message)
        return reply

    monkeypatch.setattr(PeerClient, "call", call)
    crm = live.runtimes["CRM"]
    (round_,) = office(crm, regional_only=("M01",)).collect(QUARTER, matrices=["M01"]).rounds
    assert round_.status == "failed" and round_.table is None
    assert f"helper {HELPER}'s sum cannot be used" in round_.detail and problem in round_.detail
    (stored,) = [r for r in crm.store.secretariat.rounds() if r["round_id"] == round_.round_id]
    assert stored["status"] == "failed" and stored["result"] is None
