"""Attacks on the statistics a node releases, mounted on real counts on both backends.

Each test states an attack a peer (or colluding peers) can try with the answers it may ask
for, and checks that what the node releases defeats it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from random import Random

import pytest
from stats_support import NOW, Holder, query

from enlace.v1 import stats_pb2
from node.stats.answer import (
    DP_CONTRIBUTION_CAP,
    StatsAnswer,
    answer,
    budget_scope,
    dp_counts,
)
from node.stats.compute import count_cells
from node.stats.export import export_table
from node.stats.service import to_proto
from policies.agreement import DifferentialPrivacy, Disclosure, Perturbation
from policies.disclosure import (
    TOTAL,
    TOTAL_PERIOD,
    BudgetExhausted,
    BudgetLedger,
    Dimension,
    Table,
    ThresholdRule,
    attack,
    protect,
)


@pytest.fixture
def holder(tmp_path: Path, database_url_factory: Callable[[], str]) -> Iterator[Holder]:
    made = Holder(tmp_path / "fed", database_url_factory)
    yield made
    made.close()


def _published(result: StatsAnswer) -> dict[tuple[str, ...], int]:
    return {c.key: c.value for c in result.cells if c.value is not None}


def test_no_exact_record_count_reaches_a_peer(holder: Holder) -> None:
    """Attack: a suppressed cell = the exact number of records read − the published cells."""
    holder.add(20, nationality="HTI")
    holder.add(3, nationality="AGO")
    holder.add(12, nationality="CUB")
    for q in (
        query(["nationality"], measure="events"),
        query(["nationality"], filters={"nationality": ["AGO"]}),  # every cell suppressed
    ):
        result = answer(holder.runtime, q, None, now=NOW)
        assert result.records_considered in (35, 3)  # the holder's operator still knows it
        response = to_proto("PAN", result, None)
        assert "records_considered" not in stats_pb2.Coverage.DESCRIPTOR.fields_by_name
        sent = [value for _, value in response.coverage.ListFields()]
        assert result.records_considered not in sent
        exported = json.loads(export_table(result, "json", holder="PAN"))
        assert "records_considered" not in json.dumps(exported)
        assert ("AGO",) not in _published(result)


def test_asking_without_margins_does_not_undo_secondary_suppression(holder: Holder) -> None:
    """Attack: margins from the table asked with ``margins``, the interior from the same table
    asked without (where nothing needed hiding for lack of margins), subtract."""
    holder.add(3, nationality="HTI", sex="F")
    holder.add(20, nationality="HTI", sex="M")
    holder.add(10, nationality="CUB", sex="F")
    holder.add(12, nationality="CUB", sex="M")
    dims = ["nationality", "sex"]
    with_margins = answer(holder.runtime, query(dims, margins=True), None, now=NOW)
    without = answer(holder.runtime, query(dims), None, now=NOW)
    marginal = answer(holder.runtime, query(["nationality"]), None, now=NOW)

    assert all(TOTAL not in c.key for c in without.cells)
    interior = {c.key: c for c in with_margins.cells if TOTAL not in c.key}
    assert {c.key: c for c in without.cells} == interior  # one pattern, whatever is asked
    assert without.suppressed_primary == 1 and without.suppressed_secondary == 3

    # Everything the peer holds, as one table with margins: no hidden cell may be narrowed.
    table = Table.from_counts(
        [Dimension("nationality", ("CUB", "HTI")), Dimension("sex", ("F", "M"))], {}
    )
    released: dict[tuple[str, ...], int | None] = dict.fromkeys(table.coords())
    flags = dict.fromkeys(table.coords(), "D")
    known = [*with_margins.cells, *without.cells]
    known += [replace(c, key=(c.key[0], TOTAL)) for c in marginal.cells]
    for cell in known:
        if cell.value is not None:
            assert released[cell.key] in (None, cell.value)
            released[cell.key], flags[cell.key] = cell.value, "F"
        elif flags[cell.key] != "F":
            flags[cell.key] = cell.conf_status
    rule = ThresholdRule(min_cell=5)
    intervals = attack(table.dimensions, released, flags, rule)
    assert intervals[("HTI", "F")].high - intervals[("HTI", "F")].low >= 2
    assert all(i.high is None or i.high > i.low for i in intervals.values())


def test_cell_key_noise_is_the_same_for_every_agreement_and_peer(holder: Holder) -> None:
    """Attack: peers under different agreements pool their answers; each released value is
    within ±max_noise of the truth, so the intersection of the ranges would give it away."""
    holder.add(17, nationality="HTI")
    holder.add(40, nationality="CUB")
    q = query(["nationality"])
    values = set()
    for i, peer in enumerate(("CRI", "HND", "GTM", "SLV", "MEX", "CRM") * 2):
        profile = Disclosure(
            profile="ck", perturbation=Perturbation(max_noise=2, secret_ref=f"agreement-{i}")
        )
        result = answer(holder.runtime, q, profile, peer=peer, now=NOW)
        values.add(_published(result)[("HTI",)])
    assert len(values) == 1  # pooled answers intersect to one answer's range: nothing gained
    without_ref = Disclosure(profile="ck", perturbation=Perturbation(max_noise=2))
    assert _published(answer(holder.runtime, q, without_ref, now=NOW))[("HTI",)] in values


def _dp(
    epsilon: str = "0.5", budget: str = "1", total: str | None = None, **extra: object
) -> Disclosure:
    mechanism = DifferentialPrivacy(
        mechanism="discrete_laplace", epsilon_per_query=Decimal(epsilon),
        budget_per_period=Decimal(budget),
        budget_total=None if total is None else Decimal(total),
    )  # fmt: skip
    return Disclosure(profile="dp", dp=mechanism, **extra)  # type: ignore[arg-type]


def test_the_privacy_budget_is_the_peers_for_the_quarter_of_asking(holder: Holder) -> None:
    """One counter per peer (not per agreement), reset at the start of each calendar quarter."""
    holder.add(20, nationality="AGO")
    q = query(["nationality"], measure="persons")
    for _ in range(2):
        assert answer(holder.runtime, q, _dp(), peer="CRI", now=NOW).epsilon_spent == "0.5"
    with pytest.raises(BudgetExhausted):
        answer(holder.runtime, q, _dp(), peer="CRI", now=NOW)
    # A grant with a larger budget lets the same peer spend up to that budget, no more.
    assert answer(holder.runtime, q, _dp(budget="1.5"), peer="CRI", now=NOW).epsilon_spent
    with pytest.raises(BudgetExhausted):
        answer(holder.runtime, q, _dp(budget="1.5"), peer="CRI", now=NOW)
    assert holder.runtime.store.policies.quota_usage(budget_scope("CRI"), ["2024-Q1"]) == {
        "2024-Q1": 3 * 10**9 // 2
    }
    assert answer(holder.runtime, q, _dp(), peer="HND", now=NOW).epsilon_spent == "0.5"
    next_quarter = NOW.replace(month=4)
    assert answer(holder.runtime, q, _dp(), peer="CRI", now=next_quarter).epsilon_spent == "0.5"


def _spent(holder: Holder, peer: str, *windows: str) -> dict[str, Fraction]:
    used = holder.runtime.store.policies.quota_usage(budget_scope(peer), windows)
    return {window: Fraction(used.get(window, 0), 10**9) for window in windows}


def test_a_total_privacy_budget_refuses_for_good_even_after_the_quarter_resets(
    holder: Holder,
) -> None:
    """Attack: spend a fresh quarterly budget on the same table, quarter after quarter."""
    holder.add(20, nationality="AGO")
    q = query(["nationality"], measure="persons")
    capped = _dp(epsilon="0.5", budget="1", total="1.5")
    for _ in range(2):
        assert answer(holder.runtime, q, capped, peer="CRI", now=NOW).epsilon_spent == "0.5"
    # The quarter's budget still refuses within the quarter, and charges nothing.
    with pytest.raises(BudgetExhausted) as within:
        answer(holder.runtime, q, capped, peer="CRI", now=NOW)
    assert within.value.limit_name == "budget_per_period"
    assert within.value.resets_at == dt.datetime(2024, 4, 1, tzinfo=dt.UTC)
    assert _spent(holder, "CRI", "2024-Q1", TOTAL_PERIOD) == {"2024-Q1": 1, TOTAL_PERIOD: 1}
    # A new quarter renews the quarter's budget, not the total.
    april = dt.datetime(2024, 4, 1, tzinfo=dt.UTC)
    assert answer(holder.runtime, q, capped, peer="CRI", now=april).epsilon_spent == "0.5"
    for later in (
        april,
        dt.datetime(2024, 7, 1, tzinfo=dt.UTC),
        dt.datetime(2031, 1, 1, tzinfo=dt.UTC),
    ):
        with pytest.raises(BudgetExhausted) as total:
            answer(holder.runtime, q, capped, peer="CRI", now=later)
        error = total.value
        assert (error.limit_name, error.resets_at) == ("budget_total", None)
        assert (error.spent, error.limit, error.requested) == (Fraction(3, 2), 1.5, Fraction(1, 2))
        assert "does not reset" in str(error)
    # The refusals charged neither counter: both stay where the last answer left them.
    assert _spent(holder, "CRI", "2024-Q1", "2024-Q2", "2024-Q3", TOTAL_PERIOD) == {
        "2024-Q1": 1, "2024-Q2": Fraction(1, 2), "2024-Q3": 0, TOTAL_PERIOD: Fraction(3, 2),
    }  # fmt: skip
    # Another peer has its own total.
    assert answer(holder.runtime, q, capped, peer="HND", now=april).epsilon_spent == "0.5"


def test_the_total_counts_answers_under_grants_without_a_total(holder: Holder) -> None:
    """A cap agreed later bounds what the peer spent before it, as well as after."""
    holder.add(20, nationality="AGO")
    q = query(["nationality"], measure="persons")
    for month in (2, 5, 8):  # three quarters, an uncapped grant: nothing refuses
        now = NOW.replace(month=month)
        assert answer(holder.runtime, q, _dp(budget="0.5"), peer="CRI", now=now).epsilon_spent
    assert _spent(holder, "CRI", TOTAL_PERIOD) == {TOTAL_PERIOD: Fraction(3, 2)}
    with pytest.raises(BudgetExhausted) as caught:
        answer(
            holder.runtime, q, _dp(budget="0.5", total="1.5"), peer="CRI", now=NOW.replace(month=11)
        )
    assert caught.value.limit_name == "budget_total"
    assert _spent(holder, "CRI", "2024-Q4", TOTAL_PERIOD) == {
        "2024-Q4": 0,
        TOTAL_PERIOD: Fraction(3, 2),
    }
    # The uncapped grant answers as before: its quarter alone decides.
    assert answer(holder.runtime, q, _dp(budget="0.5"), peer="CRI", now=NOW.replace(month=11))


def _population(holder: Holder) -> None:
    holder.add(20, nationality="AGO", care="food")
    holder.add(6, nationality="HTI", care="food;health", vuln="pregnant")
    holder.add(3, nationality="CUB", date=dt.date(2023, 9, 2), vuln="elderly;disability")


def test_one_person_moves_a_dp_table_by_at_most_its_sensitivity(
    tmp_path: Path, database_url_factory: Callable[[], str]
) -> None:
    """Attack: one person with 30 events, in three months, under two nationalities and with
    several codes, against noise scaled for a person who adds 1 to one cell."""
    without, with_person = (Holder(tmp_path / n, database_url_factory) for n in ("a", "b"))
    try:
        for holder in (without, with_person):
            _population(holder)
        for month, nationality in ((7, "AGO"), (8, "HTI"), (9, "HTI")):
            with_person.add(
                10, person="the-one", nationality=nationality, date=dt.date(2023, month, 3),
                care="food;health;shelter", vuln="pregnant;disability",
            )  # fmt: skip
        for q in (
            query(["nationality"], measure="events"),
            query(["month"], measure="events"),
            query(["month", "nationality"]),
            query(["care_provided"]),
            query(["vulnerability", "month"], measure="events"),
            query(["nationality"], filters={"care_provided": ["food", "health"]}),
        ):
            before, sensitivity = dp_counts(without.runtime.store.engine, q)
            after, same = dp_counts(with_person.runtime.store.engine, q)
            assert same == sensitivity == DP_CONTRIBUTION_CAP[q.measure]
            keys = set(before.cells) | set(after.cells)
            moved = sum(abs(after.cells.get(k, 0) - before.cells.get(k, 0)) for k in keys)
            assert 1 <= moved <= sensitivity, (q.dimensions, q.measure, moved)
            # Uncapped counts are what the noise must not be scaled to.
            raw = count_cells(with_person.runtime.store.engine, q).cells
            assert sum(raw.values()) >= sum(after.cells.values())
    finally:
        without.close()
        with_person.close()


def test_a_dp_answer_is_the_capped_table_noised_for_its_sensitivity(holder: Holder) -> None:
    """Same random source, same answer as protecting the capped counts with their cap."""
    _population(holder)
    holder.add(30, person="the-one", nationality="CUB")
    q = query(["nationality"], measure="events", margins=True)
    profile = _dp("1", "10", min_cell=1)
    result = answer(holder.runtime, q, profile, peer="CRI", now=NOW, rng=Random(7).randrange)
    capped, sensitivity = dp_counts(holder.runtime.store.engine, q)
    assert capped.cells[("CUB",)] == 3 + sensitivity
    expected = protect(
        Table.from_counts(
            [Dimension("nationality", tuple(sorted(k[0] for k in capped.cells)))], capped.cells
        ),
        profile,
        budget_state=BudgetLedger({}),
        peer="CRI",
        period="2024-Q1",
        rng=Random(7).randrange,
        sensitivity=sensitivity,
    )
    assert {c.key: c.value for c in result.cells} == dict(expected.values())
