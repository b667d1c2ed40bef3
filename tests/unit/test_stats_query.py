"""Filter values are checked against what the records can hold, so a typo is an error, not 0."""

from __future__ import annotations

import pytest

from node.errors import InvalidArgumentError
from node.stats.matrices import MATRICES
from node.stats.query import build_query


def query(filters: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    return build_query(
        dataset="encounters",
        measure="persons",
        dimensions=["nationality"],
        period="2024Q3",
        filters=filters,
        margins=False,
    )


@pytest.mark.parametrize(
    "filters",
    [
        {"sex": ["F", "M"]},
        {"nationality": ["VEN", "HTI"]},
        {"event_type": ["detention"]},
        {"care_provided": ["food"]},
        {"vulnerability": ["elderly"]},
        {"year": ["2024"]},
        {"quarter": ["2024-Q3", "2024Q3", "2024q3"]},
        {"month": ["2024-07", "202408"]},
        {"border_post": ["PAN-LAJ"]},  # the members' own post codes: not a packaged list
    ],
)
def test_values_the_records_can_hold_are_accepted(filters: dict[str, list[str]]) -> None:
    built = query(filters)
    assert {k: set(v) for k, v in built.filters.items()} == {k: set(v) for k, v in filters.items()}


@pytest.mark.parametrize(
    ("filters", "said", "hint"),
    [
        ({"sex": ["Female"]}, "'Female' is not a code of sex", "did you mean F?"),
        ({"nationality": ["VEN", "hti"]}, "'hti' is not a code of nationality", "HTI"),
        ({"event_type": ["detained"]}, "is not a code of event_type", "docs/code-lists.md"),
        ({"care_provided": ["foood"]}, "is not a code of care", "food"),
        ({"year": ["24"]}, "year='24' is not a year", "2023"),
        ({"quarter": ["2024Q5"]}, "is not a quarter", "2023-Q3"),
        ({"month": ["2024-13"]}, "is not a month", "2023-07"),
    ],
)
def test_a_value_no_record_can_hold_is_refused_with_the_close_codes(
    filters: dict[str, list[str]], said: str, hint: str
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        query(filters)
    assert caught.value.field == "filters"
    assert said in caught.value.message
    assert hint in caught.value.hint


def test_every_named_matrix_filters_on_values_that_pass() -> None:
    for matrix in MATRICES.values():
        filters = {name: list(values) for name, values in matrix.filters.items()}
        assert query(filters).filters.keys() == filters.keys(), matrix.id
