"""The table model, the threshold rule and the SDMX flags of a protected answer."""

from __future__ import annotations

from decimal import Decimal

import pytest

from policies.agreement import Disclosure
from policies.disclosure import (
    CONF_FREE,
    CONF_PRIMARY,
    OBS_NORMAL,
    OBS_SUPPRESSED,
    TOTAL,
    Dimension,
    DisclosureError,
    ReleasedCell,
    Table,
    TableTooLarge,
    ThresholdRule,
    attack,
    primary_suppression,
    protect,
    verify_threshold,
)
from policies.errors import PolicyError

NAT = Dimension("nationality", ("HTI", "CUB", "IND"))
SEX = Dimension("sex", ("F", "M"))
COUNTS = {
    ("HTI", "F"): 3,
    ("HTI", "M"): 41,
    ("CUB", "F"): 0,
    ("CUB", "M"): 12,
    ("IND", "F"): 7,
    ("IND", "M"): 4,
}


def test_from_counts_computes_every_margin_and_the_grand_total() -> None:
    table = Table.from_counts([NAT, SEX], COUNTS)
    assert table[("HTI", TOTAL)] == 44
    assert table[(TOTAL, "M")] == 57
    assert table[(TOTAL, TOTAL)] == 67
    assert len(table.interior_coords()) == 6
    assert len(table.margin_coords()) == 3 + 2 + 1
    assert table.covered((TOTAL, "F")) == (("HTI", "F"), ("CUB", "F"), ("IND", "F"))


def test_missing_interior_cells_count_zero_and_margins_can_be_left_out() -> None:
    table = Table.from_counts([NAT, SEX], {("HTI", "F"): 2}, margins=False)
    assert table[("IND", "M")] == 0
    assert table.margin_coords() == ()
    assert table.lines() == ()


def test_lines_are_the_rows_columns_and_margin_lines_of_a_2d_table() -> None:
    table = Table.from_counts([NAT, SEX], COUNTS)
    lines = table.lines()
    # along nationality: one per sex code and one for the sex total; along sex: 3 + 1
    assert len(lines) == 3 + 4
    row = next(line for line in lines if line.total == ("HTI", TOTAL))
    assert row.members == (("HTI", "F"), ("HTI", "M"))
    assert row.dimension == 1


def test_only_row_totals_give_only_row_lines() -> None:
    table = Table.from_counts([NAT, SEX], COUNTS, margins=[(c, TOTAL) for c in NAT.codes])
    assert {line.total for line in table.lines()} == {(c, TOTAL) for c in NAT.codes}


def test_margins_that_do_not_add_up_are_refused() -> None:
    cells = dict(Table.from_counts([NAT, SEX], COUNTS).cells)
    cells[("HTI", TOTAL)] += 1
    with pytest.raises(DisclosureError, match="add up"):
        Table([NAT, SEX], cells)


@pytest.mark.parametrize("value", [-1, True, 2.0, "3"])
def test_values_must_be_non_negative_integer_counts(value: object) -> None:
    cells: dict[tuple[str, ...], object] = dict(COUNTS)
    cells[("HTI", "F")] = value
    with pytest.raises(DisclosureError):
        Table([NAT, SEX], cells)  # type: ignore[arg-type]


def test_missing_interior_cells_and_unknown_codes_are_refused() -> None:
    partial = dict(COUNTS)
    del partial[("IND", "M")]
    with pytest.raises(DisclosureError, match="missing"):
        Table([NAT, SEX], partial)
    with pytest.raises(DisclosureError, match="outside"):
        Table([NAT, SEX], {**COUNTS, ("NPL", "F"): 1})


def test_the_total_code_is_reserved_and_dimensions_are_bounded() -> None:
    with pytest.raises(DisclosureError, match="reserved"):
        Dimension("sex", ("F", TOTAL))
    dims = [Dimension(f"d{i}", ("a", "b")) for i in range(4)]
    with pytest.raises(TableTooLarge) as caught:
        Table.from_counts(dims, {})
    assert caught.value.status_name == "INVALID_ARGUMENT"
    assert isinstance(caught.value, PolicyError)
    wide = Dimension("code", tuple(f"c{i}" for i in range(80)))
    with pytest.raises(TableTooLarge, match="cells"):
        Table.from_counts([wide, Dimension("other", wide.codes)], {})


