"""Attacks on the statistics a node releases, mounted on real counts on both backends.

Each test states an attack a peer (or colluding peers) can try with the answers it may ask
for, and checks that what the node releases defeats it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from enlace.v1 import stats_pb2
from node.stats.answer import StatsAnswer, answer
from node.stats.export import export_table
from node.stats.service import to_proto
from policies.agreement import DifferentialPrivacy, Disclosure, Perturbation
from policies.disclosure import TOTAL, BudgetExhausted, Dimension, Table, ThresholdRule, attack
from tests.integration.stats_support import NOW, Holder, query


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


def _dp(epsilon: str = "0.5", budget: str = "1", **extra: object) -> Disclosure:
    mechanism = DifferentialPrivacy(
        mechanism="discrete_laplace", epsilon_per_query=Decimal(epsilon),
        budget_per_period=Decimal(budget),
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
    assert holder.runtime.store.policies.quota_usage("dp:CRI", ["2024-Q1"]) == {
        "2024-Q1": 3 * 10**9 // 2
    }
    assert answer(holder.runtime, q, _dp(), peer="HND", now=NOW).epsilon_spent == "0.5"
    next_quarter = NOW.replace(month=4)
    assert answer(holder.runtime, q, _dp(), peer="CRI", now=next_quarter).epsilon_spent == "0.5"
