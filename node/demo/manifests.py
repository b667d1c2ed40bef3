"""The demo's manifest step: Costa Rica screens an incoming flight's PAXLST against the peers.

After the matching step, :func:`manifest_step` builds a 40-traveller PAXLST for a Panama City →
San José flight from the demo's generated files (a few travellers taken from Panama's and
Honduras's travel documents, alert lists and persons of interest; the rest invented), reads it
back through the PAXLST reader, screens it from Costa Rica with the same code as
``enlace screen manifest``, keeps the result in Costa Rica's store, and compares the hits with
the ground truth computed from the peers' files and the datasets their agreements grant.

Invariants: deterministic travellers (fixed seed); only the CLI's code path is used; the step
reports, it never raises on a mismatch (the e2e test asserts ``matches_truth``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from node.manifests.paxlst import read_paxlst
from node.manifests.paxlst_writer import write_paxlst
from node.manifests.retention import expiry
from node.manifests.sample import expected_hits, sample_manifest
from node.manifests.screen import save_screening, screen_manifest
from node.matching.client import MatchClient
from node.runtime import NodeRuntime

Say = Callable[[str], None]
TRAVELLERS = 40
SEED = 11
PURPOSE = "identity_verification"
#: What the demo's agreements let Costa Rica match at each holder (node/demo/agreements.py and
#: node/demo/matching.py).
GRANTED = {
    "PAN": ("travel_documents", "document_alerts", "persons_of_interest", "identities"),
    "HND": ("travel_documents", "document_alerts", "identities"),
}


def manifest_step(runtimes: dict[str, NodeRuntime], root: Path, say: Say) -> dict[str, Any]:
    """Screen one generated flight manifest from Costa Rica; hits vs the ground truth."""
    peers = {c: root / "data" / c.lower() for c in GRANTED if c in runtimes}
    if "CRI" not in runtimes or not all(
        (p / "travel_documents.csv").exists() for p in peers.values()
    ):
        say("   (no manifest screened: that needs CRI in --countries)")
        return {}
    runtime = runtimes["CRI"]
    now = runtime.clock.now().replace(microsecond=0)
    manifest, planted = sample_manifest(
        peers, travellers=TRAVELLERS, seed=SEED, departure=now, kind="aircraft"
    )
    path = root / "manifests" / "CM0417.edi"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(write_paxlst(manifest, recipient="CRI", prepared_at=now), encoding="utf-8")
    parsed = read_paxlst(path.read_bytes(), today=now.date())
    say(f"   CRI screens flight {parsed.transport} {parsed.departure_port}→{parsed.arrival_port}"
        f" ({len(parsed.travellers)} travellers, PAXLST) against every peer")  # fmt: skip
    with MatchClient(runtime, timeout=30.0) as client:
        screening = screen_manifest(client, parsed, purpose=PURPOSE)
    manifest_id = save_screening(
        runtime.store, screening, now=now, expires_at=expiry(runtime.store, now)
    )
    found = {
        r.traveller.position: sorted(f"{o.peer}:{o.dataset}" for o in r.hits())
        for r in screening.travellers
        if r.hits()
    }
    truth = {
        position: sorted(f"{p}:{d}" for p, d in hits)
        for position, hits in expected_hits(parsed, peers, GRANTED).items()
        if hits
    }
    for position, hits in found.items():
        traveller = parsed.travellers[position - 1]
        say(f"     #{position:<3} {traveller.name[:28]:<28} HIT {', '.join(hits)}")
    say(f"   {len(found)} of {len(parsed.travellers)} travellers hit "
        f"({screening.elements} elements, {screening.seconds:.2f} s); "
        f"{'matches' if found == truth else 'DIFFERS FROM'} the ground truth; kept as "
        f"{manifest_id}")  # fmt: skip
    return {
        "file": str(path),
        "manifest_id": manifest_id,
        "travellers": len(parsed.travellers),
        "planted": len(planted),
        "status": screening.status,
        "exit_code": screening.exit_code,
        "hits": found,
        "expected": truth,
        "matches_truth": found == truth,
        "seconds": round(screening.seconds, 3),
    }
