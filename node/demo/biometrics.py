"""The demo's biometric step: Costa Rica identifies an undocumented person by a face probe.

Before the nodes start, :func:`prepare_biometrics` imports the face templates of the synthetic
files the matching step generated (``DATA/<country>/biometric_templates.csv``; nothing is
generated twice), installs biometric agreements Panama → Costa Rica and Honduras → Costa Rica
(probes, and a follow-up releasing identity attributes without operator approval), and builds
the holders' galleries for Costa Rica ahead of time, as ``enlace biometric refresh`` does.

While the nodes run, :func:`biometric_step` has Costa Rica take the template it captured of a
person it recorded with an *unknown* (or presumed) nationality and no document, and probe every
peer with protected codes (:class:`~node.biometrics.client.BiometricClient`, what
``enlace match biometric`` does). Panama and Honduras, which enrolled the same person, answer a
band; Mexico has no biometric agreement and is not asked. Costa Rica follows up each hit with a
case reference and learns the nationality the other country recorded. Mexico then probes Panama
anyway and is refused (PERMISSION_DENIED).

Invariants: the data is synthetic and deterministic (the matching step's fixed seeds); the
generator's ground truth is used only to *choose* an interesting person for the script, never
to answer: the answers come from the holders' galleries over the network.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from node.biometrics.client import BiometricClient, ProbeOutcome
from node.biometrics.followup import BIOMETRIC_ATTRIBUTES
from node.biometrics.holder import DATASET, GalleryHolder
from node.demo.agreements import sign_and_install
from node.ingest.pipeline import ingest
from node.runtime import NodeRuntime
from policies.agreement import Agreement, Grant, Quotas

HOLDERS = ("PAN", "HND")
QUERIER = "CRI"
PURPOSE = "identity_verification"
CASE = "CRI-DGME-2026-0131"

Say = Callable[[str], None]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _data(root: Path, country: str) -> Path:
    return root / "data" / country.lower()


def biometric_agreement(holder: str, requester: str, now: dt.datetime) -> Agreement:
    start = (now - dt.timedelta(days=1)).replace(microsecond=0)
    return Agreement(
        id=f"{holder}-{requester}-BIO",
        version=1,
        parties=(holder, requester),
        title=f"Cotejo biométrico {holder} → {requester}",
        valid_from=start,
        valid_until=start + dt.timedelta(days=730),
        grants=(
            Grant(
                holder=holder,
                requester=requester,
                service="biometric",
                datasets=(DATASET,),
                purposes=(PURPOSE,),
                quotas=Quotas(per_day=5000, per_quarter=100000),
            ),
            Grant(
                holder=holder,
                requester=requester,
                service="followup",
                datasets=(DATASET,),
                purposes=(PURPOSE,),
                attributes=BIOMETRIC_ATTRIBUTES,
                followup_requires_approval=False,
                quotas=Quotas(per_day=100, per_quarter=2000),
            ),
        ),
    )


def prepare_biometrics(
    runtimes: dict[str, NodeRuntime], root: Path, now: dt.datetime, say: Say
) -> dict[str, Any]:
    """Import templates, install the agreements and build galleries (nodes stopped)."""
    prepared: dict[str, Any] = {"templates": {}, "agreements": [], "galleries": {}}
    for country in (*HOLDERS, QUERIER):
        files = _data(root, country) / "biometric_templates.csv"
        if country not in runtimes or not files.exists():
            continue
        report = ingest(runtimes[country].store, DATASET, [files], now=now)
        prepared["templates"][country] = report.total("added")
    if QUERIER not in runtimes:
        return prepared
    for holder in HOLDERS:
        if holder not in runtimes or holder not in prepared["templates"]:
            continue
        agreement = biometric_agreement(holder, QUERIER, now)
        sign_and_install(agreement, runtimes, now)
        prepared["agreements"].append(agreement.id)
        runtime = runtimes[holder]
        gallery = GalleryHolder(runtime.store, runtime.home, holder, runtime.directory)
        built = gallery.refresh(QUERIER, now)
        prepared["galleries"][holder] = built.codes
        say(
            f"   {holder}: {prepared['templates'][holder]:,} face templates; gallery for "
            f"{QUERIER} of {built.codes:,} {gallery.state().bits}-bit codes "
            f"(epoch {built.epoch}, key {built.key_id})"
        )
    return prepared


def pick_undocumented(root: Path) -> dict[str, str] | None:
    """A template Costa Rica holds of a person it recorded without a document and with an
    unknown (else presumed) nationality, whom Panama or Honduras enrolled too."""
    enrolled: set[str] = set()
    for holder in HOLDERS:
        folder = _data(root, holder)
        if not (folder / "biometric_templates.csv").exists():
            continue
        local = {r["person_id"] for r in _rows(folder / "biometric_templates.csv")}
        enrolled |= {
            r["global_person_id"]
            for r in _rows(folder / "ground_truth.csv")
            if r["dataset"] == "encounters" and r["local_id"] in local
        }
    folder = _data(root, QUERIER)
    if not (folder / "biometric_templates.csv").exists():
        return None
    shared = {
        r["local_id"]
        for r in _rows(folder / "ground_truth.csv")
        if r["dataset"] == "encounters" and r["global_person_id"] in enrolled
    }
    basis = {
        r["person_id"]: r["nationality_basis"]
        for r in _rows(folder / "encounters.csv")
        if not r["document_number"]
    }
    candidates = [
        r
        for r in _rows(folder / "biometric_templates.csv")
        if r["person_id"] in shared and basis.get(r["person_id"]) in ("unknown", "presumed")
    ]
    candidates.sort(key=lambda r: (basis[r["person_id"]] != "unknown", r["record_id"]))
    return candidates[0] if candidates else None


def _vector(runtime: NodeRuntime, record_id: str) -> np.ndarray:
    (row,) = runtime.store.biometrics.templates([record_id])
    return np.frombuffer(row[2], dtype="<f4").astype(np.float64)


def outcome_line(outcome: ProbeOutcome) -> str:
    """One peer's answer to the probe; a refusal's reason is printed whole, never cut."""
    shown = outcome.status.upper() if outcome.hit else outcome.status
    said = outcome.agreement if outcome.hit else outcome.detail
    return f"     {outcome.peer:<4} {shown:<12} {said}"


def biometric_step(runtimes: dict[str, NodeRuntime], root: Path, say: Say) -> dict[str, Any]:
    """From Costa Rica: identify an undocumented person by a face probe; Mexico is refused."""
    result: dict[str, Any] = {}
    chosen = pick_undocumented(root)
    if QUERIER not in runtimes or chosen is None:
        say(f"   (skipped: a face probe needs {QUERIER} and PAN or HND in --countries)")
        return result
    probe = _vector(runtimes[QUERIER], chosen["record_id"])
    with BiometricClient(runtimes[QUERIER], timeout=10.0) as client:
        say(
            f"   CRI probes every peer with the face of person {chosen['person_id']} "
            "(no document, nationality unknown here); only protected codes leave CRI"
        )
        report = client.search(probe[None, :], PURPOSE, labels=[chosen["person_id"]])
        for o in report.outcomes:
            say(outcome_line(o))
        result["probe"] = chosen["person_id"]
        result["results"] = [o.to_dict() | {"hit_reference": ""} for o in report.outcomes]
        result["identified_by"] = sorted(o.peer for o in report.hits())
        followups = []
        for hit in report.hits():
            record = client.follow_up(
                hit.peer,
                purpose=PURPOSE,
                case_reference=CASE,
                reference=hit.reference,
                epoch=hit.epoch,
            )
            followups.append(record.to_dict())
            values = ", ".join(f"{k}={v}" for k, v in (record.released or {}).items())
            say(f"   follow-up with {hit.peer} (case {CASE}): {record.status}: {values}")
        result["followups"] = followups
    if "MEX" in runtimes and "PAN" in runtimes:
        with BiometricClient(runtimes["MEX"], timeout=10.0) as client:
            refused = client.search(probe[None, :], PURPOSE, peers=["PAN"], ask_all=True)
        (outcome,) = refused.outcomes
        result["mex_refused"] = outcome.code
        say(f"   MEX probes PAN without a biometric agreement: {outcome.code or outcome.status}")
    return result
