"""The demo's matching steps: synthetic records, filters, and two questions asked from Costa Rica.

Before the nodes start, :func:`prepare_matching` generates small synthetic files for Panama,
Honduras and Costa Rica from one federation seed (so journeys cross borders and the same
persons appear in several countries), imports them through the real importer, builds each
holder's filters, and installs a matching agreement Honduras → Costa Rica (the demo's older
Honduras–Costa Rica agreement has expired).

While the nodes run, :func:`matching_step` has Costa Rica ask, over the network, about

* a person recorded by both Panama and Honduras (name + date of birth, taken from the ground
  truth of the generated files) — identified by both, with a follow-up to Panama returning the
  granted attributes only; and
* a document Panama has an alert on — flagged as a hit in Panama's ``document_alerts``.

Invariants: the data is synthetic and deterministic (fixed seeds); the step uses only the CLI's
client (:class:`~node.matching.client.MatchClient`), so what the demo shows is what
``enlace match`` does.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node.agreements import AgreementBook
from node.ingest.pipeline import ingest
from node.matching.client import MatchClient, MatchReport
from node.matching.filters import Holder
from node.matching.sources import (
    DOCUMENT_DATASETS,
    PERSON_DATASETS,
    document_query,
    person_query,
)
from node.records.generate import generate
from node.runtime import NodeRuntime
from policies.agreement import Agreement, Grant, Quotas
from policies.signatures import SignedAgreement, dump_signed_agreement, sign_agreement

DATA_COUNTRIES = ("PAN", "HND", "CRI")
ENCOUNTERS = 2000
FEDERATION_SEED = 20_260_101
IMPORT_ORDER = ("encounters", "travel_documents", "document_alerts", "persons_of_interest")
CASE = "CRI-DGME-2026-0117"

Say = Callable[[str], None]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _install_hnd_cri(runtimes: dict[str, NodeRuntime], now: dt.datetime) -> str:
    start = (now - dt.timedelta(days=1)).replace(microsecond=0)
    agreement = Agreement(
        id="HND-CRI-MATCH",
        version=1,
        parties=("HND", "CRI"),
        title="Cotejo de identidades Honduras → Costa Rica",
        valid_from=start,
        valid_until=start + dt.timedelta(days=730),
        grants=(
            Grant(
                holder="HND",
                requester="CRI",
                service="match",
                datasets=("travel_documents", "document_alerts", "identities"),
                purposes=("identity_verification", "document_fraud"),
                quotas=Quotas(per_day=20000, per_quarter=500000),
            ),
        ),
    )
    signed = SignedAgreement(agreement)
    for party in agreement.parties:
        signed = sign_agreement(signed, party, runtimes[party].signing_key)
    text = dump_signed_agreement(signed)
    for party in agreement.parties:
        AgreementBook(runtimes[party]).install_text(text, now)
    return agreement.id


def prepare_matching(
    runtimes: dict[str, NodeRuntime], root: Path, now: dt.datetime, say: Say
) -> dict[str, Any]:
    """Generate, import and key the records of the demo's data countries (nodes stopped)."""
    countries = [c for c in DATA_COUNTRIES if c in runtimes]
    prepared: dict[str, Any] = {"countries": {}, "agreements": []}
    for number, country in enumerate(countries):
        files = root / "data" / country.lower()
        generate(country, ENCOUNTERS, 100 + number, files, federation_seed=FEDERATION_SEED)
        runtime = runtimes[country]
        for dataset in IMPORT_ORDER:
            ingest(runtime.store, dataset, [files / f"{dataset}.csv"], now=now)
        holder = Holder(runtime.store, runtime.home, country, runtime.signing_key)
        reports = holder.rebuild(now)
        prepared["countries"][country] = {r.dataset: r.entries for r in reports}
        say(
            f"   {country}: {ENCOUNTERS:,} encounters imported; filters "
            + ", ".join(f"{r.dataset} {r.entries:,}" for r in reports)
        )
    if {"HND", "CRI"} <= set(runtimes):
        prepared["agreements"].append(_install_hnd_cri(runtimes, now))
    return prepared


