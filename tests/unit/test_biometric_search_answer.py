"""A holder's signed biometric search answer is checked before the querier uses it.

Why: an unknown band was shown as "no hit", a hit reference with control characters reached
the terminal and the results CSV as sent, and an epoch beyond 2**63 made the follow-up's
database write fail on PostgreSQL. A malformed answer must be that holder's failure, named.
"""

from __future__ import annotations

import pytest

from enlace.v1 import biometric_pb2
from node.biometrics.search_answer import check_search
from node.errors import PeerError

Band = biometric_pb2.ProbeResult
REF = "0123456789abcdef0123456789abcdef01234567"


def _answer(
    results: list[tuple[int, str]] | None = None, epoch: int = 3
) -> biometric_pb2.BiometricSearchResponse:
    answer = biometric_pb2.BiometricSearchResponse(epoch=epoch)
    for band, reference in (
        results if results is not None else [(Band.STRONG, REF), (Band.NO_HIT, "")]
    ):
        answer.results.add(band=band, hit_reference=reference)
    return answer


def test_a_well_formed_answer_is_accepted() -> None:
    check_search("PAN", _answer(), epoch=3, probes=2)
    check_search("PAN", _answer([(Band.PROBABLE, REF)]), epoch=3, probes=1)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (_answer(epoch=2**64 - 1), "for epoch 18446744073709551615, not the epoch 3 probed"),
        (_answer([(Band.STRONG, REF)]), "1 results for 2 probes"),
        (_answer([(Band.STRONG, "\x1b[2J" + REF), (Band.NO_HIT, "")]), "is not 40 hex digits"),
        (_answer([(Band.PROBABLE, ""), (Band.NO_HIT, "")]), "is not 40 hex digits"),
        (_answer([(Band.STRONG, REF.upper()), (Band.NO_HIT, "")]), "is not 40 hex digits"),
        (_answer([(7, ""), (Band.NO_HIT, "")]), "result 0 has the unknown band 7"),
        (_answer([(Band.BAND_UNSPECIFIED, ""), (Band.NO_HIT, "")]), "the unknown band 0"),
        (_answer([(Band.STRONG, REF), (Band.NO_HIT, REF)]), "no hit but carries a reference"),
    ],
)
def test_a_malformed_answer_is_the_holders_failure(
    answer: biometric_pb2.BiometricSearchResponse, problem: str
) -> None:
    with pytest.raises(PeerError) as raised:
        check_search("PAN", answer, epoch=3, probes=2)
    error = raised.value
    assert problem in error.message, error.message
    assert error.peer == "PAN" and error.status_name == "INVALID_ARGUMENT"
    assert "PAN's biometric search answer cannot be used" in error.message
    assert "\x1b" not in error.message
