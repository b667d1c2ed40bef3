"""The newcomer's first command: ``enlace demo`` runs a real federation and exits cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_runs_every_node_and_exits_cleanly(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    completed = subprocess.run(
        [sys.executable, "-m", "node.cli.main", "demo", "--dir", str(target), "--json"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout)
    assert set(result["countries"]) == {"PAN", "CRI", "HND", "MEX", "CRM"}
    assert result["all_reachable"] is True
    assert len(result["pings"]) == 5 * 4
    assert all(code == 0 for code in result["exit_codes"].values())
    for country, audit in result["audit"].items():
        assert audit["status"] == "ok", country
        assert audit["entries"] >= 8
    by_request = {d["request"]: d for d in result["decisions"]}
    assert by_request["CRI asks PAN for match on travel_documents (identity_verification)"][
        "allowed"
    ]
    expired = by_request["CRI asks HND for stats on encounters (quarterly_matrices)"]
    assert not expired["allowed"] and "expired" in expired["why"]
    assert result["fetched_agreement"] == "PAN-CRI-MATCH"
    # Costa Rica identifies a person seen in Panama and Honduras, and a flagged document.
    matching = result["matching"]
    assert matching["identified_by"] == ["HND", "PAN"]
    assert matching["document_flagged_by"] == ["PAN"]
    (followup,) = matching["followups"]
    assert followup["status"] == "released" and followup["peer"] == "PAN"
    assert set(followup["released"]) == {"first_seen_quarter", "event_type", "nationality_basis"}
    (alert,) = matching["document_followups"]  # what kind of alert: the demo picks a fraud
    assert alert["status"] == "released" and alert["released"] == {"alert_type": "fraudulent"}
    # Costa Rica screens a generated flight manifest (PAXLST): hits equal the ground truth.
    screening = matching["manifest"]
    assert screening["matches_truth"] is True, screening
    assert screening["travellers"] == 40 and screening["status"] == "hit"
    assert len(screening["hits"]) >= 5
    assert any(h.startswith("PAN:document_alerts") for hs in screening["hits"].values() for h in hs)
    # Costa Rica identifies an undocumented person by a face probe; Mexico is refused.
    biometrics = result["biometrics"]
    assert biometrics["identified_by"] == ["HND", "PAN"]
    assert {f["status"] for f in biometrics["followups"]} == {"released"}
    assert all(f["released"]["nationality"] not in ("", "XXX") for f in biometrics["followups"])
    assert biometrics["mex_refused"] == "PERMISSION_DENIED"
    # The Secretariat's pull with Honduras down is partial and flagged; the retry completes it.
    st = result["secretariat"]
    assert st["pull"]["status"] == "partial" and st["pull"]["missing"] == ["HND"]
    assert st["retry"] == {"pull_id": st["pull"]["pull_id"], "status": "complete", "missing": []}
    assert set(st["freshness"]) == {"PAN", "CRI", "HND", "MEX"}
    assert "secretariat/2024Q3/regional-M01-2024Q3.sdmx.csv" in st["files"]  # one per matrix
    assert "secretariat/2024Q3/regional-M01-2024Q3.xlsx" in st["files"]
    assert (target / st["brief"]["pdf"]).read_bytes().startswith(b"%PDF")
    assert set(st["brief"]["members"].values()) == {"complete"}
    # Every node wrote its log and left no process behind (exit codes collected above).
    for country in result["countries"]:
        assert (target / country.lower() / "serve.log").exists()


def test_demo_refuses_to_delete_a_directory_it_did_not_create(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data.txt").write_text("keep me")
    completed = subprocess.run(
        [sys.executable, "-m", "node.cli.main", "demo", "--dir", str(precious)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert "refusing to delete it" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert (precious / "data.txt").read_text() == "keep me"
