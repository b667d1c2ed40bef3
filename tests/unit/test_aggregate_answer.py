"""A holder's signed Aggregate answer is checked before the querier stores or uses it.

Why: the Secretariat stores each member's table and sums the members' cells; a table of other
dimensions, with keys that do not fit them or a negative count made the regional aggregation
refuse the table for every member, and its text reached files and terminals as sent. A
malformed answer must be that member's failure, named.
"""

from __future__ import annotations

import pytest

from enlace.v1 import stats_pb2
from node.errors import PeerError
from node.stats.answer_check import check_aggregate

DIMS = ("nationality", "sex")


def _answer(
    cells: list[tuple[list[str], int | None, str, str]] | None = None,
    dimensions: tuple[str, ...] = DIMS,
    **coverage: object,
) -> stats_pb2.AggregateResponse:
    answer = stats_pb2.AggregateResponse(holder="PAN", dimensions=list(dimensions))
    for key, value, obs, conf in cells or [
        (["COL", "F"], 12, "A", "F"),
        (["_T", "_T"], None, "Q", "A"),
    ]:
        answer.cells.add(
            key=key, value=value or 0, has_value=value is not None, obs_status=obs, conf_status=conf
        )
    fields = {"as_of": "2026-09-30T00:00:00Z", "disclosure_profile": "standard (threshold)"}
    for name, value in (fields | coverage).items():
        setattr(answer.coverage, name, value)
    return answer


def test_a_well_formed_table_is_accepted() -> None:
    check_aggregate("PAN", _answer(), DIMS)
    check_aggregate("PAN", _answer([(["_T", "_T"], 0, "A", "F")]), DIMS)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (_answer(dimensions=("sex",)), "it answered dimensions ['sex']"),
        (_answer([(["COL"], 3, "A", "F")]), "cell 0 has 1 key values for 2 dimensions"),
        (_answer([(["COL", "F"], -7, "A", "F")]), "cell 0 releases a negative count (-7)"),
        (_answer([(["COL", "F"], 1, "A", "F")] * 2), "cell 1 repeats the key"),
        (_answer([(["COL", "F"], 1, "Z", "F")]), "cell 0 has statuses 'Z'/'F'"),
        (_answer([(["COL", "x" * 65], 1, "A", "F")]), "cell 0's key is longer than 64"),
        (_answer([(["C\x00L", "F"], 1, "A", "F")]), "holds a control character"),
        (_answer([(["\x1b[2J", "F"], 1, "A", "F")]), "holds a control character"),
        (_answer(suppressed_primary=-1), "coverage suppressed_primary is negative"),
        (_answer(disclosure_profile="p" * 201), "coverage disclosure_profile is longer than 200"),
        (_answer(matrix_version="v1\x1b]8;;http://x\x07"), "coverage matrix_version"),
        (_answer(as_of="last Tuesday"), "coverage as_of 'last Tuesday' is not an ISO 8601 time"),
    ],
)
def test_a_malformed_table_is_the_holders_failure(
    answer: stats_pb2.AggregateResponse, problem: str
) -> None:
    with pytest.raises(PeerError) as raised:
        check_aggregate("PAN", answer, DIMS)
    error = raised.value
    assert problem in str(error), str(error)
    assert error.peer == "PAN" and error.status_name == "INVALID_ARGUMENT"
    assert "PAN's table cannot be used" in error.message
    assert not any(c in error.message for c in "\x00\x1b\x07")  # quoted, never raw
