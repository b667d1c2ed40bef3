"""``enlace match`` and ``enlace followup`` as an operator uses them: real CLI processes asking
a real node process over mutual TLS, with records imported through ``enlace ingest``."""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from node.demo.federation import create_federation
from node.demo.processes import NodeProcess
from node.records.generate import generate
from node.runtime import open_runtime
from policies.agreement import Agreement, Grant, Quotas
from policies.signatures import SignedAgreement, dump_signed_agreement, sign_agreement

REPO = Path(__file__).resolve().parents[2]


def enlace(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, "-m", "node.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=REPO,
    )
    if ok:
        assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


def _agreement(now: dt.datetime) -> Agreement:
    start = (now - dt.timedelta(days=1)).replace(microsecond=0)
    common = {"holder": "PAN", "requester": "CRI", "purposes": ("identity_verification",)}
    return Agreement(
        id="PAN-CRI-CLI",
        version=1,
        parties=("PAN", "CRI"),
        title="CLI test",
        valid_from=start,
        valid_until=start + dt.timedelta(days=30),
        grants=(
            Grant(service="match", datasets=("travel_documents", "document_alerts",
                  "persons_of_interest", "identities"),
                  quotas=Quotas(per_day=10_000, per_quarter=None), **common),  # type: ignore[arg-type]
            Grant(service="followup", datasets=("identities", "travel_documents"),
                  attributes=("first_seen_quarter",), followup_requires_approval=True,
                  quotas=Quotas(per_day=10, per_quarter=None), **common),  # type: ignore[arg-type]
        ),
    )  # fmt: skip


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_operator_matches_from_the_command_line(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    federation = create_federation(tmp_path / "fed", ("PAN", "CRI"), now)
    homes = {c: str(h.root) for c, h in federation.homes.items()}
    runtimes = {c: open_runtime(federation.homes[c]) for c in ("PAN", "CRI")}
    try:
        signed = SignedAgreement(_agreement(now))
        for party in ("PAN", "CRI"):
            signed = sign_agreement(signed, party, runtimes[party].signing_key)
        text = dump_signed_agreement(signed)
        (tmp_path / "agreement.yaml").write_text(text, encoding="utf-8")
    finally:
        for runtime in runtimes.values():
            runtime.close()
    for party in ("PAN", "CRI"):
        enlace("policy", "install", str(tmp_path / "agreement.yaml"), "--home", homes[party])

    data = tmp_path / "pan-data"
    generate("PAN", 300, 5, data)
    enlace("ingest", "travel_documents", str(data / "travel_documents.csv"), "--home", homes["PAN"])
    rebuilt = json.loads(enlace("match", "rebuild", "--home", homes["PAN"], "--json").stdout)
    assert {r["dataset"] for r in rebuilt} >= {"travel_documents", "identities"}
    # Matching is on: the next import updates the filters by itself.
    imported = enlace("ingest", "encounters", str(data / "encounters.csv"), "--home", homes["PAN"])
    assert "match filter identities: version 2" in imported.stderr

    node = NodeProcess("PAN", federation.homes["PAN"], federation.endpoint("PAN"))
    node.start()
    try:
        node.wait_ready(time.monotonic() + 30)
        document = _rows(data / "travel_documents.csv")[0]
        found: Any = json.loads(
            enlace("match", "document", "--home", homes["CRI"], "--number",
                   document["document_number"], "--country", document["issuing_state"],
                   "--json").stdout
        )  # fmt: skip
        by_dataset = {(r["peer"], r["dataset"]): r["result"] for r in found["results"]}
        assert by_dataset[("PAN", "travel_documents")] == "hit"
        assert by_dataset[("PAN", "document_alerts")] == "no hit"
        assert by_dataset[("CRM", "travel_documents")] == "not granted"

        person = next(r for r in _rows(data / "encounters.csv") if r["birth_date"])
        name = f"{person['surname']}, {person['given_names']}"
        asked = json.loads(
            enlace("match", "person", "--home", homes["CRI"], "--name", name, "--birth-date",
                   person["birth_date"], "--case", "CRI-77", "--json").stdout
        )  # fmt: skip
        assert {(r["peer"], r["dataset"], r["result"]) for r in asked["results"]} >= {
            ("PAN", "identities", "hit")
        }
        (pending,) = asked["followups"]
        assert pending["status"] == "pending"

        listed = json.loads(enlace("followup", "list", "--home", homes["PAN"], "--json").stdout)
        assert [f["case_reference"] for f in listed] == ["CRI-77"]
        enlace("followup", "approve", listed[0]["followup_id"], "--home", homes["PAN"],
               "--by", "supervisor")  # fmt: skip
        fetched = json.loads(
            enlace("followup", "fetch", pending["followup_id"], "--home", homes["CRI"],
                   "--json").stdout
        )  # fmt: skip
        assert fetched["status"] == "released"
        assert list(fetched["released"]) == ["first_seen_quarter"]

        batch = tmp_path / "batch.csv"
        documents = _rows(data / "travel_documents.csv")[:40]
        with batch.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "document_number", "issuing_state"])
            for n, row in enumerate(documents):
                writer.writerow([f"q{n}", row["document_number"], row["issuing_state"]])
            writer.writerow(["fake", "ZZ0000001", "HTI"])
        summary = json.loads(
            enlace("match", "batch", str(batch), "--home", homes["CRI"], "--peer", "PAN",
                   "--json").stdout
        )  # fmt: skip
        results = _rows(Path(summary["results_file"]))
        hits = {r["id"] for r in results if r["dataset"] == "travel_documents"
                and r["result"] == "hit"}  # fmt: skip
        assert hits == {f"q{n}" for n in range(40)}

        usage = json.loads(enlace("match", "usage", "--home", homes["PAN"], "--json").stdout)
        elements = {
            (u["peer"], u["agreement"], u["purpose"], u["dataset"]): u["count"]
            for u in usage
            if u["what"] == "elements"
        }
        assert elements[("CRI", "PAN-CRI-CLI", "identity_verification", "travel_documents")] == 42
        refused = enlace("match", "document", "--home", homes["CRI"], "--number", "X",
                         "--country", "ATLANTIS", ok=False)  # fmt: skip
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
    finally:
        assert node.stop() == 0
