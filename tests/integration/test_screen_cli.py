"""``enlace screen manifest`` as an operator runs it, on files a carrier broke in transit.

Why: the exit status is what an APIS inbox or an officer acts on, so every way a damaged file
could read as "clear" is checked through the real command against a real federation: PAN holds
generated records and serves them; CRI screens.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from match_support import holder, install, load_records, match_agreement, synthetic
from typer.testing import CliRunner

from node.manifests.csv_manifest import write_csv_manifest
from node.manifests.paxlst_writer import write_paxlst
from node.manifests.sample import sample_manifest

EXIT_ERROR, EXIT_CLEAR, EXIT_HIT, EXIT_INCOMPLETE = 1, 0, 3, 4


def screen(home: Path, *args: str) -> Any:
    from node.cli.main import app

    result = CliRunner().invoke(app, ["screen", "manifest", *args, "--home", str(home)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def federation(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """PAN serves 600 generated records to CRI under an agreement; HND has none with CRI."""
    live = live_federation_factory(("PAN", "CRI", "HND"))
    now = live.clocks["PAN"].now()
    pan = synthetic(tmp_path_factory.getbasetemp(), "PAN", 600, 41)
    load_records(live.runtimes["PAN"], pan, now)
    holder(live.runtimes["PAN"]).rebuild(now)
    live.serve("PAN")
    install(live.runtimes, match_agreement("PAN", "CRI", now), now)
    manifest, planted = sample_manifest(
        {"PAN": pan}, travellers=12, seed=3, departure=now + dt.timedelta(hours=2)
    )
    assert planted
    return {"live": live, "now": now, "manifest": manifest,
            "home": live.federation.homes["CRI"].root,
            "hnd": live.federation.homes["HND"].root}  # fmt: skip


def one_line_paxlst(federation: dict[str, Any]) -> str:
    text = write_paxlst(federation["manifest"], recipient="CRI", prepared_at=federation["now"])
    return text.replace("'\n", "'")


def test_a_lost_segment_terminator_refuses_the_file_naming_it_and_the_segment(
    federation: dict[str, Any], tmp_path: Path
) -> None:
    text = one_line_paxlst(federation)
    second = text.index("NAD+FL", text.index("NAD+FL") + 1)
    flight = tmp_path / "CM0417.edi"
    flight.write_text(text[: second - 1] + text[second:], encoding="utf-8")  # its ' is lost
    result = screen(federation["home"], str(flight))
    assert result.exit_code == EXIT_ERROR
    assert "CM0417.edi" in result.output and "UNT counts" in result.output
    assert "CLEAR" not in result.output
    assert not (tmp_path / "CM0417.edi.screening.csv").exists()
    intact = tmp_path / "intact.edi"
    intact.write_text(text, encoding="utf-8")
    assert screen(federation["home"], str(intact)).exit_code == EXIT_HIT


def test_a_stray_quote_in_a_bus_csv_is_not_screened_and_not_clear(
    federation: dict[str, Any], tmp_path: Path
) -> None:
    rows = write_csv_manifest(federation["manifest"]).splitlines()
    rows[2] = rows[2].replace(",", ',"', 1)  # the second traveller's quote is never closed
    bus = tmp_path / "bus.csv"
    bus.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = screen(federation["home"], str(bus), "--json")
    assert result.exit_code in (EXIT_HIT, EXIT_INCOMPLETE), result.output
    report = json.loads(result.stdout)  # stderr: the progress
    assert report["status"] != "clear" and len(report["travellers"]) == len(rows) - 2
    (rejected,) = report["rejected"]
    assert rejected["location"] == "line 3" and "not closed" in rejected["reasons"][0]


def test_an_overlong_csv_cell_is_an_error_with_its_line_not_a_crash(
    federation: dict[str, Any], tmp_path: Path
) -> None:
    rows = write_csv_manifest(federation["manifest"]).splitlines()
    rows[4] += "," + "x" * 140_000
    bus = tmp_path / "bus_long.csv"
    bus.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = screen(federation["home"], str(bus))
    assert result.exit_code == EXIT_ERROR
    assert "bus_long.csv" in result.output and "line 5" in result.output


def test_an_unwritable_report_path_is_refused_before_anything_is_sent(
    federation: dict[str, Any], tmp_path: Path
) -> None:
    flight = tmp_path / "flight.edi"
    flight.write_text(one_line_paxlst(federation), encoding="utf-8")
    out = tmp_path / "no" / "such" / "dir" / "rep"
    result = screen(federation["home"], str(flight), "--out", str(out))
    assert result.exit_code == EXIT_ERROR
    assert "--out" in result.output and "does not exist" in result.output
    from node.cli.main import app

    kept = CliRunner().invoke(app, ["screen", "list", "--home", str(federation["home"]), "--json"])
    assert json.loads(kept.stdout) == []  # nothing was screened


def test_reports_that_fail_after_screening_still_show_the_hits_and_exit_3(
    federation: dict[str, Any], tmp_path: Path
) -> None:
    flight = tmp_path / "flight.edi"
    flight.write_text(one_line_paxlst(federation), encoding="utf-8")
    # Passes the check (the name is free in a writable directory) but cannot be created.
    (tmp_path / "rep.screening.csv").symlink_to(tmp_path / "gone" / "rep.csv")
    result = screen(federation["home"], str(flight), "--out", str(tmp_path / "rep"))
    assert result.exit_code == EXIT_HIT, result.output
    assert "HIT:" in result.output and "reports not written" in result.output
    assert "enlace screen show M" in result.output
    as_json = screen(federation["home"], str(flight), "--out", str(tmp_path / "rep"), "--json")
    assert as_json.exit_code == EXIT_HIT
    report = json.loads(as_json.stdout)
    assert report["hits"] > 0 and "reports not written" in report["reports_error"]


def test_a_screening_no_peer_is_granted_for_is_not_clear(
    federation: dict[str, Any], tmp_path: Path
) -> None:
    flight = tmp_path / "flight.edi"
    flight.write_text(one_line_paxlst(federation), encoding="utf-8")
    result = screen(federation["hnd"], str(flight), "--json")  # HND has no agreement at all
    assert result.exit_code == EXIT_INCOMPLETE, result.output
    report = json.loads(result.stdout)
    assert report["elements"] == 0 and report["status"] == "incomplete"
    assert report["not_answered"] == len(report["travellers"]) > 0
    assert {t["summary"] for t in report["travellers"]} == {"NOT SCREENED: no peer is granted"}
    text = screen(federation["hnd"], str(flight))
    assert text.exit_code == EXIT_INCOMPLETE and "INCOMPLETE" in text.output


def test_the_reports_a_screening_writes_are_noted_for_deletion_with_it(
    federation: dict[str, Any], tmp_path: Path
) -> None:
    from node.cli.main import app
    from node.clock import ManualClock
    from node.runtime import open_runtime
    from node.server.jobs import NodeJobs

    flight = tmp_path / "flight.edi"
    flight.write_text(one_line_paxlst(federation), encoding="utf-8")
    result = screen(federation["home"], str(flight), "--out", str(tmp_path / "rep"), "--json")
    assert result.exit_code == EXIT_HIT, result.output
    reports = [Path(p) for p in json.loads(result.stdout)["reports"]]
    assert len(reports) == 2 and all(p.exists() for p in reports)
    nothing = CliRunner().invoke(app, ["screen", "purge", "--home", str(federation["home"]),
                                       "--json"])  # fmt: skip
    assert json.loads(nothing.stdout) == {"purged": [], "reports_deleted": [], "reports_kept": []}
    # The retention (30 days) ends: the serving node's hourly job deletes the manifest and the
    # reports; the input file, which the node did not write, stays.
    later = ManualClock(dt.datetime.now(dt.UTC) + dt.timedelta(days=31))
    runtime = open_runtime(federation["live"].federation.homes["CRI"], later)
    try:
        jobs = NodeJobs(runtime)
        jobs.leader.check()
        jobs.scheduler.get_job("manifest-purge").func()
        assert runtime.store.manifests.stored() == []
    finally:
        jobs.leader.release()
        runtime.close()
    assert not any(p.exists() for p in reports) and flight.exists()


def test_a_peer_down_is_named_with_its_reason(federation: dict[str, Any], tmp_path: Path) -> None:
    federation["live"].servers.pop("PAN").stop(grace=None)
    flight = tmp_path / "flight.edi"
    flight.write_text(one_line_paxlst(federation), encoding="utf-8")
    result = screen(federation["home"], str(flight), "--json")
    assert result.exit_code == EXIT_INCOMPLETE, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "incomplete"
    (failure,) = [e for e in report["peer_errors"] if e["dataset"] == "travel_documents"]
    assert failure["peer"] == "PAN" and failure["reason"]
    assert failure["travellers"] == len(report["travellers"])
    text = screen(federation["home"], str(flight))
    assert f"not answered PAN travel_documents ({failure['travellers']} traveller(s)): " in (
        text.output
    )
