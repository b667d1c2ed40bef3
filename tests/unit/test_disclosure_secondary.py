"""Secondary suppression, proved by an attacker that solves the published constraints.

The attacker here is written independently of :mod:`policies.disclosure.secondary`: it writes
one equation per line (row, column, fibre and its total) instead of one per margin, and always
solves the integer program. It knows what any reader of an answer knows: the published values,
the flags and the public rules (``A`` cells are in ``1 … min_cell-1``, ``D`` cells and positive
published cells are at least ``min_cell``, cell-key noise is at most ``max_noise``).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from policies.agreement import Disclosure, Perturbation
from policies.disclosure import (
    TOTAL,
    Dimension,
    ProtectionError,
    Table,
    ThresholdRule,
    primary_suppression,
    protect,
    secondary_suppression,
    verify_protection,
)

Coord = tuple[str, ...]
MIN_CELL = 5
VALUES = [0, 0, 1, 2, 3, 4, 5, 6, 7, 9, 12, 20, 45]


def line_equations(dims: Sequence[Dimension], coords: Sequence[Coord]) -> list[list[Coord]]:
    """Each equation as [total, member, member, …] for every complete line of the answer."""
    present = set(coords)
    equations = []
    for coord in coords:
        for d, code in enumerate(coord):
            if code != TOTAL:
                continue
            members = [(*coord[:d], c, *coord[d + 1 :]) for c in dims[d].codes]
            if all(m in present for m in members):
                equations.append([coord, *members])
    return equations


def knowledge(value: int | None, flag: str, max_noise: int) -> tuple[int, int | None]:
    if flag == "A":
        return 1, MIN_CELL - 1
    if flag == "D":
        return MIN_CELL, None
    assert value is not None
    if max_noise and value > 0:
        return max(MIN_CELL, value - max_noise), value + max_noise
    return value, value


def solve(
    dims: Sequence[Dimension],
    released: Mapping[Coord, int | None],
    flags: Mapping[Coord, str],
    target: Coord,
    max_noise: int = 0,
) -> tuple[int, float]:
    """The attacker's (min, max) of ``target`` over all integer solutions (max may be inf)."""
    coords = list(released)
    index = {c: i for i, c in enumerate(coords)}
    rows = []
    for equation in line_equations(dims, coords):
        row = np.zeros(len(coords))
        row[index[equation[0]]] = 1
        for member in equation[1:]:
            row[index[member]] -= 1
        rows.append(row)
    bounds = [knowledge(released[c], flags.get(c, "F"), max_noise) for c in coords]
    a_eq = np.array(rows) if rows else None
    b_eq = np.zeros(len(rows)) if rows else None
    ends = []
    for sign in (1.0, -1.0):
        cost = np.zeros(len(coords))
        cost[index[target]] = sign
        relaxed = linprog(cost, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        if relaxed.status == 3:
            ends.append(math.inf)
            continue
        exact = linprog(
            cost,
            A_eq=a_eq,
            b_eq=b_eq,
            bounds=bounds,
            method="highs",
            integrality=np.ones(len(coords)),
        )
        assert exact.status == 0, exact.message
        ends.append(round(sign * exact.fun))
    return int(ends[0]), ends[1]


def width(dims: Sequence[Dimension], released, flags, target, max_noise: int = 0) -> float:
    low, high = solve(dims, released, flags, target, max_noise)
    return high - low


def assert_protected(
    table: Table,
    primary: frozenset[Coord],
    secondary: frozenset[Coord],
    *,
    protection: int = 2,
    released: Mapping[Coord, int] | None = None,
    max_noise: int = 0,
) -> None:
    """Every hidden cell keeps min(target, what hiding every positive cell would give)."""
    shown = dict(table.cells) if released is None else dict(released)
    flags = {c: "A" for c in primary} | {c: "D" for c in secondary}
    visible = {c: (None if c in flags else v) for c, v in shown.items()}
    everything = {c: ("A" if c in primary else "D") for c in table.coords() if table[c] > 0}
    hidden_all = {c: (None if c in everything else v) for c, v in shown.items()}
    dims = table.dimensions
    for cell in sorted(flags):
        low, high = solve(dims, visible, flags, cell, max_noise)
        assert low <= table[cell] <= high, "the attacker's interval must contain the truth"
        target = min(protection, MIN_CELL - 2) if cell in primary else 1
        if high - low < target:
            ceiling = width(dims, hidden_all, everything, cell, max_noise)
            assert high - low >= ceiling, f"{cell} narrowed to [{low}, {high}] (target {target})"


def pattern(table: Table, **kwargs) -> tuple[frozenset[Coord], frozenset[Coord]]:
    rule = ThresholdRule(MIN_CELL)
    primary = primary_suppression(table.cells, rule)
    return primary, secondary_suppression(table, primary, rule, **kwargs)


def dims_of(*sizes: int) -> list[Dimension]:
    return [
        Dimension(f"d{i}", tuple(f"{chr(97 + i)}{j}" for j in range(n)))
        for i, n in enumerate(sizes)
    ]


# --- fixed examples --------------------------------------------------------------------------


def test_the_attacker_recovers_a_cell_hidden_by_primary_suppression_alone() -> None:
    table = Table.from_counts(dims_of(2, 3), {("a0", "b0"): 3, ("a0", "b1"): 9, ("a1", "b2"): 8})
    flags = {("a0", "b0"): "A"}
    released = {c: (None if c in flags else v) for c, v in table.cells.items()}
    assert solve(table.dimensions, released, flags, ("a0", "b0")) == (3, 3)


def test_one_dimension_hides_a_partner_with_enough_room() -> None:
    (dim,) = dims_of(4)
    table = Table.from_counts([dim], {("a0",): 2, ("a1",): 5, ("a2",): 9, ("a3",): 30})
    primary, secondary = pattern(table)
    assert primary == {("a0",)}
    # 5 is known to be >= 5 once hidden, so it could not move; 9 can.
    assert secondary == {("a2",)}
    assert_protected(table, primary, secondary)


def test_two_dimensional_table_with_margins() -> None:
    counts = {
        ("a0", "b0"): 2,
        ("a0", "b1"): 10,
        ("a0", "b2"): 12,
        ("a1", "b0"): 7,
        ("a1", "b1"): 30,
        ("a1", "b2"): 9,
        ("a2", "b0"): 15,
        ("a2", "b1"): 6,
        ("a2", "b2"): 40,
    }
    table = Table.from_counts(dims_of(3, 3), counts)
    primary, secondary = pattern(table)
    assert primary == {("a0", "b0")}
    assert len(secondary) >= 3  # a row partner, a column partner and the opposite corner
    assert not any(TOTAL in c for c in secondary)
    assert_protected(table, primary, secondary)


def test_three_dimensional_table_with_margins() -> None:
    rnd = random.Random(7)
    dims = dims_of(3, 2, 2)
    counts = {
        c: rnd.choice([6, 8, 11, 15, 30]) for c in itertools.product(*(d.codes for d in dims))
    }
    counts[("a0", "b0", "c0")] = 1
    counts[("a2", "b1", "c1")] = 3
    table = Table.from_counts(dims, counts)
    primary, secondary = pattern(table)
    assert primary == {("a0", "b0", "c0"), ("a2", "b1", "c1")}
    assert secondary
    assert_protected(table, primary, secondary)


def test_only_row_totals_released() -> None:
    dims = dims_of(3, 3)
    counts = {c: 11 for c in itertools.product(*(d.codes for d in dims))}
    counts[("a1", "b1")] = 2
    table = Table.from_counts(dims, counts, margins=[(a, TOTAL) for a in dims[0].codes])
    primary, secondary = pattern(table)
    assert primary == {("a1", "b1")}
    assert secondary and all(c[0] == "a1" for c in secondary)  # only its row constrains it
    assert_protected(table, primary, secondary)


def test_without_margins_nothing_more_is_hidden() -> None:
    table = Table.from_counts(dims_of(2, 2), {("a0", "b0"): 2, ("a1", "b1"): 9}, margins=False)
    assert pattern(table) == (frozenset({("a0", "b0")}), frozenset())


def test_a_stronger_protection_level_hides_more_and_still_holds() -> None:
    table = Table.from_counts(
        dims_of(3, 3),
        {("a0", "b0"): 2, ("a0", "b1"): 8, ("a1", "b0"): 9, ("a1", "b1"): 20, ("a2", "b2"): 7},
    )
    primary, weak = pattern(table, protection=1)
    _, strong = pattern(table, protection=3)
    assert len(strong) >= len(weak)
    assert_protected(table, primary, strong, protection=3)


def test_partners_are_never_zero_or_small_and_the_output_is_deterministic() -> None:
    dims = dims_of(4, 3)
    codes = list(itertools.product(*(d.codes for d in dims)))
    rnd = random.Random(3)
    counts = {c: rnd.choice(VALUES) for c in codes}
    table = Table.from_counts(dims, counts)
    primary, secondary = pattern(table)
    assert all(table[c] >= MIN_CELL for c in secondary)
    shuffled = list(counts.items())
    rnd.shuffle(shuffled)
    again = Table.from_counts(list(dims), dict(shuffled))
    assert pattern(again) == (primary, secondary)


def test_verify_protection_refuses_an_insufficient_pattern() -> None:
    table = Table.from_counts(dims_of(2, 2), {("a0", "b0"): 2, ("a0", "b1"): 9, ("a1", "b0"): 8})
    rule = ThresholdRule(MIN_CELL)
    with pytest.raises(ProtectionError) as caught:
        verify_protection(table, {("a0", "b0")}, (), rule)
    assert ("a0", "b0") in caught.value.cells
    assert caught.value.status_name == "INTERNAL"


def test_protect_releases_hidden_cells_as_empty_with_a_and_d_flags() -> None:
    table = Table.from_counts(
        dims_of(2, 3), {("a0", "b0"): 3, ("a0", "b1"): 9, ("a0", "b2"): 14, ("a1", "b1"): 8}
    )
    answer = protect(table, Disclosure(profile="standard"))
    flags = answer.conf_status()
    assert flags[("a0", "b0")] == "A"
    secondary = {c for c, f in flags.items() if f == "D"}
    assert secondary and answer.coverage.suppressed_secondary == len(secondary)
    for coord in secondary:
        assert answer.cells[coord].value is None
        assert answer.cells[coord].obs_status == "Q"
    released = {c: cell.value for c, cell in answer.cells.items()}
    primary = frozenset(c for c, f in flags.items() if f == "A")
    assert_protected(table, primary, frozenset(secondary))
    assert width(table.dimensions, released, flags, ("a0", "b0")) >= 2


def test_secondary_suppression_on_a_cell_key_perturbed_table() -> None:
    dims = dims_of(3, 3)
    rnd = random.Random(11)
    counts = {c: rnd.choice([2, 6, 9, 14, 25]) for c in itertools.product(*(d.codes for d in dims))}
    table = Table.from_counts(dims, counts)
    ids = {c: [f"{c}-{i}" for i in range(n)] for c, n in counts.items()}
    profile = Disclosure(profile="ck", perturbation=Perturbation(max_noise=2))
    answer = protect(table, profile, record_keys_per_cell=ids, secret=b"s" * 32)
    flags = {c: f for c, f in answer.conf_status().items() if f in "AD"}
    released = answer.values()
    for cell, flag in flags.items():
        target = 2 if flag == "A" else 1
        assert width(dims, released, flags, cell, max_noise=2) >= target


# --- generated tables ------------------------------------------------------------------------


def tables(sizes: st.SearchStrategy[tuple[int, ...]]) -> st.SearchStrategy[Table]:
    def build(shape: tuple[int, ...]) -> st.SearchStrategy[Table]:
        dims = dims_of(*shape)
        codes = list(itertools.product(*(d.codes for d in dims)))
        return st.lists(st.sampled_from(VALUES), min_size=len(codes), max_size=len(codes)).map(
            lambda values: Table.from_counts(dims, dict(zip(codes, values, strict=True)))
        )

    return sizes.flatmap(build)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(st.tuples(st.integers(2, 4), st.integers(2, 4))))
def test_generated_two_dimensional_tables_are_protected(table: Table) -> None:
    primary, secondary = pattern(table)
    assert_protected(table, primary, secondary)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(st.tuples(st.integers(2, 3), st.just(2), st.just(2))))
def test_generated_three_dimensional_tables_are_protected(table: Table) -> None:
    primary, secondary = pattern(table)
    assert_protected(table, primary, secondary)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(st.tuples(st.integers(2, 3), st.integers(2, 3), st.integers(2, 3))))
def test_more_generated_three_dimensional_tables_are_protected(table: Table) -> None:
    primary, secondary = pattern(table)
    assert_protected(table, primary, secondary)
