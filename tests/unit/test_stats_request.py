"""A request naming a CRM matrix counts what the matrix says, or is refused."""

from __future__ import annotations

import pytest

from enlace.v1 import stats_pb2
from node.errors import InvalidArgumentError
from node.stats.service import query_from_request


def _request(matrix: str, **filters: list[str]) -> stats_pb2.AggregateRequest:
    return stats_pb2.AggregateRequest(
        matrix=matrix,
        period="2023Q3",
        filters=[stats_pb2.Filter(dimension=d, values=v) for d, v in filters.items()],
    )


@pytest.mark.parametrize(
    ("matrix", "dimension"), [("M05", "event_type"), ("M01", "event_type"), ("M06", "event_type")]
)
def test_a_filter_on_a_matrix_filter_is_refused(matrix: str, dimension: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        query_from_request(_request(matrix, **{dimension: ["detention"]}))
    assert refused.value.field == "filters"
    assert matrix in str(refused.value) and dimension in str(refused.value)


def test_other_filters_are_added_to_the_matrix_filters() -> None:
    query = query_from_request(_request("M05", sex=["F"]))
    assert query.matrix == "M05"
    assert query.filters == {"event_type": frozenset({"stranded"}), "sex": frozenset({"F"})}
    assert query_from_request(_request("M07", event_type=["detention"])).filters == {
        "event_type": frozenset({"detention"})
    }
