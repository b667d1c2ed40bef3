"""The warm-started HiGHS attacker against the reference path (a fresh scipy ``milp`` per question).

Secondary suppression must not depend on how the attacker's programs are solved: the
persistent model (changed bounds, changed objective, previous basis, intervals remembered)
must give the same interval as a model built afresh for every question, and so the same
suppressed cells, on tables of one to three dimensions, with all or some margins released,
unperturbed or cell-key perturbed.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from highspy._core import _Highs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.disclosure import (
    TOTAL,
    Dimension,
    ProtectionError,
    Table,
    ThresholdRule,
    primary_suppression,
    secondary_suppression,
    verify_protection,
)
from policies.disclosure.attacker import SOLVERS, Attacker, Box, Interval, Solver, attacker_for
from policies.disclosure.secondary import _Problem
from policies.disclosure.table import is_margin
from policies.disclosure.threshold import attacker_bounds

Coord = tuple[str, ...]
RULE = ThresholdRule(5)
VALUES = [0, 0, 1, 2, 3, 4, 5, 6, 7, 9, 12, 20, 45]


def dims_of(*sizes: int) -> list[Dimension]:
    return [
        Dimension(f"d{i}", tuple(f"{chr(97 + i)}{j}" for j in range(n)))
        for i, n in enumerate(sizes)
    ]


@st.composite
def tables(draw: st.DrawFn, shapes: st.SearchStrategy[tuple[int, ...]]) -> Table:
    """A table of small counts with every margin, or a random subset of them, released."""
    dims = dims_of(*draw(shapes))
    codes = list(itertools.product(*(d.codes for d in dims)))
    values = draw(st.lists(st.sampled_from(VALUES), min_size=len(codes), max_size=len(codes)))
    counts = dict(zip(codes, values, strict=True))
    everything = Table.from_counts(dims, counts)
    if draw(st.booleans()):
        return everything
    margins = [c for c in everything.coords() if is_margin(c)]
    kept = draw(st.lists(st.sampled_from(margins), unique=True, max_size=len(margins)))
    return Table.from_counts(dims, counts, margins=kept)


def noisy(table: Table, seed: int, max_noise: int) -> dict[Coord, int]:
    """Released values as cell-key perturbation leaves them: zeros stay, positives stay >= 1."""
    rnd = random.Random(seed)
    return {
        c: 0 if v == 0 else max(1, v + rnd.randint(-max_noise, max_noise))
        for c, v in table.cells.items()
    }


SHAPES = st.one_of(
    st.tuples(st.integers(2, 6)),
    st.tuples(st.integers(2, 4), st.integers(2, 4)),
    st.tuples(st.just(2), st.just(2), st.just(2)),
)


def both_paths_hide_the_same_cells(table: Table, max_noise: int, seed: int) -> None:
    primary = primary_suppression(table.cells, RULE)
    released = noisy(table, seed, max_noise) if max_noise else None
    found = {
        solver: secondary_suppression(
            table, primary, RULE, released=released, max_noise=max_noise, solver=solver
        )
        for solver in SOLVERS
    }
    assert found["highs"] == found["milp"]
    for solver in SOLVERS:
        verify_protection(
            table, primary, found["highs"], RULE, released=released, max_noise=max_noise,
            solver=solver,
        )  # fmt: skip


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(SHAPES), st.sampled_from([0, 0, 2]), st.integers(0, 1000))
def test_both_solver_paths_hide_the_same_cells(table: Table, max_noise: int, seed: int) -> None:
    both_paths_hide_the_same_cells(table, max_noise, seed)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tables(st.tuples(st.integers(3, 6), st.integers(3, 9))),
    st.sampled_from([0, 0, 2]),
    st.integers(0, 1000),
)
def test_larger_tables_hide_the_same_cells_on_both_paths(
    table: Table, max_noise: int, seed: int
) -> None:
    both_paths_hide_the_same_cells(table, max_noise, seed)


def hidden_sets(table: Table, rnd: random.Random) -> Iterator[dict[Coord, str]]:
    """Flags of random suppression patterns: small cells A, some positive cells D."""
    primary = primary_suppression(table.cells, RULE)
    positive = [c for c in table.coords() if c not in primary and table[c] > 0]
    for share in (0.2, 0.6, 1.0):
        chosen = [c for c in positive if rnd.random() < share]
        yield {c: "A" for c in primary} | {c: "D" for c in chosen}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(SHAPES), st.integers(0, 1000))
def test_every_interval_matches_a_fresh_model(table: Table, seed: int) -> None:
    rnd = random.Random(seed)
    coords = table.coords()
    warm = Attacker(table.dimensions, coords, solver="highs")
    for flags in hidden_sets(table, rnd):
        shown = {c: (None if c in flags else v) for c, v in table.cells.items()}
        box = Box.of(coords, attacker_bounds(coords, shown, flags, RULE))
        fresh = Attacker(table.dimensions, coords, solver="milp")
        order = list(coords)
        rnd.shuffle(order)  # the warm model starts from whatever the last question left
        for target in order:
            got = warm.interval(box, target)
            assert got == fresh.interval(box, target), target
            assert got.low <= table[target] and (got.high is None or table[target] <= got.high)
            assert warm.interval(box, target, integer=False) == fresh.interval(
                box, target, integer=False
            )


def test_an_unbounded_maximum_is_reported_by_both_paths() -> None:
    dims = dims_of(3)
    table = Table.from_counts(dims, {("a0",): 2, ("a1",): 9, ("a2",): 30})
    flags: dict[Coord, str] = {("a0",): "A", ("a1",): "D", (TOTAL,): "D"}
    shown = {c: (None if c in flags else v) for c, v in table.cells.items()}
    box = Box.of(table.coords(), attacker_bounds(table.coords(), shown, flags, RULE))
    for solver in SOLVERS:
        attacker = Attacker(dims, table.coords(), solver=solver)
        assert attacker.interval(box, ("a1",)) == Interval(5, None)
        assert attacker.interval(box, ("a0",)) == Interval(1, 4)


def test_the_same_question_under_other_bounds_is_solved_again() -> None:
    dims = dims_of(3)
    table = Table.from_counts(dims, {("a0",): 2, ("a1",): 9, ("a2",): 30})
    coords = table.coords()
    attacker = Attacker(dims, coords)
    answers = []
    cases: list[dict[Coord, str]] = [{("a0",): "A"}, {("a0",): "A", ("a1",): "D"}]
    for flags in cases:
        shown = {c: (None if c in flags else v) for c, v in table.cells.items()}
        box = Box.of(coords, attacker_bounds(coords, shown, flags, RULE))
        answers.append(attacker.interval(box, ("a0",)))
    assert answers == [Interval(2, 2), Interval(1, 4)]


@pytest.mark.parametrize("solver", SOLVERS)
def test_contradictory_bounds_fail_closed(solver: Solver) -> None:
    dims = dims_of(2)
    coords = Table.from_counts(dims, {("a0",): 6, ("a1",): 7}).coords()
    # Both members pinned to 6 and 7 but the total pinned to 20: no table satisfies it.
    box = Box(np.array([6.0, 7.0, 20.0]), np.array([6.0, 7.0, 20.0]))
    attacker = Attacker(dims, coords, solver=solver)
    with pytest.raises(ProtectionError) as caught:
        attacker.interval(box, ("a0",))
    assert caught.value.cells == (("a0",),)


def test_the_attacker_is_kept_per_structure_and_per_thread() -> None:
    dims = dims_of(2, 2)
    coords = Table.from_counts(dims, {}).coords()
    first = attacker_for(dims, coords)
    assert attacker_for(dims, coords) is first
    assert attacker_for(dims, coords, solver="milp") is not first
    assert attacker_for(dims, coords[:-1]) is not first  # grand total not released
    elsewhere: list[Attacker] = []
    thread = threading.Thread(target=lambda: elsewhere.append(attacker_for(dims, coords)))
    thread.start()
    thread.join()
    assert elsewhere and elsewhere[0] is not attacker_for(dims, coords)


def test_the_attacker_runs_whatever_threads_the_process_scheduler_has() -> None:
    # HiGHS refuses a model whose ``threads`` option differs from the process-wide scheduler
    # (set by whichever model ran first); the attacker must not depend on winning that race.
    _Highs.resetGlobalScheduler(True)
    other = _Highs()
    other.setOptionValue("output_flag", False)
    other.setOptionValue("threads", 3)
    other.run()
    dims = dims_of(3)
    table = Table.from_counts(dims, {("a0",): 2, ("a1",): 9, ("a2",): 30})
    flags: dict[Coord, str] = {("a0",): "A", ("a1",): "D"}
    shown = {c: (None if c in flags else v) for c, v in table.cells.items()}
    box = Box.of(table.coords(), attacker_bounds(table.coords(), shown, flags, RULE))
    assert Attacker(dims, table.coords()).interval(box, ("a0",)) == Interval(1, 4)


def summed_cubes(problem: _Problem, coord: Coord) -> set[frozenset[tuple[Coord, int]]]:
    """Every hypercube through ``coord`` whose shift leaves every released line sum intact."""
    dims = problem.table.dimensions
    options = [
        [None, *(p for p in (*dim.codes, TOTAL) if p != code)]
        for dim, code in zip(dims, coord, strict=True)
    ]
    found = set()
    for partners in itertools.product(*options):
        moving = [(d, p) for d, p in enumerate(partners) if p is not None]
        if not moving:
            continue
        shift: dict[Coord, int] = {}
        for choice in itertools.product((False, True), repeat=len(moving)):
            corner, sign = list(coord), 1
            for (d, partner), moved in zip(moving, choice, strict=True):
                if moved:
                    corner[d] = partner
                    sign = sign if TOTAL in (coord[d], partner) else -sign
            shift[tuple(corner)] = sign
        if not all(c in problem.order for c in shift):
            continue
        if all(
            sum(shift.get(m, 0) for m in line.members) == shift.get(line.total, 0)
            for line in problem.lines
        ):
            found.add(frozenset(shift.items()))
    return found


@settings(max_examples=30, deadline=None)
@given(tables(SHAPES))
def test_balanced_cubes_are_those_whose_lines_still_add_up(table: Table) -> None:
    primary = primary_suppression(table.cells, RULE)
    problem = _Problem(table, primary, RULE, dict(table.cells), 0, 2)
    for coord in sorted(primary, key=problem.order.__getitem__):
        cubes = {frozenset(corners) for corners in problem._cubes(coord)}
        assert cubes == summed_cubes(problem, coord)