def pick_person(root: Path) -> dict[str, str] | None:
    """A person recorded by both Panama and Honduras, with a birth date in both records."""
    seen: dict[str, dict[str, dict[str, str]]] = {}
    for country in ("PAN", "HND"):
        folder = root / "data" / country.lower()
        if not (folder / "encounters.csv").exists():
            return None  # a demo run without that country (--countries)
        people = {r["person_id"]: r for r in _rows(folder / "encounters.csv") if r["birth_date"]}
        for truth in _rows(folder / "ground_truth.csv"):
            person = people.get(truth["local_id"])
            if truth["dataset"] == "encounters" and person is not None:
                seen.setdefault(truth["global_person_id"], {})[country] = person
    for records in seen.values():
        if len(records) == 2:
            return records["PAN"]
    return None


def pick_alert(root: Path) -> dict[str, str] | None:
    rows = _rows(root / "data" / "pan" / "document_alerts.csv")
    fraudulent = [r for r in rows if r["alert_type"].startswith("fraud")]
    chosen = fraudulent or rows
    return chosen[0] if chosen else None


def _table(report: MatchReport, say: Say) -> list[dict[str, Any]]:
    rows = [o.to_dict() for o in report.outcomes]
    for o in report.outcomes:
        mark = "HIT    " if o.status == "hit" else f"{o.status:<7}"
        extra = o.strength if o.status == "hit" else ("" if o.status == "no hit" else o.detail)
        if o.status == "not granted":
            extra = "agreement expired" if "expired" in o.detail else "no matching grant"
        say(f"     {o.peer:<4} {o.dataset:<20} {mark} {extra}")
    return rows


def matching_step(runtimes: dict[str, NodeRuntime], root: Path, say: Say) -> dict[str, Any]:
    """From Costa Rica: identify a person seen in Panama and Honduras; flag a document."""
    result: dict[str, Any] = {}
    person, alert = pick_person(root), pick_alert(root)
    if "CRI" not in runtimes or person is None or alert is None:
        needed = ", ".join(c for c in DATA_COUNTRIES if c not in runtimes) or "CRI, PAN, HND"
        say(f"   (skipped: identifying a person from Costa Rica needs {needed} in --countries)")
        return result
    with MatchClient(runtimes["CRI"], timeout=10.0) as client:
        query = person_query(person["surname"], person["given_names"], person["birth_date"])
        say(f"   CRI asks every peer about {query.describe()} (identity_verification)")
        report = client.run([query], PERSON_DATASETS, purpose="identity_verification")
        result["person"] = {"query": query.describe(), "results": _table(report, say)}
        result["identified_by"] = sorted({o.peer for o in report.hits()})
        followups = []
        for hit in report.hits():
            if hit.peer != "PAN" or hit.dataset != "identities":
                continue
            record = client.follow_up(hit, case_reference=CASE, purpose="identity_verification")
            followups.append(record.to_dict())
            values = ", ".join(f"{k}={v}" for k, v in (record.released or {}).items())
            say(f"   follow-up with PAN (case {CASE}): {record.status}: {values}")
        result["followups"] = followups
        doc = document_query(alert["document_number"], alert["issuing_state"])
        say(f"   CRI checks document {doc.describe()} (document_fraud)")
        report = client.run([doc], DOCUMENT_DATASETS, purpose="document_fraud")
        result["document"] = {"query": doc.describe(), "results": _table(report, say)}
        result["document_flagged_by"] = sorted(
            {o.peer for o in report.hits() if o.dataset == "document_alerts"}
        )
        # The hit says PAN holds an alert on the document; the follow-up says what kind.
        result["document_followups"] = []
        for hit in report.hits():
            if hit.peer != "PAN" or hit.dataset != "document_alerts":
                continue
            record = client.follow_up(hit, case_reference=CASE, purpose="document_fraud")
            result["document_followups"].append(record.to_dict())
            values = ", ".join(f"{k}={v}" for k, v in (record.released or {}).items())
            say(f"   follow-up with PAN on the alert (case {CASE}): {record.status}: {values}")
    return result
