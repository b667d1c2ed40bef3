"""Regional totals: N_CONTRIB, the publication rule and secondary withholding (pure)."""

from __future__ import annotations

import pytest

from node.errors import InvalidArgumentError
from node.secretariat.regional import (
    TRANSITS_NOTE,
    MemberCell,
    MemberTable,
    PublicationRule,
    from_sums,
    margin_totals,
    regional_totals,
)

DIMS = ("nationality",)


def table(country: str, total: int | None = None, **cells: int | None) -> MemberTable:
    """A member's released table; ``total`` adds its released margin ``_T``."""
    keyed = {(k,): MemberCell(v) for k, v in cells.items()}
    if total is not None:
        keyed[("_T",)] = MemberCell(total)
    return MemberTable(country, DIMS, keyed)


def test_sums_and_counts_contributing_countries() -> None:
    result = regional_totals(
        [table("PAN", HTI=40, IND=7), table("CRI", HTI=12, IND=0), table("HND", HTI=9, IND=6)],
        dimensions=DIMS,
    )
    hti, ind = result.cell(("HTI",)), result.cell(("IND",))
    assert hti is not None and ind is not None
    assert (hti.value, hti.n_contrib, hti.obs_status, hti.conf_status) == (61, 3, "A", "F")
    # a released zero is not a contribution: IND has records in two countries only
    assert ind.n_contrib == 2 and ind.value is None and ind.flag == "few_countries"
    assert result.status == "complete" and result.contributors == ("CRI", "HND", "PAN")


def test_few_persons_are_withheld_even_with_enough_countries() -> None:
    result = regional_totals(
        [table("PAN", SEN=1, HTI=30), table("CRI", SEN=1, HTI=30), table("HND", SEN=2, HTI=30)],
        dimensions=DIMS,
        rule=PublicationRule(min_countries=3, min_persons=5),
    )
    sen = result.cell(("SEN",))
    assert sen is not None
    assert (sen.value, sen.flag, sen.obs_status, sen.conf_status) == (None, "few_persons", "Q", "A")
    # published with the rule relaxed: the thresholds are the rule's, not constants
    relaxed = regional_totals(
        [table("PAN", SEN=1), table("CRI", SEN=1), table("HND", SEN=2)],
        dimensions=DIMS,
        rule=PublicationRule(min_countries=3, min_persons=4),
    )
    assert relaxed.cell(("SEN",)).value == 4  # type: ignore[union-attr]


def test_member_suppressed_cells_count_as_contributors_and_mark_a_lower_bound() -> None:
    result = regional_totals(
        [table("PAN", HTI=50), table("CRI", HTI=None), table("HND", HTI=20)], dimensions=DIMS
    )
    hti = result.cell(("HTI",))
    assert hti is not None
    assert (hti.value, hti.n_contrib, hti.n_suppressed, hti.obs_status) == (70, 3, 1, "E")
    # E alone reads "estimated": the outputs' notes say these figures are lower bounds.
    from node.secretariat.outputs import _notes

    (bound,) = [n for n in _notes(result) if n.startswith("LÍMITE INFERIOR / LOWER BOUND")]
    assert "1 cifra(s)" in bound and "withheld its part" in bound
    whole = regional_totals(
        [table("PAN", HTI=50), table("CRI", HTI=9), table("HND", HTI=20)], dimensions=DIMS
    )
    assert not any("LOWER BOUND" in n for n in _notes(whole))


def test_a_true_zero_is_published_and_a_withheld_cell_is_never_zero() -> None:
    result = regional_totals(
        [table("PAN", XXX=0), table("CRI", XXX=0), table("HND", XXX=0)], dimensions=DIMS
    )
    assert result.cell(("XXX",)).value == 0  # type: ignore[union-attr]
    hidden = regional_totals([table("PAN", XXX=3)], dimensions=DIMS).cell(("XXX",))
    assert hidden is not None and hidden.value is None


def test_no_line_hides_exactly_one_cell() -> None:
    """With the total published, a lone withheld cell would be recovered by subtraction."""
    members = [
        table("PAN", 63, HTI=40, IND=20, SEN=3),
        table("CRI", 40, HTI=30, IND=10),
        table("HND", 37, HTI=25, IND=12),
    ]
    result = regional_totals(members, dimensions=DIMS)
    hidden = {c.key for c in result.cells if c.value is None}
    assert ("SEN",) in hidden
    assert result.cell(("_T",)).value == 140  # type: ignore[union-attr]
    assert len(hidden) >= 2  # SEN has a partner, so the total minus the rest is not SEN
    partner = next(c for c in result.cells if c.conf_status == "D")
    assert partner.flag == "secondary" and partner.key != ("_T",)  # interior before total
    # the partner is the smallest positive published cell of the line: IND (42 < 95)
    assert partner.key == ("IND",)


def test_partial_table_names_missing_members() -> None:
    result = regional_totals(
        [table("PAN", HTI=40), table("CRI", HTI=30)], dimensions=DIMS, missing=["PAN", "CRI", "HND"]
    )
    assert result.status == "partial" and result.missing == ("HND",)


def test_refuses_mismatched_or_repeated_tables() -> None:
    with pytest.raises(InvalidArgumentError):
        regional_totals([table("PAN", HTI=4), table("PAN", HTI=4)], dimensions=DIMS)
    with pytest.raises(InvalidArgumentError):
        regional_totals([MemberTable("PAN", ("sex",), {("F",): MemberCell(4)})], dimensions=DIMS)


def test_from_sums_applies_the_same_rule() -> None:
    result = from_sums(
        DIMS,
        {("HTI",): (61, 3), ("SEN",): (40, 2), ("IND",): (3, 3), ("CHN",): (0, 0)},
        contributors=["PAN", "CRI", "HND"],
        missing=["PAN", "CRI", "HND", "MEX"],
    )
    values = {c.key[0]: (c.value, c.flag) for c in result.cells}
    assert values == {
        "HTI": (61, ""),
        "SEN": (None, "few_countries"),
        "IND": (None, "few_persons"),
    }
    assert result.missing == ("MEX",)


def test_margin_totals_and_the_transits_note() -> None:
    cells = {
        ("HTI", "F"): MemberCell(10),
        ("HTI", "_T"): MemberCell(25),
        ("_T", "_T"): MemberCell(25),
    }
    members = [MemberTable(c, ("nationality", "sex"), cells) for c in ("PAN", "CRI", "HND")]
    result = regional_totals(members, dimensions=("nationality", "sex"))
    assert margin_totals(result, "nationality") == {"HTI": 75}
    assert "transits" in TRANSITS_NOTE["en"] and "tránsitos" in TRANSITS_NOTE["es"]


def test_a_zero_summed_from_perturbed_answers_is_flagged_estimated() -> None:
    """A member that perturbs (cell-key) flags its zeros E: a noisy count. The regional zero
    keeps that flag; a zero from unperturbed answers is a plain A."""
    noisy = MemberTable("MEX", DIMS, {("SEN",): MemberCell(0, perturbed=True)})
    plain = MemberTable("PAN", DIMS, {("SEN",): MemberCell(0)})
    cell = regional_totals([noisy, plain], dimensions=DIMS).cell(("SEN",))
    assert cell is not None
    assert (cell.value, cell.obs_status, cell.conf_status, cell.perturbed) == (0, "E", "F", True)
    cell = regional_totals([plain], dimensions=DIMS).cell(("SEN",))
    assert cell is not None and (cell.value, cell.obs_status, cell.perturbed) == (0, "A", False)
