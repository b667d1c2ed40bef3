"""A holder without a filter for a dataset is asked once per minute, not on every query.

PAN publishes travel documents only; CRI fans out over travel documents and document alerts.
The "not published" answer is repeated from the querier's memory until it is a minute old,
then PAN is asked again — and once PAN has published, its alerts are matched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from match_support import holder, install, load_records, match_agreement, read_csv, synthetic

from node.errors import PeerError
from node.matching.client import UNPUBLISHED_TTL, MatchClient
from node.matching.sources import document_query

PURPOSE = "identity_verification"
DATASETS = ["travel_documents", "document_alerts"]


@pytest.fixture
def fed(live_federation_factory: Callable[..., Any], tmp_path_factory: Any) -> Any:
    """PAN serving a travel-documents filter only; ``live.query`` asks for one of its alerts."""
    live = live_federation_factory()
    pan = live.runtimes["PAN"]
    now = live.clocks["PAN"].now()
    files = synthetic(tmp_path_factory.getbasetemp(), "PAN", 300, 5)
    load_records(pan, files, now)
    holder(pan).rebuild(now, ["travel_documents"])
    install(live.runtimes, match_agreement("PAN", "CRI", now), now)
    live.serve("PAN")
    alert = read_csv(files / "document_alerts.csv")[0]
    live.query = [document_query(alert["document_number"], alert["issuing_state"])]
    return live


def test_a_missing_filter_is_remembered_for_a_minute(fed: Any) -> None:
    live, query = fed, fed.query
    pan, cri = live.runtimes["PAN"], live.runtimes["CRI"]

    with MatchClient(cri, workers=4, crypto_workers=1) as client:

        def ask() -> dict[str, str]:
            report = client.run(query, DATASETS, purpose=PURPOSE, peers=["PAN"])
            return {o.dataset: o.status for o in report.outcomes}

        calls_at_pan = pan.store.audit_count()
        travel = ask()["travel_documents"]
        assert travel in ("hit", "no hit")
        assert client.filters.get("PAN", "document_alerts") is None
        # The travel-documents sync and Evaluate, and the alerts sync PAN refused.
        assert pan.store.audit_count() - calls_at_pan == 3

        for elapsed in (dt.timedelta(0), UNPUBLISHED_TTL - dt.timedelta(seconds=1)):
            live.clocks["CRI"].advance(elapsed)
            live.clocks["PAN"].advance(elapsed)
            before = pan.store.audit_count()
            outcomes = client.run(query, DATASETS, purpose=PURPOSE, peers=["PAN"]).outcomes
            assert pan.store.audit_count() - before == 1  # only the Evaluate
            refused = next(o for o in outcomes if o.dataset == "document_alerts")
            assert refused.status == "error", refused
            assert "has not published" in refused.detail

        holder(pan).rebuild(live.clocks["PAN"].now(), ["document_alerts"])
        live.clocks["CRI"].advance(dt.timedelta(seconds=1))  # the memory is a minute old
        live.clocks["PAN"].advance(dt.timedelta(seconds=1))
        before = pan.store.audit_count()
        assert ask() == {"travel_documents": travel, "document_alerts": "hit"}
        assert pan.store.audit_count() - before == 3  # Evaluate, sync, Evaluate


def test_only_the_answer_no_filter_is_remembered_and_a_sync_forgets_it(
    fed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pan, cri = fed.runtimes["PAN"], fed.runtimes["CRI"]
    with MatchClient(cri, workers=4, crypto_workers=1) as client:

        def alerts() -> Any:
            report = client.run(fed.query, ["document_alerts"], purpose=PURPOSE, peers=["PAN"])
            [outcome] = report.outcomes
            return outcome

        # Each repetition is a new error: one object raised again would keep every query's
        # frames (and the inputs in them) on its traceback.
        errors: list[BaseException] = []
        for _ in range(2):
            with pytest.raises(PeerError, match="has not published") as caught:
                client._cached("PAN", "document_alerts", PURPOSE)
            errors.append(caught.value)
        assert errors[0] is not errors[1]

        holder(pan).rebuild(fed.clocks["PAN"].now(), ["document_alerts"])
        client.sync("PAN", "document_alerts", PURPOSE)  # an explicit sync always asks
        assert alerts().status == "hit"

        # Another refusal (here a holder whose directory expired) is asked again every time.
        asked: list[str] = []

        def refuse(peer: str, dataset: str, purpose: str, *, full: bool = False) -> Any:
            asked.append(dataset)
            raise PeerError("PAN: the directory expired", peer=peer,
                            status_name="FAILED_PRECONDITION")  # fmt: skip

        monkeypatch.setattr(client, "sync", refuse)
        for _ in range(3):
            with pytest.raises(PeerError, match="directory expired"):
                client._cached("PAN", "persons_of_interest", PURPOSE)
        assert asked == ["persons_of_interest"] * 3
