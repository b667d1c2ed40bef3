"""Shared set-up for the matching integration tests: agreements, records and filters.

Records come from the synthetic generator (one small federation, generated once per test
session) and are imported through the real importer; filters are built by the real holder.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from node.agreements import AgreementBook
from node.ingest.pipeline import ingest
from node.matching.filters import Holder
from node.runtime import NodeRuntime
from node.store.followup_store import FollowUpRecord
from policies.agreement import Agreement, Grant, Quotas
from policies.signatures import SignedAgreement, dump_signed_agreement, sign_agreement

MATCH_DATASETS = ("travel_documents", "document_alerts", "persons_of_interest", "identities")
PURPOSES = ("identity_verification", "document_fraud")
IMPORT_ORDER = ("encounters", "travel_documents", "document_alerts", "persons_of_interest")


def match_agreement(
    holder: str,
    requester: str,
    now: dt.datetime,
    *,
    datasets: Sequence[str] = MATCH_DATASETS,
    purposes: Sequence[str] = PURPOSES,
    per_day: int | None = 100_000,
    followup: bool = True,
    attributes: Sequence[str] = ("first_seen_quarter", "event_type", "alert_type"),
    approval: bool = False,
    agreement_id: str = "",
) -> Agreement:
    grants = [
        Grant(
            holder=holder,
            requester=requester,
            service="match",
            datasets=tuple(datasets),
            purposes=tuple(purposes),
            quotas=Quotas(per_day=per_day, per_quarter=None),
        )
    ]
    if followup:
        grants.append(
            Grant(
                holder=holder,
                requester=requester,
                service="followup",
                datasets=tuple(datasets),
                purposes=tuple(purposes),
                attributes=tuple(attributes),
                followup_requires_approval=approval,
                quotas=Quotas(per_day=50, per_quarter=None),
            )
        )
    start = (now - dt.timedelta(days=1)).replace(microsecond=0)
    return Agreement(
        id=agreement_id or f"{holder}-{requester}-MATCH-TEST",
        version=1,
        parties=(holder, requester),
        title="Matching test agreement",
        valid_from=start,
        valid_until=start + dt.timedelta(days=365),
        grants=tuple(grants),
    )


def install(runtimes: dict[str, NodeRuntime], agreement: Agreement, now: dt.datetime) -> None:
    signed = SignedAgreement(agreement)
    for party in agreement.parties:
        signed = sign_agreement(signed, party, runtimes[party].signing_key)
    text = dump_signed_agreement(signed)
    for party in agreement.parties:
        AgreementBook(runtimes[party]).install_text(text, now)


@cache
def synthetic(root: Path, country: str, encounters: int, seed: int) -> Path:
    from node.records.generate import generate

    out = root / f"{country}-{encounters}-{seed}"
    if not (out / "encounters.csv").exists():
        generate(country, encounters, seed, out)
    return out


def load_records(runtime: NodeRuntime, files: Path, now: dt.datetime) -> None:
    for dataset in IMPORT_ORDER:
        ingest(runtime.store, dataset, [files / f"{dataset}.csv"], now=now)


def pan_with_records(live_federation_factory: Any, root: Path) -> Any:
    """A live PAN–CRI federation whose PAN imported 300 synthetic encounters (seed 37), not yet
    keyed for matching: what the rebuild tests start from."""
    live = live_federation_factory(("PAN", "CRI"))
    load_records(live.runtimes["PAN"], synthetic(root, "PAN", 300, 37), live.clocks["PAN"].now())
    return live


def holder(runtime: NodeRuntime) -> Holder:
    return Holder(runtime.store, runtime.home, runtime.config.country, runtime.signing_key)


def serving_holder(
    live: Any,
    root: Path,
    encounters: int,
    seed: int,
    *,
    publish: Sequence[str] = MATCH_DATASETS,
    incremental: bool = False,
    **agreement: Any,
) -> Any:
    """PAN of ``live`` holding ``encounters`` synthetic records with the filters of ``publish``
    rebuilt (or all brought up to date incrementally), an agreement with CRI installed on both
    sides (``agreement`` goes to :func:`match_agreement`), and PAN serving. The generated files'
    directory is ``live.files``."""
    now = live.clocks["PAN"].now()
    files = synthetic(root, "PAN", encounters, seed)
    load_records(live.runtimes["PAN"], files, now)
    if incremental:
        holder(live.runtimes["PAN"]).update(now)
    else:
        holder(live.runtimes["PAN"]).rebuild(now, publish)
    install(live.runtimes, match_agreement("PAN", "CRI", now, **agreement), now)
    live.serve("PAN")
    live.files = files
    return live


def read_csv(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def outbound(runtime: NodeRuntime) -> list[FollowUpRecord]:
    return runtime.store.matching.followups(direction="outbound")
