"""A holder's signed but malformed biometric search answer is an error row for that holder.

Why: the querier showed a hit whose reference was whatever the holder sent (escape sequences
reached the terminal and the results CSV) and recorded the answer's epoch however large (a
follow-up's write failed on PostgreSQL beyond 2**63). The probes of such a call must be the
holder's error rows, named INVALID_ARGUMENT, with nothing of the answer shown.

How: over real gRPC, PAN's answer is rewritten after it verified — what a PAN node signing a
malformed answer delivers to the querier's checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from bio_support import (
    PURPOSE,
    pan_gallery,
    read_rows,
    recapture,
    vectors,
)

from node.biometrics.client import BiometricClient
from node.biometrics.service import SEARCH


@pytest.fixture
def fed(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    return pan_gallery(live_federation_factory, tmp_path_factory.getbasetemp())


def _reference(answer: Any) -> None:
    answer.results[0].hit_reference = "\x1b]0;owned\x07" + answer.results[0].hit_reference


def _epoch(answer: Any) -> None:
    answer.epoch = 2**64 - 1


@pytest.mark.parametrize(
    ("rewrite", "problem"),
    [(_reference, "is not 40 hex digits"), (_epoch, "for epoch 18446744073709551615")],
)
def test_a_malformed_search_answer_is_the_holders_error_row(
    fed: Any, rewrite: Callable[[Any], None], problem: str
) -> None:
    class Faulty:
        """PAN's real client, whose Search answer is rewritten on the way in."""

        def __init__(self, real: Any) -> None:
            self.real = real

        def call(self, method: str, request: Any, response: Any, purpose: str = "") -> Any:
            reply = self.real.call(method, request, response, purpose=purpose)
            if method == SEARCH:
                rewrite(reply.message)
            return reply

        def close(self) -> None:
            self.real.close()

    rows = read_rows(fed.files / "biometric_templates.csv")[:2]
    with BiometricClient(fed.runtimes["CRI"]) as client:
        client._clients["PAN"] = Faulty(client.client("PAN"))  # type: ignore[assignment]
        report = client.search(recapture(vectors(rows), seed=3), PURPOSE)
    pan = [o for o in report.outcomes if o.peer == "PAN"]
    assert [o.status for o in pan] == ["error", "error"]
    assert all(o.code == "INVALID_ARGUMENT" and problem in o.detail for o in pan)
    assert not any(o.reference or "\x1b" in o.detail for o in pan)
