"""StatsService over real gRPC: only protected aggregates, only what an agreement grants."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from enlace.v1 import stats_pb2
from node.demo.agreements import sign_and_install
from node.errors import PeerError
from node.ingest.pipeline import ingest
from node.records.generate import generate
from node.stats.compute import count_cells
from node.stats.query import build_query
from policies.agreement import (
    Agreement,
    DifferentialPrivacy,
    Disclosure,
    Grant,
    Perturbation,
    Quotas,
)

AGGREGATE = "/enlace.v1.StatsService/Aggregate"
DIMS = ("nationality", "quarter", "sex", "event_type", "year")


def grant(holder: str, requester: str, *, disclosure: Disclosure, per_day: int = 100) -> Grant:
    return Grant(
        holder=holder,
        requester=requester,
        service="stats",
        datasets=("encounters",),
        purposes=("quarterly_matrices",),
        dimensions=DIMS,
        disclosure=disclosure,
        quotas=Quotas(per_day=per_day, per_quarter=None),
    )


def install(live, agreement: Agreement) -> str:  # type: ignore[no-untyped-def]
    return sign_and_install(agreement, live.runtimes, live.runtimes["PAN"].clock.now())


@pytest.fixture
def stats_live(live, tmp_path: Path):  # type: ignore[no-untyped-def]
    pan = live.runtimes["PAN"]
    out = tmp_path / "pan-data"
    generate("PAN", 4000, 11, out)
    ingest(pan.store, "encounters", [out / "encounters.csv"], now=pan.clock.now())
    now = pan.clock.now()
    start, end = now - dt.timedelta(days=1), now + dt.timedelta(days=365)
    standard = Disclosure(profile="standard", min_cell=5, secondary=True)
    install(
        live,
        Agreement(
            id="PAN-CRI-STATS",
            version=1,
            parties=("PAN", "CRI"),
            title="t",
            valid_from=start,
            valid_until=end,
            grants=(grant("PAN", "CRI", disclosure=standard, per_day=3),),
        ),
    )
    install(
        live,
        Agreement(
            id="PAN-CRM-STATS",
            version=1,
            parties=("PAN", "CRM"),
            title="t",
            valid_from=start,
            valid_until=end,
            grants=(
                grant(
                    "PAN",
                    "CRM",
                    disclosure=Disclosure(
                        profile="cell_key", perturbation=Perturbation(max_noise=2, secret_ref="k1")
                    ),
                ),
            ),
        ),
    )
    install(
        live,
        Agreement(
            id="PAN-HND-DP",
            version=1,
            parties=("PAN", "HND"),
            title="t",
            valid_from=start,
            valid_until=end,
            grants=(
                grant(
                    "PAN",
                    "HND",
                    disclosure=Disclosure(
                        profile="dp",
                        dp=DifferentialPrivacy(
                            mechanism="discrete_laplace",
                            epsilon_per_query="0.5",
                            budget_per_period="1",
                        ),
                    ),
                ),
            ),
        ),
    )
    return live


def ask(
    live, requester: str, request: stats_pb2.AggregateRequest, purpose: str = "quarterly_matrices"
):  # type: ignore[no-untyped-def]
    with live.client(requester, "PAN") as client:
        return client.call(AGGREGATE, request, stats_pb2.AggregateResponse, purpose=purpose)


def by_nationality(**extra: object) -> stats_pb2.AggregateRequest:
    return stats_pb2.AggregateRequest(
        dataset="encounters",
        measure="persons",
        dimensions=["nationality"],
        period="2023",
        margins=True,
        **extra,  # type: ignore[arg-type]
    )


def test_protected_cells_match_true_counts_and_cite_the_agreement(stats_live) -> None:  # type: ignore[no-untyped-def]
    reply = ask(stats_live, "CRI", by_nationality())
    response = reply.message
    assert reply.header.agreement == "PAN-CRI-STATS" and len(reply.header.agreement_hash) == 64
    assert response.coverage.agreement_id == "PAN-CRI-STATS"
    truth = count_cells(
        stats_live.runtimes["PAN"].store.engine,
        build_query(
            dataset="encounters",
            measure="persons",
            dimensions=["nationality"],
            period="2023",
            filters={},
            margins=False,
        ),
    ).cells
    released = {tuple(c.key): c for c in response.cells}
    assert ("_T",) in released
    suppressed = [c for c in response.cells if not c.has_value]
    assert suppressed, "a realistic table has small cells to suppress"
    for cell in response.cells:
        if cell.has_value:
            assert cell.obs_status == "A" and cell.conf_status == "F"
            if cell.key[0] != "_T":
                assert cell.value == truth[tuple(cell.key)] and cell.value >= 5
        else:
            assert cell.value == 0 and cell.obs_status == "Q" and cell.conf_status in ("A", "D")
    for key, count in truth.items():
        if 0 < count < 5:
            assert released[key].conf_status == "A"
    assert response.coverage.suppressed_primary + response.coverage.suppressed_secondary == len(
        suppressed
    )
    audit = [
        e for e in stats_live.runtimes["PAN"].store.iter_audit() if e.record.method == AGGREGATE
    ][-1]
    assert audit.record.agreement_id == "PAN-CRI-STATS"
    assert audit.record.extra["cells"] == len(response.cells)


@pytest.mark.parametrize(
    ("request_", "element"),
    [
        (
            stats_pb2.AggregateRequest(
                dataset="encounters", measure="persons", dimensions=["age_group"], period="2023"
            ),
            "dimension",
        ),
        (
            stats_pb2.AggregateRequest(
                dataset="encounters",
                measure="persons",
                dimensions=["nationality"],
                period="2023",
                filters=[stats_pb2.Filter(dimension="border_post", values=["PAN-LAJ"])],
            ),
            "border_post",
        ),
        (
            stats_pb2.AggregateRequest(
                dataset="matrices", measure="persons", dimensions=["nationality"], period="2023"
            ),
            "matrices",
        ),
    ],
)
def test_not_granted_parts_are_denied(stats_live, request_, element: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PeerError) as caught:
        ask(stats_live, "CRI", request_)
    assert caught.value.status_name == "PERMISSION_DENIED"
    assert element in caught.value.message


def test_purpose_is_required_and_checked(stats_live) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PeerError) as caught:
        ask(stats_live, "CRI", by_nationality(), purpose="")
    assert caught.value.status_name == "INVALID_ARGUMENT"
    with pytest.raises(PeerError) as caught:
        ask(stats_live, "CRI", by_nationality(), purpose="curiosity")
    assert caught.value.status_name == "PERMISSION_DENIED" and "curiosity" in caught.value.message


def test_no_agreement_means_no_statistics(stats_live) -> None:  # type: ignore[no-untyped-def]
    stats_live.serve("CRI")
    with stats_live.client("HND", "CRI") as client, pytest.raises(PeerError) as caught:
        client.call(
            AGGREGATE, by_nationality(), stats_pb2.AggregateResponse, purpose="quarterly_matrices"
        )
    assert caught.value.status_name == "PERMISSION_DENIED"
    assert "no agreement" in caught.value.message
    # A grant in the other direction does not help: PAN→CRI does not let PAN ask CRI.
    with stats_live.client("PAN", "CRI") as client, pytest.raises(PeerError) as caught:
        client.call(
            AGGREGATE, by_nationality(), stats_pb2.AggregateResponse, purpose="quarterly_matrices"
        )
    assert caught.value.status_name == "PERMISSION_DENIED"


def test_quota_is_enforced_and_restored_the_next_day(stats_live) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        ask(stats_live, "CRI", by_nationality())
    with pytest.raises(PeerError) as caught:
        ask(stats_live, "CRI", by_nationality())
    assert caught.value.status_name == "RESOURCE_EXHAUSTED"
    for country in ("PAN", "CRI"):
        stats_live.clocks[country].advance(dt.timedelta(days=1))
    ask(stats_live, "CRI", by_nationality())


def test_cell_key_noise_is_stable_so_averaging_gains_nothing(stats_live) -> None:  # type: ignore[no-untyped-def]
    first = ask(stats_live, "CRM", by_nationality()).message
    second = ask(stats_live, "CRM", by_nationality()).message
    assert [(tuple(c.key), c.value, c.has_value) for c in first.cells] == [
        (tuple(c.key), c.value, c.has_value) for c in second.cells
    ]
    assert first.coverage.perturbed > 0
    assert "cell_key" in first.coverage.disclosure_profile


def test_differential_privacy_budget_refuses_once_spent(stats_live) -> None:  # type: ignore[no-untyped-def]
    first = ask(stats_live, "HND", by_nationality()).message
    assert first.coverage.epsilon_spent == "0.5"
    ask(stats_live, "HND", by_nationality())
    with pytest.raises(PeerError) as caught:
        ask(stats_live, "HND", by_nationality())
    assert caught.value.status_name == "RESOURCE_EXHAUSTED"
    assert "budget" in caught.value.message.lower()


def test_a_second_agreement_does_not_give_a_second_privacy_budget(stats_live) -> None:  # type: ignore[no-untyped-def]
    """Attack: a peer with two DP agreements names one, then the other, in its requests."""
    now = stats_live.runtimes["PAN"].clock.now()
    dp = Disclosure(
        profile="dp",
        dp=DifferentialPrivacy(
            mechanism="discrete_laplace", epsilon_per_query="0.5", budget_per_period="1"
        ),
    )
    install(
        stats_live,
        Agreement(
            id="PAN-HND-DP-2", version=1, parties=("PAN", "HND"), title="t",
            valid_from=now - dt.timedelta(days=1), valid_until=now + dt.timedelta(days=365),
            grants=(grant("PAN", "HND", disclosure=dp),),
        ),
    )  # fmt: skip
    answered = []
    for agreement in ("PAN-HND-DP", "PAN-HND-DP-2") * 2:
        with stats_live.client("HND", "PAN") as client:
            try:
                reply = client.call(
                    AGGREGATE, by_nationality(), stats_pb2.AggregateResponse,
                    purpose="quarterly_matrices", agreement=agreement,
                )  # fmt: skip
            except PeerError as refused:
                assert refused.status_name == "RESOURCE_EXHAUSTED"
                continue
        assert reply.header.agreement == agreement
        answered.append(reply.message.coverage.epsilon_spent)
    assert answered == ["0.5", "0.5"]  # the peer's budget of 1, whichever agreement it names


def test_named_matrix(stats_live) -> None:  # type: ignore[no-untyped-def]
    request = stats_pb2.AggregateRequest(matrix="M01", period="2023Q3", margins=True)
    response = ask(stats_live, "CRI", request).message
    assert list(response.dimensions) == ["nationality", "quarter"]
    assert response.coverage.matrix_version.startswith("crm-matrices")
    assert {c.key[1] for c in response.cells} <= {"2023-Q3", "_T"}


def test_a_named_matrix_keeps_its_own_filters(stats_live) -> None:  # type: ignore[no-untyped-def]
    request = stats_pb2.AggregateRequest(
        matrix="M05",
        period="2023Q3",
        filters=[stats_pb2.Filter(dimension="event_type", values=["detention"])],
    )
    with pytest.raises(PeerError) as caught:
        ask(stats_live, "CRI", request)
    assert caught.value.status_name == "INVALID_ARGUMENT"
    assert "M05 already filters on event_type" in caught.value.message


def test_a_filter_value_no_record_holds_is_refused_not_counted_as_zero(stats_live) -> None:  # type: ignore[no-untyped-def]
    request = stats_pb2.AggregateRequest(
        dataset="encounters",
        measure="persons",
        dimensions=["nationality"],
        period="2023",
        filters=[stats_pb2.Filter(dimension="sex", values=["Female"])],
    )
    with pytest.raises(PeerError) as caught:
        ask(stats_live, "CRI", request)
    assert caught.value.status_name == "INVALID_ARGUMENT"
    assert "'Female' is not a code of sex" in caught.value.message
    assert "did you mean F?" in caught.value.message  # the hint travels in the message


def test_the_cli_answer_says_how_fresh_the_data_are(stats_live) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from node.cli.main import app

    home = str(stats_live.federation.homes["CRI"].root)
    args = ["stats", "query", "--home", home, "--peer", "PAN", "--period", "2023"]
    shown = CliRunner().invoke(app, [*args, "--json"])
    assert shown.exit_code == 0, shown.output
    answer = json.loads(shown.output)
    imported = stats_live.runtimes["PAN"].store.records.summary()[0].as_of
    told = dt.datetime.fromisoformat(answer["as_of"])
    assert abs(told - imported) < dt.timedelta(milliseconds=1)  # as precise as the wire keeps
    table = CliRunner().invoke(app, args, env={"COLUMNS": "100"})
    assert table.exit_code == 0, table.output
    assert f"data as of {answer['as_of']} at PAN" in table.output
