"""Regional-only tables through a helper node, over real gRPC: the ST learns only the sum."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from st_support import QUARTER, office, prepare

from enlace.v1 import secretariat_pb2
from node.errors import PeerError
from node.secretariat.outputs import from_rounds
from node.secretariat.share_service import CONTRIBUTE, GET_SUM, SUBMIT, matrix_query
from node.secretariat.shares import cell_layout, decode, to_vector
from node.stats.compute import count_cells
from node.store.secretariat_schema import (
    helper_shares,
    helper_sums,
    st_contributions,
    st_round_shares,
)

MEMBERS = ("PAN", "CRI", "HND", "MEX")
HELPER = "QHP"
LiveFederation = Any  # tests/integration/conftest.py


@pytest.fixture
def shared_live(live_federation_factory: Callable[..., LiveFederation]) -> LiveFederation:
    live = live_federation_factory(MEMBERS, helper=HELPER)
    prepare(live, MEMBERS)
    for node in (*MEMBERS, HELPER):
        live.serve(node)
    return live


def rows(runtime: Any, table: Any) -> int:
    with runtime.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def truth(live: LiveFederation, members: tuple[str, ...]) -> dict[tuple[str, ...], tuple[int, int]]:
    query = matrix_query("M01", QUARTER)
    sums: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0])
    for member in members:
        for key, count in count_cells(live.runtimes[member].store.engine, query).cells.items():
            sums[key][0] += count
            sums[key][1] += 1 if count > 0 else 0
    return {k: (v, n) for k, (v, n) in sums.items()}


def test_the_st_learns_the_regional_sum_and_nothing_finer(shared_live: LiveFederation) -> None:
    crm, helper = shared_live.runtimes["CRM"], shared_live.runtimes[HELPER]
    st = office(crm, regional_only=("M01",))
    report = st.collect(QUARTER, matrices=["M01"])
    assert report.pull is None  # a regional-only table is never pulled per member
    (round_,) = report.rounds
    assert round_.status == "summed" and round_.contributors == sorted(MEMBERS)
    assert round_.table is not None
    expected = truth(shared_live, MEMBERS)
    for cell in round_.table.cells:
        value, contributors = expected[cell.key]
        assert cell.n_contrib == contributors
        assert cell.value in (value, None)  # exact when published
        if cell.value is None:
            assert cell.flag in ("few_countries", "few_persons")
    assert any(c.value is not None for c in round_.table.cells)

    # who holds what: the ST only its shares, the helper only its shares
    assert rows(crm, st_round_shares) == len(MEMBERS) and rows(crm, helper_shares) == 0
    assert rows(helper, helper_shares) == len(MEMBERS) and rows(helper, st_round_shares) == 0
    pan = shared_live.runtimes["PAN"]
    contribution = pan.store.secretariat.contribution(round_.round_id, "CRM")
    assert contribution is not None and rows(pan, st_contributions) == 1
    held_by_st = crm.store.secretariat.round_shares(round_.round_id)["PAN"]
    assert held_by_st == contribution["st_share"]
    query = matrix_query("M01", QUARTER)
    layout = cell_layout(query.dimensions, query.period)
    pan_vector = to_vector(layout, count_cells(pan.store.engine, query).cells)
    assert (decode(held_by_st, 2 * layout.cells) != pan_vector).any()

    # the helper sums for the ST only, never fewer than three members, never for a member
    small = st.collect(QUARTER, matrices=["M01"], members=["PAN", "CRI"]).rounds[0]
    assert small.status == "failed" and "at least 3" in small.detail
    with shared_live.client("CRM", HELPER) as client:
        with pytest.raises(PeerError) as refused:
            client.call(
                GET_SUM,
                secretariat_pb2.GetSumRequest(
                    round_id=small.round_id, members=["PAN", "CRI"], layout_sha256=layout.sha256
                ),
                secretariat_pb2.GetSumResponse,
            )
        assert refused.value.status_name == "FAILED_PRECONDITION"
        with pytest.raises(PeerError) as refused:
            client.call(
                SUBMIT,
                secretariat_pb2.SubmitShareRequest(round_id="R-test-0001", requester="CRM"),
                secretariat_pb2.SubmitShareResponse,
            )
        assert refused.value.status_name == "PERMISSION_DENIED"
    with shared_live.client("PAN", HELPER) as client, pytest.raises(PeerError) as refused:
        client.call(
            GET_SUM,
            secretariat_pb2.GetSumRequest(round_id=round_.round_id, members=list(MEMBERS)),
            secretariat_pb2.GetSumResponse,
        )
    assert refused.value.status_name == "PERMISSION_DENIED"


def test_a_member_down_does_not_contribute_and_differences_are_refused(
    shared_live: LiveFederation,
) -> None:
    st = office(shared_live.runtimes["CRM"], regional_only=("M01",))
    shared_live.servers.pop("MEX").stop(grace=0)
    first = st.collect(QUARTER, matrices=["M01"]).rounds[0]
    assert first.status == "summed" and first.contributors == ["CRI", "HND", "PAN"]
    assert "MEX" in first.missing
    assert first.table is not None and first.table.status == "partial"
    present = truth(shared_live, ("PAN", "CRI", "HND"))
    for cell in first.table.cells:
        assert cell.value in (present[cell.key][0], None)

    shared_live.serve("MEX")
    second = st.collect(QUARTER, matrices=["M01"]).rounds[0]
    # summing the four after the three would hand the ST MEX's table by subtraction
    assert second.status == "failed" and "differ" in second.detail


def test_periods_spelt_otherwise_or_overlapping_cannot_isolate_a_member(
    shared_live: LiveFederation,
) -> None:
    st = office(shared_live.runtimes["CRM"], regional_only=("M01",))
    three = ["PAN", "CRI", "HND"]

    def round_of(period: str, members: list[str]) -> Any:
        return st.collect(period, matrices=["M01"], members=members).rounds[0]

    first = round_of("2024Q2", list(MEMBERS))
    assert first.status == "summed"
    # the same quarter spelt as a range, a range sharing June, the year holding the quarter
    for period in ("2024-04..2024-06", "2024-06..2024-09", "2024"):
        refused = round_of(period, three)
        assert refused.status == "failed" and "MEX could be isolated" in refused.detail, period
        assert refused.table is None
    # the same members over an overlapping period say nothing about any one of them
    assert round_of("2024", list(MEMBERS)).status == "summed"
    assert round_of("2024-04..2024-06", list(MEMBERS)).status == "summed"
    crm = shared_live.runtimes["CRM"]
    for spelling in ("2024Q2", "2024-04..2024-06"):  # outputs find the round either way
        found = from_rounds(crm, "M01", spelling, st.rule)
        assert found is not None and list(found.table.contributors) == sorted(MEMBERS)
    helper = shared_live.runtimes[HELPER]
    with helper.store.engine.connect() as conn:
        periods = set(conn.execute(select(helper_sums.c.period)).scalars())
    assert periods == {"2024-04..2024-06", "2024-01..2024-12"}


def contribute(
    live: LiveFederation, member: str, round_id: str, matrix_id: str, period: str
) -> secretariat_pb2.ContributeResponse:
    query = matrix_query(matrix_id, period)
    layout = cell_layout(query.dimensions, query.period)
    with live.client("CRM", member) as client:
        return client.call(
            CONTRIBUTE,
            secretariat_pb2.ContributeRequest(
                round_id=round_id,
                matrix=matrix_id,
                period=period,
                helper=HELPER,
                layout_sha256=layout.sha256,
                cells=layout.cells,
            ),
            secretariat_pb2.ContributeResponse,
            purpose="quarterly_matrices",
        ).message


def test_a_round_is_one_table_and_one_period_for_every_share(shared_live: LiveFederation) -> None:
    # M03 has no time dimension: every period has the same layout, so only the binding differs
    round_id = "R-mixed-00000001"
    contribute(shared_live, "MEX", round_id, "M03", QUARTER)
    for member in ("PAN", "CRI"):
        with pytest.raises(PeerError) as refused:
            contribute(shared_live, member, round_id, "M03", "2035Q1")
        assert "every share of a round must be for the same table" in refused.value.message
    with pytest.raises(PeerError) as refused:  # the member keeps its round's parameters
        contribute(shared_live, "MEX", round_id, "M03", "2035Q1")
    assert refused.value.status_name == "INVALID_ARGUMENT" and "already contributed" in str(
        refused.value
    )
    assert contribute(shared_live, "MEX", round_id, "M03", "2024-04..2024-06").st_share

    # shares that reached the helper concurrently under one round id are never summed
    helper = shared_live.runtimes[HELPER].store.secretariat
    held = helper.helper_share(round_id, "MEX")
    assert held is not None
    for member in ("PAN", "CRI"):
        helper.add_helper_share({**held, "member": member, "period": "2035-01..2035-03"})
    layout = held["layout_sha256"]
    with shared_live.client("CRM", HELPER) as client, pytest.raises(PeerError) as refused:
        client.call(
            GET_SUM,
            secretariat_pb2.GetSumRequest(
                round_id=round_id, members=["CRI", "MEX", "PAN"], layout_sha256=layout
            ),
            secretariat_pb2.GetSumResponse,
        )
    assert refused.value.status_name == "FAILED_PRECONDITION"
    assert "mixes shares made for different tables or periods" in refused.value.message
