"""Agreement enforcement across the node's services, over real gRPC (deny by default).

Service-specific refusals of the data services live with each service's tests; this file
covers what applies to every service: the agreement must be in force, not revoked, the one
the request names, and only its parties may fetch it.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from enlace.v1 import agreements_pb2, node_pb2, stats_pb2
from node.agreements import AgreementBook
from node.demo.agreements import sign_and_install
from node.errors import PeerError
from node.ingest.pipeline import ingest
from node.records.generate import generate
from policies.agreement import Agreement, Disclosure, Grant, Quotas
from policies.signatures import (
    Revocation,
    dump_revocation,
    load_signed_agreement,
    sign_revocation,
)

AGGREGATE = "/enlace.v1.StatsService/Aggregate"
GET_AGREEMENT = "/enlace.v1.AgreementService/GetAgreement"
EXAMPLE_EQUIVALENCE = Path(__file__).resolve().parents[2] / "docs/examples/equivalence-pan.yaml"


def stats_agreement(agreement_id: str, start: dt.datetime, end: dt.datetime) -> Agreement:
    return Agreement(
        id=agreement_id,
        version=1,
        parties=("PAN", "CRI"),
        title="t",
        valid_from=start,
        valid_until=end,
        grants=(
            Grant(
                holder="PAN",
                requester="CRI",
                service="stats",
                datasets=("encounters",),
                purposes=("quarterly_matrices",),
                dimensions=("nationality",),
                disclosure=Disclosure(profile="standard"),
                quotas=Quotas(per_day=None, per_quarter=None),
            ),
        ),
    )


def install(live, agreement: Agreement) -> str:  # type: ignore[no-untyped-def]
    return sign_and_install(agreement, live.runtimes, live.runtimes["PAN"].clock.now())


def ask_stats(live, agreement: str = ""):  # type: ignore[no-untyped-def]
    request = stats_pb2.AggregateRequest(
        dataset="encounters", measure="persons", dimensions=["nationality"], period="2023"
    )
    with live.client("CRI", "PAN") as client:
        return client.call(
            AGGREGATE,
            request,
            stats_pb2.AggregateResponse,
            purpose="quarterly_matrices",
            agreement=agreement,
        )


@pytest.fixture
def enforced(live, tmp_path: Path):  # type: ignore[no-untyped-def]
    pan = live.runtimes["PAN"]
    generate("PAN", 1500, 5, tmp_path / "data")
    ingest(pan.store, "encounters", [tmp_path / "data/encounters.csv"], now=pan.clock.now())
    return live


def test_only_an_agreement_in_force_allows_and_the_answer_cites_it(enforced) -> None:  # type: ignore[no-untyped-def]
    now = enforced.runtimes["PAN"].clock.now()
    install(
        enforced,
        stats_agreement("FUTURE", now + dt.timedelta(days=10), now + dt.timedelta(days=20)),
    )
    with pytest.raises(PeerError) as caught:
        ask_stats(enforced)
    assert caught.value.status_name == "PERMISSION_DENIED"
    assert "FUTURE" in caught.value.message
    install(
        enforced, stats_agreement("NOW", now - dt.timedelta(days=1), now + dt.timedelta(days=30))
    )
    reply = ask_stats(enforced)
    assert reply.header.agreement == "NOW"
    assert reply.message.coverage.agreement_id == "NOW"
    # The same agreement expires while the nodes run: refused from that moment on.
    for country in ("PAN", "CRI"):
        enforced.clocks[country].advance(dt.timedelta(days=31))
    with pytest.raises(PeerError) as caught:
        ask_stats(enforced)
    assert caught.value.status_name == "PERMISSION_DENIED"
    assert "expired" in caught.value.message


def test_a_revoked_agreement_allows_nothing(enforced) -> None:  # type: ignore[no-untyped-def]
    pan = enforced.runtimes["PAN"]
    now = pan.clock.now()
    text = install(
        enforced,
        stats_agreement("PAN-CRI", now - dt.timedelta(days=1), now + dt.timedelta(days=90)),
    )
    ask_stats(enforced)
    agreement = load_signed_agreement(text).agreement
    revocation = sign_revocation(
        Revocation.for_agreement(agreement, "CRI", now, "ended by Costa Rica"),
        enforced.runtimes["CRI"].signing_key,
    )
    AgreementBook(pan).install_text(dump_revocation(revocation), now)  # the holder installs it
    with pytest.raises(PeerError) as caught:
        ask_stats(enforced)
    assert caught.value.status_name == "PERMISSION_DENIED"
    assert "revoked" in caught.value.message


def test_a_request_naming_another_agreement_is_told_which_one_fits(enforced) -> None:  # type: ignore[no-untyped-def]
    now = enforced.runtimes["PAN"].clock.now()
    install(
        enforced,
        stats_agreement("PAN-CRI", now - dt.timedelta(days=1), now + dt.timedelta(days=90)),
    )
    with pytest.raises(PeerError) as caught:
        ask_stats(enforced, agreement="SOMETHING-ELSE")
    assert caught.value.status_name == "PERMISSION_DENIED"
    assert "PAN-CRI" in caught.value.message
    assert ask_stats(enforced, agreement="PAN-CRI").header.agreement == "PAN-CRI"


def test_only_the_parties_can_fetch_an_agreement(enforced) -> None:  # type: ignore[no-untyped-def]
    now = enforced.runtimes["PAN"].clock.now()
    text = install(
        enforced,
        stats_agreement("PAN-CRI", now - dt.timedelta(days=1), now + dt.timedelta(days=90)),
    )
    request = agreements_pb2.GetAgreementRequest(agreement_id="PAN-CRI")
    with enforced.client("CRI", "PAN") as client:
        reply = client.call(GET_AGREEMENT, request, agreements_pb2.GetAgreementResponse)
    assert reply.message.document == text
    with enforced.client("HND", "PAN") as client, pytest.raises(PeerError) as caught:
        client.call(GET_AGREEMENT, request, agreements_pb2.GetAgreementResponse)
    assert caught.value.status_name == "NOT_FOUND"
    # The refusal tells HND nothing it could tell apart from a non-existent agreement.
    with enforced.client("HND", "PAN") as client, pytest.raises(PeerError) as missing:
        client.call(
            GET_AGREEMENT,
            agreements_pb2.GetAgreementRequest(agreement_id="NO-SUCH"),
            agreements_pb2.GetAgreementResponse,
        )
    assert caught.value.message.replace("PAN-CRI", "X") == missing.value.message.replace(
        "NO-SUCH", "X"
    )


def test_get_info_publishes_datasets_and_the_equivalence_table(enforced, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shutil.copy(EXAMPLE_EQUIVALENCE, enforced.runtimes["PAN"].home.root / "equivalence.yaml")

    def get_info() -> node_pb2.GetInfoResponse:
        with enforced.client("CRI", "PAN") as client:  # CRI holds no agreement with PAN
            return client.call(
                "/enlace.v1.NodeService/GetInfo",
                node_pb2.GetInfoRequest(),
                node_pb2.GetInfoResponse,
            ).message

    info = get_info()
    assert [d.name for d in info.datasets] == ["encounters"]
    assert info.data_as_of and info.codelists_version
    published = json.loads(info.equivalence_table_json)
    assert published["node"] == "PAN"
    assert published["mappings"]["event_type"]["APREHENDIDO"] == "encounter"
    # No count crosses without an agreement and disclosure control: one more record changes
    # nothing a peer receives but the time of the latest import.
    pan = enforced.runtimes["PAN"]
    header, first = (tmp_path / "data/encounters.csv").read_text().splitlines()[:2]
    one_more = tmp_path / "one.csv"
    one_more.write_text(f"{header}\n{first.replace('PANE', 'PANX', 1)}\n")
    enforced.clocks["PAN"].advance(dt.timedelta(minutes=1))
    ingest(pan.store, "encounters", [one_more], now=pan.clock.now())
    after = get_info()
    assert after.data_as_of > info.data_as_of
    for before_set, after_set in zip(info.datasets, after.datasets, strict=True):
        before_set.as_of, after_set.as_of = "", ""
    info.data_as_of, after.data_as_of = "", ""
    assert after.SerializeToString(deterministic=True) == info.SerializeToString(deterministic=True)
