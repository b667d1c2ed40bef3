"""Filters narrow what a query counts and never change how it counts, on both backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from stats_support import NOW, Holder, query

from node.stats.answer import answer, dp_counts
from node.stats.compute import cell_members, count_cells
from policies.agreement import Disclosure, Perturbation


@pytest.fixture
def holder(tmp_path: Path, database_url_factory: Callable[[], str]) -> Iterator[Holder]:
    made = Holder(tmp_path / "fed", database_url_factory)
    made.add(6, nationality="HTI", care="food;health", vuln="pregnant")
    made.add(6, nationality="CUB", care="food", vuln="elderly")
    made.add(5, nationality="AGO", care="shelter", vuln="elderly;pregnant")
    made.add(5, nationality="SEN")
    yield made
    made.close()


def test_a_code_filter_selects_encounters_without_counting_them_twice(holder: Holder) -> None:
    engine = holder.runtime.store.engine
    q = query(["nationality"], measure="events", filters={"care_provided": ["food", "health"]})
    assert count_cells(engine, q).cells == {("HTI",): 6, ("CUB",): 6}
    assert {k: len(v) for k, v in cell_members(engine, q).items()} == {("HTI",): 6, ("CUB",): 6}
    perturbed = answer(holder.runtime, q, Disclosure("ck", perturbation=Perturbation(2)), now=NOW)
    assert {c.key for c in perturbed.cells} == {("HTI",), ("CUB",)}
    persons = query(["nationality"], filters={"vulnerability": ["elderly", "pregnant"]})
    assert count_cells(engine, persons).cells == {("HTI",): 6, ("CUB",): 6, ("AGO",): 5}
    capped, _ = dp_counts(engine, q)
    assert capped.cells == {("HTI",): 6, ("CUB",): 6}


def test_a_code_filter_applies_to_its_own_list_whatever_the_breakdown(holder: Holder) -> None:
    engine = holder.runtime.store.engine
    q = query(["vulnerability"], filters={"care_provided": ["food"]})
    assert count_cells(engine, q).cells == {("pregnant",): 6, ("elderly",): 6}
    both = query(
        ["care_provided"], filters={"vulnerability": ["elderly"], "care_provided": ["food"]}
    )
    assert count_cells(engine, both).cells == {("food",): 6}
    # On the breakdown's own list a filter also keeps only the cells of the codes it names.
    own = query(["care_provided"], measure="events", filters={"care_provided": ["health"]})
    assert count_cells(engine, own).cells == {("health",): 6}