def test_threshold_rule_suppresses_one_to_min_cell_minus_one_but_not_zero() -> None:
    rule = ThresholdRule()
    assert [v for v in range(8) if rule.is_sensitive(v)] == [1, 2, 3, 4]
    assert rule.primary_range() == (1, 4)
    strict = ThresholdRule(min_cell=3, zero_sensitive=True)
    assert [v for v in range(8) if strict.is_sensitive(v)] == [0, 1, 2]
    assert strict.primary_range() == (0, 2)
    off = ThresholdRule(min_cell=1)
    assert not off.active
    assert not any(off.is_sensitive(v) for v in range(10))


def test_threshold_rule_follows_the_profile_and_rejects_nonsense() -> None:
    assert ThresholdRule.from_profile(Disclosure(profile="p", min_cell=10)).min_cell == 10
    with pytest.raises(DisclosureError):
        ThresholdRule(min_cell=0)
    with pytest.raises(DisclosureError):
        ThresholdRule().is_sensitive(-1)


def test_primary_suppression_covers_margins_too() -> None:
    table = Table.from_counts([NAT, SEX], COUNTS)
    primary = primary_suppression(table.cells, ThresholdRule())
    assert primary == {("HTI", "F"), ("IND", "M")}
    small = Table.from_counts([SEX], {("F",): 1, ("M",): 2})
    assert primary_suppression(small.cells, ThresholdRule()) == {("F",), ("M",), (TOTAL,)}


def test_protect_flags_suppressed_cells_as_empty_q_a_and_never_zero() -> None:
    table = Table.from_counts([NAT, SEX], COUNTS, margins=False)
    answer = protect(table, Disclosure(profile="standard"))
    hidden = answer.cells[("HTI", "F")]
    assert hidden == ReleasedCell(None, OBS_SUPPRESSED, CONF_PRIMARY, False)
    assert answer.cells[("IND", "M")].value is None
    zero = answer.cells[("CUB", "F")]
    assert zero == ReleasedCell(0, OBS_NORMAL, CONF_FREE, False)
    assert answer.cells[("HTI", "M")] == ReleasedCell(41, OBS_NORMAL, CONF_FREE, False)
    assert answer.coverage.suppressed_primary == 2
    assert answer.coverage.suppressed_secondary == 0
    assert answer.coverage.cells_total == 6
    assert answer.coverage.epsilon_spent == Decimal(0)
    assert answer.coverage.method == "threshold"


def test_protect_applies_a_larger_min_cell_from_the_profile() -> None:
    table = Table.from_counts([NAT, SEX], COUNTS, margins=False)
    answer = protect(table, Disclosure(profile="strict", min_cell=10))
    assert {c for c, cell in answer.cells.items() if cell.conf_status == "A"} == {
        ("HTI", "F"),
        ("IND", "F"),
        ("IND", "M"),
    }


def test_zero_can_be_made_sensitive() -> None:
    table = Table.from_counts([NAT, SEX], COUNTS, margins=False)
    answer = protect(table, Disclosure(profile="p"), zero_sensitive=True)
    assert answer.cells[("CUB", "F")].conf_status == CONF_PRIMARY
    assert answer.cells[("CUB", "F")].value is None


def test_without_secondary_suppression_the_margins_give_a_primary_cell_away() -> None:
    # Why the profile defaults to secondary suppression: the attacker solves the margins.
    table = Table.from_counts([NAT, SEX], COUNTS)
    answer = protect(table, Disclosure(profile="p", secondary=False))
    intervals = attack((NAT, SEX), answer.values(), answer.conf_status(), ThresholdRule())
    assert intervals[("HTI", "F")].low == intervals[("HTI", "F")].high == 3


def test_released_cells_with_inconsistent_flags_cannot_be_built() -> None:
    with pytest.raises(DisclosureError):
        ReleasedCell(0, OBS_SUPPRESSED, CONF_PRIMARY, False)
    with pytest.raises(DisclosureError):
        ReleasedCell(None, OBS_NORMAL, CONF_FREE, False)


def test_verify_threshold_refuses_a_published_small_count_or_a_hidden_value() -> None:
    rule = ThresholdRule()
    verify_threshold({("a",): 0, ("b",): 5, ("c",): None}, {("c",): "A"}, rule, exact=True)
    with pytest.raises(DisclosureError, match="sensitive count 3"):
        verify_threshold({("a",): 3}, {}, rule, exact=True)
    verify_threshold({("a",): 3}, {}, rule, exact=False)
    with pytest.raises(DisclosureError, match="carries a value"):
        verify_threshold({("a",): 7}, {("a",): "D"}, rule, exact=True)
    with pytest.raises(DisclosureError, match="without a valid count"):
        verify_threshold({("a",): None}, {}, rule, exact=True)
