"""The demo's agreements: a realistic, asymmetric set, signed by both parties and installed.

* Panama grants every member document and identity matching, and follow-ups after a hit;
  Mexico's follow-ups wait for the approval of an operator in Panama.
* Mexico grants Costa Rica statistics, but not matching.
* Every member grants the Secretariat (CRM) statistics for the quarterly matrices, with
  cell-key noise.
* Honduras and Costa Rica had an agreement that has already expired.
Everything not listed is denied, which the demo shows too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from node.agreements import AgreementBook
from node.runtime import NodeRuntime
from policies.agreement import Agreement, Disclosure, Grant, Perturbation, Quotas
from policies.signatures import SignedAgreement, dump_signed_agreement, sign_agreement

STATS_DIMENSIONS = (
    "quarter",
    "month",
    "year",
    "nationality",
    "nationality_basis",
    "event_type",
    "sex",
    "age_group",
    "border_post",
    "care_provided",
    "vulnerability",
)
MATRIX_PURPOSES = ("quarterly_matrices", "regional_brief", "emergency_update")


def stats_grant(holder: str, requester: str, *, perturb: bool = False) -> Grant:
    return Grant(
        holder=holder,
        requester=requester,
        service="stats",
        datasets=("encounters", "matrices"),
        purposes=MATRIX_PURPOSES,
        dimensions=STATS_DIMENSIONS,
        disclosure=Disclosure(
            profile="cell_key" if perturb else "standard",
            min_cell=5,
            secondary=True,
            perturbation=Perturbation(max_noise=2, secret_ref=f"{holder}-cell-key")
            if perturb
            else None,
        ),
        quotas=Quotas(per_day=500, per_quarter=20000),
    )


def match_grants(holder: str, requester: str, *, approval: bool = False) -> list[Grant]:
    """Matching and follow-ups of ``holder``'s records for ``requester``; with ``approval``,
    each follow-up waits for an operator of the holder (``enlace followup approve``)."""
    return [
        Grant(
            holder=holder,
            requester=requester,
            service="match",
            datasets=("travel_documents", "document_alerts", "persons_of_interest", "identities"),
            purposes=("identity_verification", "document_fraud", "smuggling_investigation"),
            quotas=Quotas(per_day=20000, per_quarter=500000),
        ),
        Grant(
            holder=holder,
            requester=requester,
            service="followup",
            datasets=("travel_documents", "identities", "document_alerts"),
            purposes=("identity_verification", "document_fraud"),
            attributes=("first_seen_quarter", "event_type", "nationality_basis", "alert_type"),
            followup_requires_approval=approval,
            quotas=Quotas(per_day=200, per_quarter=5000),
        ),
    ]


def demo_agreements(countries: Iterable[str], now: dt.datetime, st: str = "CRM") -> list[Agreement]:
    members = sorted(countries)
    start = (now - dt.timedelta(days=30)).replace(microsecond=0)
    end = start + dt.timedelta(days=730)
    out: list[Agreement] = []
    for member in members:
        out.append(
            Agreement(
                id=f"{member}-{st}-STATS",
                version=1,
                parties=(member, st),
                title=f"Cuadros trimestrales {member} → Secretaría Técnica",
                valid_from=start,
                valid_until=end,
                # Cell-key noise, as `enlace policy new` drafts: with thresholds alone the
                # members hid margins and totals, the regional sums were lower bounds, and two
                # matrices of one pull differenced to suppressed cells (docs/agreements.md).
                grants=(stats_grant(member, st, perturb=True),),
            )
        )
    if "PAN" in members:
        for member in members:
            if member == "PAN":
                continue
            # Panama's operator approves Mexico's follow-ups: the one pair of the demo where
            # `enlace followup approve` and `deny` can be tried (docs/operator-guide.md).
            grants = match_grants("PAN", member, approval=member == "MEX")
            if member in {"CRI", "HND"}:
                grants += match_grants(member, "PAN")
            out.append(
                Agreement(
                    id=f"PAN-{member}-MATCH",
                    version=1,
                    parties=("PAN", member),
                    title=f"Cotejo de documentos Panamá–{member}",
                    valid_from=start,
                    valid_until=end,
                    grants=tuple(grants),
                )
            )
    if {"MEX", "CRI"} <= set(members):
        out.append(
            Agreement(
                id="MEX-CRI-STATS",
                version=1,
                parties=("MEX", "CRI"),
                title="Estadísticas México → Costa Rica",
                valid_from=start,
                valid_until=end,
                grants=(stats_grant("MEX", "CRI", perturb=True),),
            )
        )
    if {"HND", "CRI"} <= set(members):
        out.append(
            Agreement(
                id="HND-CRI-2024",
                version=1,
                parties=("HND", "CRI"),
                title="Acuerdo Honduras–Costa Rica 2024 (vencido)",
                valid_from=start - dt.timedelta(days=800),
                valid_until=start - dt.timedelta(days=70),
                grants=(stats_grant("HND", "CRI"), *match_grants("HND", "CRI")),
            )
        )
    return out


def sign_and_install(
    agreement: Agreement, runtimes: Mapping[str, NodeRuntime], now: dt.datetime
) -> str:
    """Both parties sign with their own node key and both install it (local federations
    only: in production each directorate signs on its own node)."""
    signed = SignedAgreement(agreement)
    for party in agreement.parties:
        signed = sign_agreement(signed, party, runtimes[party].signing_key)
    text = dump_signed_agreement(signed)
    for party in agreement.parties:
        AgreementBook(runtimes[party]).install_text(text, now)
    return text


def install_demo_agreements(runtimes: dict[str, NodeRuntime], now: dt.datetime) -> list[str]:
    """Install :func:`demo_agreements` on the nodes of their parties."""
    installed: list[str] = []
    for agreement in demo_agreements([c for c in runtimes if c != "CRM"], now):
        sign_and_install(agreement, runtimes, now)
        installed.append(agreement.id)
    return installed
