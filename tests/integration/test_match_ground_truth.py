"""On generated data with ground truth: 10,000 document queries, every true match found, no
false hit. Panama holds its travel documents; Costa Rica asks about the documents of Honduras's
files (which share journeying persons with Panama's) and made-up ones, over real gRPC."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from match_support import holder, install, match_agreement, read_csv, synthetic

from node.ingest.pipeline import ingest
from node.matching.client import MatchClient
from node.matching.sources import document_query
from node.records.icao import document_key

QUERIES = 10_000


@pytest.mark.slow
def test_every_true_document_match_is_found_and_nothing_else(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    live = live_federation_factory()
    now = live.clocks["PAN"].now()
    base = tmp_path_factory.getbasetemp()
    pan_files = synthetic(base, "PAN", 6000, 21)
    hnd_files = synthetic(base, "HND", 6000, 22)
    ingest(live.runtimes["PAN"].store, "travel_documents", [pan_files / "travel_documents.csv"],
           now=now)  # fmt: skip
    holder(live.runtimes["PAN"]).rebuild(now, ["travel_documents"])
    install(live.runtimes, match_agreement("PAN", "CRI", now, followup=False), now)
    live.serve("PAN")

    held = {
        document_key(r["document_number"], r["issuing_state"])
        for r in read_csv(pan_files / "travel_documents.csv")
    }
    pool = {
        r["document_key"] for r in read_csv(hnd_files / "ground_truth.csv") if r["document_key"]
    } | {
        document_key(r["document_number"], r["issuing_state"])
        for r in read_csv(hnd_files / "travel_documents.csv")
    }
    rng = random.Random(7)
    candidates = sorted(pool)
    rng.shuffle(candidates)
    while len(candidates) < QUERIES:
        candidates.append(f"HTI|{rng.randrange(10**8, 10**9)}")
    candidates = candidates[:QUERIES]
    expected = [key in held for key in candidates]
    assert sum(expected) >= 200, "the generated files should share many documents"

    queries = [document_query(k.split("|")[1], k.split("|")[0], label=k) for k in candidates]
    with MatchClient(live.runtimes["CRI"], timeout=60.0) as client:
        report = client.run(queries, ["travel_documents"], purpose="identity_verification",
                            peers=["PAN"])  # fmt: skip
    found = {o.query: o.status for o in report.outcomes}
    assert set(found.values()) <= {"hit", "no hit"}
    missed = [candidates[i] for i, e in enumerate(expected) if e and found[i] != "hit"]
    false_hits = [candidates[i] for i, e in enumerate(expected) if not e and found[i] == "hit"]
    assert missed == [] and false_hits == []
    assert report.elements == QUERIES
    evaluated = sum(
        int(e.record.extra.get("elements", 0))
        for e in live.runtimes["PAN"].store.iter_audit()
        if e.record.method.endswith("/Evaluate") and e.record.status == "OK"
    )
    assert evaluated == QUERIES
