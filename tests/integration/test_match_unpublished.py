"""A holder without a filter for a dataset is asked once per minute, not on every query.

PAN publishes travel documents only; CRI fans out over travel documents and document alerts.
The "not published" answer is repeated from the querier's memory until it is a minute old,
then PAN is asked again — and once PAN has published, its alerts are matched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from match_support import holder, install, load_records, match_agreement, read_csv, synthetic

from node.matching.client import UNPUBLISHED_TTL, MatchClient
from node.matching.sources import document_query

PURPOSE = "identity_verification"
DATASETS = ["travel_documents", "document_alerts"]


def test_a_missing_filter_is_remembered_for_a_minute(
    live_federation_factory: Callable[..., Any], tmp_path_factory: Any
) -> None:
    live = live_federation_factory()
    pan, cri = live.runtimes["PAN"], live.runtimes["CRI"]
    now = live.clocks["PAN"].now()
    files = synthetic(tmp_path_factory.getbasetemp(), "PAN", 300, 5)
    load_records(pan, files, now)
    holder(pan).rebuild(now, ["travel_documents"])
    install(live.runtimes, match_agreement("PAN", "CRI", now), now)
    live.serve("PAN")
    alert = read_csv(files / "document_alerts.csv")[0]
    query = [document_query(alert["document_number"], alert["issuing_state"])]

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
