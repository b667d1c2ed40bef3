"""The helper's differencing guard: no combination of released sums isolates a small group."""

from __future__ import annotations

from node.secretariat.differencing import isolation, released, small_group
from node.stats.query import parse_period

FOUR = ("PAN", "CRI", "HND", "MEX")
THREE = ("PAN", "CRI", "HND")


def test_one_date_range_has_one_canonical_text_whatever_its_spelling() -> None:
    spellings = ("2024Q2", "2024q2", "2024-04..2024-06", "2024Q2..2024-06", "2024-04..2024Q2")
    assert {parse_period(s).canonical for s in spellings} == {"2024-04..2024-06"}
    assert parse_period("2024").canonical == "2024-01..2024-12"
    assert parse_period("2024-12").canonical == "2024-12..2024-12"
    again = parse_period(parse_period("2023Q3..2024Q1").canonical)
    assert (again.start.isoformat(), again.end.isoformat()) == ("2023-07-01", "2024-04-01")


def test_an_alias_of_the_same_quarter_without_one_member_is_refused() -> None:
    earlier = [released("A", FOUR, "2024Q2")]
    found = isolation(released("B", THREE, "2024-04..2024-06"), earlier, 3)
    assert found is not None and found.group == ("MEX",) and found.earlier == ("A",)


def test_an_overlapping_range_without_one_member_is_refused() -> None:
    earlier = [released("A", FOUR, "2024Q2")]
    found = isolation(released("B", THREE, "2024-06..2024-09"), earlier, 3)
    assert found is not None and found.group == ("MEX",) and found.month == "2024-06"
    two_ranges = [released("A", FOUR, "2024-01..2024-06")]
    assert isolation(released("B", THREE, "2024-05..2024-12"), two_ranges, 3) is not None


def test_a_year_against_its_quarters_is_refused_either_way() -> None:
    year = [released("Y", FOUR, "2024")]
    assert isolation(released("Q", THREE, "2024Q3"), year, 3) is not None
    quarters = [released(f"Q{q}", THREE, f"2024Q{q}") for q in (1, 2, 3, 4)]
    found = isolation(released("Y", FOUR, "2024"), quarters, 3)
    assert found is not None and found.group == ("MEX",)


def test_a_set_shrinking_by_one_or_two_is_refused_by_three_accepted() -> None:
    six = ("PAN", "CRI", "HND", "MEX", "GTM", "SLV")
    earlier = [released("A", six, "2024Q2")]
    assert isolation(released("B", six[:5], "2024Q2"), earlier, 3) is not None
    found = isolation(released("B", six[:4], "2024Q2"), earlier, 3)
    assert found is not None and found.group == ("GTM", "SLV")
    assert isolation(released("B", six[:3], "2024Q2"), earlier, 3) is None


def test_several_sums_that_differ_pairwise_by_many_still_cannot_isolate_one() -> None:
    # {1,2,3,4} + {1,5,6,7} - {2,3,4,5,6,7} = 2 * v1, though every pair differs by 4 or more
    earlier = [
        released("A", ("PAN", "CRI", "HND", "MEX"), "2024Q2"),
        released("B", ("PAN", "GTM", "SLV", "NIC"), "2024Q2"),
    ]
    tracker = released("C", ("CRI", "HND", "MEX", "GTM", "SLV", "NIC"), "2024Q2")
    found = isolation(tracker, earlier, 3)
    assert found is not None and found.group == ("PAN",)


def test_what_cannot_isolate_anyone_is_released() -> None:
    earlier = [released("A", FOUR, "2024Q2")]
    assert isolation(released("B", FOUR, "2024-04..2024-06"), earlier, 3) is None  # same set
    assert isolation(released("B", FOUR, "2024"), earlier, 3) is None
    assert isolation(released("B", THREE, "2024Q3"), earlier, 3) is None  # no common month
    assert isolation(released("B", THREE, "2024-07..2024-12"), earlier, 3) is None


def test_a_group_is_found_only_below_the_minimum() -> None:
    assert small_group([frozenset(FOUR)], 3) is None
    assert small_group([frozenset(FOUR), frozenset(FOUR[:3])], 3) == ("MEX",)
    assert small_group([frozenset(FOUR[:2])], 3) == ("CRI", "PAN")
    assert small_group([], 3) is None
