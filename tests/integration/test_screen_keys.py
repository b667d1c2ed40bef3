"""Screening sends the reduced keys over real gRPC: the hits are those of the ground truth under
every birth-date policy's promise, queries that would send the same keys go out once (the
holder's audit counts the elements it evaluated), and namesakes get the same answers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from match_support import holder, install, load_records, match_agreement, synthetic

from node.manifests.model import Traveller
from node.manifests.paxlst import read_paxlst
from node.manifests.paxlst_writer import write_paxlst
from node.manifests.sample import expected_hits, sample_manifest
from node.manifests.screen import SCREEN_DATASETS, screen_manifest, traveller_queries
from node.matching.client import MatchClient
from node.matching.sources import query_keys

PURPOSE = "identity_verification"


def _evaluated(runtime: Any) -> int:
    return sum(
        int(e.record.extra.get("elements", 0))
        for e in runtime.store.iter_audit()
        if e.record.method.endswith("/Evaluate") and e.record.status == "OK"
    )


def test_reduced_keys_find_the_ground_truth_and_repeats_go_out_once(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    live = live_federation_factory()
    now = live.clocks["CRI"].now()
    files = synthetic(tmp_path_factory.getbasetemp(), "PAN", 1500, 31)
    load_records(live.runtimes["PAN"], files, now)
    holder(live.runtimes["PAN"]).rebuild(now)
    live.serve("PAN")
    install(live.runtimes, match_agreement("PAN", "CRI", now), now)
    manifest, _ = sample_manifest(
        {"PAN": files}, travellers=30, seed=9, departure=now + dt.timedelta(hours=3)
    )
    # Two namesakes born the same day, with documents of their own, at the end of the list.
    first = next(t for t in manifest.travellers if t.birth_date and t.birth_date.is_complete)
    for offset, number in enumerate(("Q11112222", "Q33334444"), start=1):
        twin = {**first.__dict__, "position": len(manifest.travellers) + offset,
                "document_number": number, "issuing_state": "GTM"}  # fmt: skip
        manifest.travellers.append(Traveller(**twin))
    parsed = read_paxlst(write_paxlst(manifest, recipient="CRI", prepared_at=now).encode(),
                         today=now.date())  # fmt: skip
    peers = {"PAN": files}
    with MatchClient(live.runtimes["CRI"], timeout=30.0) as client:
        covering = screen_manifest(client, parsed, purpose=PURPOSE, peers=["PAN"])
        after_covering = _evaluated(live.runtimes["PAN"])
        finest = screen_manifest(client, parsed, purpose=PURPOSE, peers=["PAN"], dates="finest")

    # The hits are the ground truth's: covering finds what every key would find.
    for screening, policy in ((covering, "covering"), (finest, "finest")):
        found = {r.traveller.position: {(o.peer, o.dataset) for o in r.hits()}
                 for r in screening.travellers}  # fmt: skip
        assert found == expected_hits(parsed, peers, dates=policy), policy
    assert expected_hits(parsed, peers, dates="covering") == expected_hits(
        parsed, peers, dates="every"
    )
    assert sum(1 for r in covering.travellers if r.hits()) >= 5

    # Elements: one per distinct key of each distinct query; the holder evaluated exactly those.
    distinct: set[tuple[bytes, ...]] = set()
    every_key = 0
    for traveller in parsed.screened():
        for query in traveller_queries(traveller):
            keys = query_keys(query, SCREEN_DATASETS)
            distinct.add(tuple(k for d in sorted(keys) for k in keys[d]))
        for query in traveller_queries(traveller, "every"):
            every_key += sum(len(k) for k in query_keys(query, SCREEN_DATASETS).values())
    assert len(distinct) < sum(len(traveller_queries(t)) for t in parsed.screened())
    assert covering.elements == sum(len(keys) for keys in distinct)
    assert covering.elements == after_covering < every_key
    assert finest.elements < covering.elements

    # The namesakes: person results shared, document results their own.
    by_position = {r.traveller.position: r for r in covering.travellers}
    twins = [by_position[t.position] for t in parsed.travellers[-2:]]
    original = by_position[first.position]
    assert [t.traveller.name for t in twins] == [original.traveller.name] * 2
    for twin in twins:
        assert twin.results[("PAN", "identities")] == original.results[("PAN", "identities")]
        assert twin.results[("PAN", "travel_documents")].status == "no hit"
