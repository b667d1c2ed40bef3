"""``enlace screen manifest --case`` through the real command against a real federation: how a
follow-up that is not made is shown, kept and exits.

Why: as for ``enlace match person --case`` (tests/integration/test_match_case_cli.py), the
follow-ups are what the operator asked for. One that fails is in the Follow-ups table, in the
JSON (``status: failed`` with the reason) and in the manifest's trail, and the command exits 1
— after the results are printed and the report files written, since the screening stands.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_support import enlace
from match_support import holder, install, load_records, match_agreement, synthetic

from node.manifests.paxlst_writer import write_paxlst
from node.manifests.sample import sample_manifest
from node.manifests.screen import EXIT_FOLLOW_UP_FAILED, EXIT_HIT
from policies.agreement import Quotas

CASE = "CRI-S-1"


@pytest.fixture
def flight(
    live_federation_factory: Callable[..., Any],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> dict[str, Any]:
    """PAN serves 600 generated records to CRI, one follow-up a day; a PAXLST of 12
    travellers, some of them PAN's."""
    live = live_federation_factory(("PAN", "CRI"))
    now = live.clocks["PAN"].now()
    pan = synthetic(tmp_path_factory.getbasetemp(), "PAN", 600, 41)
    load_records(live.runtimes["PAN"], pan, now)
    holder(live.runtimes["PAN"]).rebuild(now)
    agreement = match_agreement("PAN", "CRI", now)
    match, followup = agreement.grants
    one_a_day = dataclasses.replace(followup, quotas=Quotas(per_day=1, per_quarter=None))
    install(live.runtimes, dataclasses.replace(agreement, grants=(match, one_a_day)), now)
    live.serve("PAN")
    manifest, planted = sample_manifest(
        {"PAN": pan}, travellers=12, seed=3, departure=now + dt.timedelta(hours=2)
    )
    assert planted
    path = tmp_path / "CM0417.edi"
    path.write_text(write_paxlst(manifest, recipient="CRI", prepared_at=now), encoding="utf-8")
    return {"home": str(live.federation.homes["CRI"].root), "file": path}


def _screen(flight: dict[str, Any], out: Path, *extra: str) -> Any:
    return enlace("screen", "manifest", str(flight["file"]), "--home", flight["home"],
                  "--case", CASE, "--out", str(out), *extra)  # fmt: skip


def test_a_failed_screening_follow_up_is_in_the_table_json_and_trail_and_exits_5(
    flight: dict[str, Any], tmp_path: Path
) -> None:
    first = _screen(flight, tmp_path / "first", "--json")  # spends the day's one follow-up
    assert first.exit_code in (EXIT_FOLLOW_UP_FAILED, EXIT_HIT), first.output
    assert [f["status"] for f in json.loads(first.stdout)["followups"]].count("released") == 1

    again = _screen(flight, tmp_path / "again", "--json")
    assert again.exit_code == EXIT_FOLLOW_UP_FAILED, again.output  # a hit: never 1
    report = json.loads(again.stdout)
    assert report["status"] == "hit" and report["hits"] > 0  # the screening stands
    failed = [f for f in report["followups"] if f["status"] == "failed"]
    assert failed, report["followups"]
    for f in failed:
        assert f["case_reference"] == CASE and f["peer"] == "PAN" and f["position"] > 0
        assert "quota" in f["reason"].lower()
    for f in report["followups"]:
        assert f["status"] in ("failed", "not asked"), f
    # The grant names no attribute of persons_of_interest: that hit is not asked, and says why.
    (skipped,) = [f for f in report["followups"] if f["status"] == "not asked"]
    assert skipped["dataset"] == "persons_of_interest"
    assert "grants no follow-up attribute" in skipped["reason"]
    reports = [Path(p) for p in report["reports"]]  # written all the same
    assert [p.name for p in reports] == ["again.screening.csv", "again.screening.json"]
    assert all(p.exists() for p in reports)

    shown = enlace("screen", "show", report["manifest_id"], "--home", flight["home"], "--json")
    trail = [e["detail"] for e in json.loads(shown.stdout)["events"] if e["action"] == "followup"]
    assert [(e["position"], e["status"]) for e in trail] == [
        (f["position"], "failed") for f in failed
    ]

    table = _screen(flight, tmp_path / "table")
    assert table.exit_code == EXIT_FOLLOW_UP_FAILED, table.output
    text = " ".join(table.output.split())
    assert f"Follow-ups (case {CASE})" in text and "failed" in text and "HIT:" in text
    assert f"{len(failed)} of {len(report['followups'])} follow-up(s) failed" in text
    assert (tmp_path / "table.screening.csv").exists()
