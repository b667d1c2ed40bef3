"""Matching end to end over real gRPC with mutual TLS: hit / no-hit, follow-up, audit.

PAN holds synthetic records imported through the importer and filters built by the holder;
CRI queries through :class:`~node.matching.client.MatchClient`, exactly as the CLI does.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from match_support import (
    holder,
    install,
    load_records,
    match_agreement,
    read_csv,
    serving_holder,
    synthetic,
)

from crypto.oprf import blind
from enlace.v1 import match_pb2
from node.audit import verify_chain
from node.matching.client import MatchClient
from node.matching.keys import document_input
from node.matching.peers import EVALUATE
from node.matching.sources import document_query, person_query

PURPOSE = "identity_verification"


@pytest.fixture
def fed(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    return serving_holder(
        live_federation_factory(), tmp_path_factory.getbasetemp(), 400, 11, incremental=True
    )


def _first(rows: list[dict[str, str]], **want: str) -> dict[str, str]:
    return next(r for r in rows if all(r[k] == v for k, v in want.items()))


def test_documents_persons_and_alerts_are_found_and_misses_are_not(fed: Any) -> None:
    files: Path = fed.files  # type: ignore[attr-defined]
    document = read_csv(files / "travel_documents.csv")[0]
    alert = read_csv(files / "document_alerts.csv")[0]
    queries = [
        document_query(document["document_number"], document["issuing_state"]),
        document_query("ZZ9999999", "HTI"),
        document_query(alert["document_number"], alert["issuing_state"]),
        person_query(document["surname"], document["given_names"], document["birth_date"]),
        person_query("NOBODY KNOWN", "NEVER SEEN", "1901-01-01"),
    ]
    with MatchClient(fed.runtimes["CRI"]) as client:
        docs = client.run(queries[:3], ["travel_documents", "document_alerts"], purpose=PURPOSE)
        persons = client.run(queries[3:], ["identities"], purpose=PURPOSE)
    pan = {(o.query, o.dataset): o for o in docs.outcomes if o.peer == "PAN"}
    assert pan[(0, "travel_documents")].status == "hit"
    assert pan[(0, "travel_documents")].strength == "document"
    assert pan[(1, "travel_documents")].status == "no hit"
    assert pan[(2, "document_alerts")].status == "hit"
    assert pan[(1, "document_alerts")].status == "no hit"
    # HND has no agreement with CRI: shown as not granted, never called.
    assert {o.status for o in docs.outcomes if o.peer == "HND"} == {"not granted"}
    person = {o.query: o for o in persons.outcomes if o.peer == "PAN"}
    assert person[0].status == "hit" and person[0].strength.startswith("name+")
    assert person[1].status == "no hit"


def test_holder_audit_counts_elements_and_records_nothing_identifying(fed: Any) -> None:
    files: Path = fed.files  # type: ignore[attr-defined]
    document = read_csv(files / "travel_documents.csv")[1]
    number = document["document_number"]
    with MatchClient(fed.runtimes["CRI"]) as client:
        client.run(
            [document_query(number, document["issuing_state"])],
            ["travel_documents"],
            purpose=PURPOSE,
            peers=["PAN"],
        )
    entries = [
        e.record
        for e in fed.runtimes["PAN"].store.iter_audit()
        if e.record.method == EVALUATE and e.record.direction == "inbound"
    ]
    assert len(entries) == 1
    entry = entries[0]
    assert entry.peer == "CRI" and entry.status == "OK"
    assert entry.agreement_id == "PAN-CRI-MATCH-TEST"
    assert entry.extra["elements"] == 1 and entry.extra["dataset"] == "travel_documents"
    assert entry.extra["purpose"] == PURPOSE and entry.extra["epoch"] == 1
    stored = json.dumps(dict(entry.extra)) + entry.request_header.decode() + entry.reason
    assert number not in stored and document["surname"] not in stored
    verify_chain(fed.runtimes["PAN"].store.iter_audit())
    verify_chain(fed.runtimes["CRI"].store.iter_audit())


def test_two_queries_for_one_input_are_unlinkable_but_finalise_alike(fed: Any) -> None:
    files: Path = fed.files  # type: ignore[attr-defined]
    document = read_csv(files / "travel_documents.csv")[2]
    value = document_input(document["document_number"], document["issuing_state"])
    with MatchClient(fed.runtimes["CRI"]) as client:
        cached = client.sync("PAN", "travel_documents", PURPOSE)
        first, second = blind([value]), blind([value])
        assert first.blinded_elements != second.blinded_elements
        outputs = []
        for state in (first, second):
            reply = client.client("PAN").call(
                EVALUATE,
                match_pb2.EvaluateRequest(
                    dataset="travel_documents",
                    epoch=cached.manifest.epoch,
                    blinded_elements=list(state.blinded_elements),
                ),
                match_pb2.EvaluateResponse,
                purpose=PURPOSE,
            )
            assert reply.message.evaluated_elements != state.blinded_elements
            outputs += state.finalize(list(reply.message.evaluated_elements))
    assert outputs[0] == outputs[1]
    assert cached.filter.contains(outputs[0])


def test_follow_up_releases_only_granted_attributes(fed: Any) -> None:
    files: Path = fed.files  # type: ignore[attr-defined]
    encounters = read_csv(files / "encounters.csv")
    person = _first(encounters)
    born = next(r for r in encounters if r["birth_date"])
    with MatchClient(fed.runtimes["CRI"]) as client:
        report = client.run(
            [person_query(born["surname"], born["given_names"], born["birth_date"])],
            ["identities"],
            purpose=PURPOSE,
            peers=["PAN"],
        )
        (hit,) = report.hits()
        record = client.follow_up(hit, case_reference="CRI-2026-0042", purpose=PURPOSE)
    assert record.status == "released"
    assert set(record.released or {}) == {"first_seen_quarter", "event_type"}
    assert record.released and record.released["first_seen_quarter"][:2] in ("19", "20")
    assert person  # the first encounter row exists
    inbound = fed.runtimes["PAN"].store.matching.followups()
    assert [f.case_reference for f in inbound] == ["CRI-2026-0042"]
    entry = [
        e.record
        for e in fed.runtimes["PAN"].store.iter_audit()
        if e.record.method.endswith("/FollowUp")
    ][-1]
    assert entry.extra["case_reference"] == "CRI-2026-0042"
    assert entry.extra["output_sha256"] == inbound[0].output_sha256
    assert entry.extra["outcome"] == "released"


def test_holder_rebuild_keeps_answers_and_publishes_a_new_version(fed: Any) -> None:
    pan = holder(fed.runtimes["PAN"])
    state = pan.state()
    before = pan.published("travel_documents", state)
    assert before is not None
    reports = pan.rebuild(fed.clocks["PAN"].now() + dt.timedelta(seconds=1), ["travel_documents"])
    after = pan.published("travel_documents", state)
    assert after is not None and after.version == before.version + 1
    assert reports[0].entries == reports[0].keys_added > 0
    # Same key, same records: the same filter content (only the version moved).
    assert after.encoded[24:] == before.encoded[24:]


def _write_documents(path: Path, rows: list[dict[str, str]]) -> Path:
    import csv

    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_imports_update_the_filter_and_peers_sync_by_delta(fed: Any, tmp_path: Path) -> None:
    from node.ingest.pipeline import ingest

    files: Path = fed.files  # type: ignore[attr-defined]
    rows = read_csv(files / "travel_documents.csv")
    changed = dict(rows[0], document_number="CD7654321")  # a correction of record 0
    added = dict(rows[1], record_id="PAND999999999", document_number="EF1112223")
    old = document_query(rows[0]["document_number"], rows[0]["issuing_state"])
    queries = [
        old,
        document_query("CD7654321", rows[0]["issuing_state"]),
        document_query("EF1112223", rows[1]["issuing_state"]),
    ]
    pan, now = fed.runtimes["PAN"], fed.clocks["PAN"].now()
    with MatchClient(fed.runtimes["CRI"]) as client:
        before = client.run(queries, ["travel_documents"], purpose=PURPOSE, peers=["PAN"])
        assert [o.status for o in before.outcomes] == ["hit", "no hit", "no hit"]
        upload = _write_documents(tmp_path / "more.csv", [changed, added])
        ingest(pan.store, "travel_documents", [upload], now=now, replace=True)
        (report,) = holder(pan).update(now, ["travel_documents"])
        assert (report.records_keyed, report.records_removed) == (2, 1)
        after = client.run(queries, ["travel_documents"], purpose=PURPOSE, peers=["PAN"])
    assert [o.status for o in after.outcomes] == ["no hit", "hit", "hit"]
    syncs = [
        e.record.extra
        for e in pan.store.iter_audit()
        if e.record.method.endswith("/SyncFilter") and e.record.status == "OK"
    ]
    assert [s["sync"] for s in syncs] == ["full", "delta"]
    assert syncs[1]["filter_version"] == syncs[0]["filter_version"] + 1


def test_follow_up_waits_for_the_operator_where_the_agreement_says_so(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from node.matching.followup import decide

    live = live_federation_factory()
    now = live.clocks["PAN"].now()
    files = synthetic(tmp_path_factory.getbasetemp(), "PAN", 400, 11)
    load_records(live.runtimes["PAN"], files, now)
    holder(live.runtimes["PAN"]).rebuild(now, ["travel_documents"])
    install(live.runtimes, match_agreement("PAN", "CRI", now, approval=True), now)
    live.serve("PAN")
    rows = read_csv(files / "travel_documents.csv")
    queries = [document_query(r["document_number"], r["issuing_state"]) for r in rows[:2]]
    store = live.runtimes["PAN"].store
    with MatchClient(live.runtimes["CRI"]) as client:
        report = client.run(queries, ["travel_documents"], purpose=PURPOSE, peers=["PAN"])
        first, second = report.hits()
        asked = [
            client.follow_up(hit, case_reference=f"CRI-{n}", purpose=PURPOSE)
            for n, hit in enumerate((first, second))
        ]
        assert [a.status for a in asked] == ["pending", "pending"]
        assert all(a.released is None for a in asked)
        decide(store, asked[0].followup_id, approve=True, by="oficial.pan", note="", now=now)
        decide(store, asked[1].followup_id, approve=False, by="oficial.pan",
               note="case not documented", now=now)  # fmt: skip
        with pytest.raises(Exception, match="not pending"):
            decide(store, asked[1].followup_id, approve=True, by="x", note="", now=now)
        fetched = [
            client.follow_up(
                hit,
                case_reference=a.case_reference,
                purpose=PURPOSE,
                attributes=a.attributes,
                followup_id=a.followup_id,
            )
            for hit, a in zip((first, second), asked, strict=True)
        ]
    assert fetched[0].status == "released"
    assert set(fetched[0].released or {}) == {"first_seen_quarter"}
    assert fetched[1].status == "denied" and fetched[1].released is None
    held = {r.followup_id: r for r in store.matching.followups()}
    assert held[asked[0].followup_id].decided_by == "oficial.pan"
    assert held[asked[1].followup_id].note == "case not documented"
    outbound = {r.followup_id: r.status for r in live.runtimes["CRI"].store.matching.followups(
        direction="outbound")}  # fmt: skip
    assert outbound == {asked[0].followup_id: "released", asked[1].followup_id: "denied"}


def test_voprf_mode_proves_every_evaluation(fed: Any) -> None:
    files: Path = fed.files  # type: ignore[attr-defined]
    document = read_csv(files / "travel_documents.csv")[3]
    query = document_query(document["document_number"], document["issuing_state"])
    holder(fed.runtimes["PAN"]).rotate(fed.clocks["PAN"].now(), mode="voprf")
    with MatchClient(fed.runtimes["CRI"]) as client:
        report = client.run([query], ["travel_documents"], purpose=PURPOSE, peers=["PAN"])
        cached = client.filters.get("PAN", "travel_documents")
    assert [o.status for o in report.outcomes] == ["hit"]
    assert cached is not None and cached.manifest.mode == "voprf"
    assert cached.manifest.epoch == 2 and cached.manifest.public_key_bytes is not None
