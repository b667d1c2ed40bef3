"""Explanations: why a request is allowed (the rule) or denied (every reason), in lines.

Why: ``enlace policy explain`` answers the question operators, focal points and auditors ask
most: "why did Panama refuse us?" or "under which clause did we answer Costa Rica?". The
text is built from the very assessment :func:`policies.decision.evaluate` uses, so an
explanation can never disagree with the decision the node took.

Invariants:
* ``Explanation.allowed`` equals whether :func:`~policies.decision.evaluate` would return a
  decision for the same inputs; ``decision``/``reasons`` are exactly what it returns/raises.
* An allowed explanation names the agreement id, version and full SHA-256 hash, the grant
  (``grant #n``, 1-based, i.e. ``grants[n-1]`` in the document) and its direction; a denied
  one has one line per :class:`~policies.errors.DenialReason`, with its hint.
* Pure: no I/O; ``now`` is injected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from policies.canonical import format_timestamp
from policies.decision import Assessment, Decision, Request, UnusableAgreement, assess
from policies.diff import country_name, describe_disclosure, service_name, who
from policies.errors import DenialReason
from policies.quota import QUOTA_UNITS
from policies.signatures import VerifiedAgreement, VerifiedRevocation


@dataclass(frozen=True)
class Explanation:
    """Human-readable account of a decision; ``str()`` gives the lines joined."""

    allowed: bool
    lines: tuple[str, ...]
    decision: Decision | None
    reasons: tuple[DenialReason, ...]

    def __str__(self) -> str:
        return "\n".join(self.lines)


def _what(request: Request) -> str:
    text = (
        f"{who(request.holder)} for {service_name(request.service)} ('{request.service}') on "
        f"dataset '{request.dataset}' for purpose '{request.purpose}'"
    )
    if request.dimensions:
        text += ", by " + ", ".join(f"'{d}'" for d in sorted(request.dimensions))
    if request.attributes:
        text += ", returning " + ", ".join(f"'{a}'" for a in sorted(request.attributes))
    return text


def _limit(limit: int | None, unit: str) -> str:
    return "no limit" if limit is None else f"{limit:,} {unit}"


def _allowed_lines(assessment: Assessment, decision: Decision) -> list[str]:
    request = assessment.request
    chosen = next(a for a in assessment.agreements if a.verified.hash == decision.agreement_hash)
    verified = chosen.verified
    agreement = verified.agreement
    grant = decision.grant
    unit = QUOTA_UNITS.get(grant.service, "units")
    lines = [
        f"ALLOWED: {who(request.requester)} may ask {_what(request)}.",
        f"Rule: agreement '{agreement.id}' version {agreement.version}, "
        f"sha256 {agreement.hash}, grant #{decision.grant_index + 1} "
        f"({grant.holder} → {grant.requester}: {country_name(grant.holder)} holds the data, "
        f"{country_name(grant.requester)} asks).",
        f"In force: from {format_timestamp(agreement.valid_from)} until "
        f"{format_timestamp(agreement.valid_until)}; signed by "
        + " and ".join(f"{p} (key {k})" for p, k in verified.key_ids.items())
        + "; not revoked.",
        f"Grant covers: datasets {', '.join(grant.datasets)}; purposes "
        f"{', '.join(grant.purposes)}"
        + (f"; dimensions {', '.join(grant.dimensions)}" if grant.dimensions else "")
        + (f"; attributes {', '.join(grant.attributes)}" if grant.attributes else "")
        + ".",
        f"Quotas: {_limit(grant.quotas.per_day, unit)} per UTC day, "
        f"{_limit(grant.quotas.per_quarter, unit)} per quarter (counted by the node).",
    ]
    if grant.disclosure is not None:
        lines.append(
            "Disclosure control: " + ", ".join(describe_disclosure(grant.disclosure)) + "."
        )
    if grant.service == "followup":
        lines.append(
            f"Follow-up needs a human approval at {country_name(grant.holder)}."
            if grant.followup_requires_approval
            else "Follow-up is answered without a human approval."
        )
    return lines


def _denied_lines(assessment: Assessment) -> list[str]:
    request = assessment.request
    named = f" under agreement '{request.agreement_id}'" if request.agreement_id else ""
    lines = [f"DENIED: {who(request.requester)} may not ask {_what(request)}{named}."]
    for reason in assessment.reasons:
        line = f"- [{reason.element}] {reason.message}"
        if reason.hint:
            line += f" What to do: {reason.hint}."
        lines.append(line)
    if assessment.agreements:
        states = [
            f"'{a.verified.id}' version {a.verified.version} "
            f"({'in force' if a.in_force else 'not in force'})"
            for a in assessment.agreements
        ]
        lines.append("Agreements between the two parties: " + "; ".join(states) + ".")
    return lines


def explain(
    request: Request,
    agreements: Sequence[VerifiedAgreement],
    revocations: Sequence[VerifiedRevocation],
    now: datetime,
    *,
    unusable: Sequence[UnusableAgreement] = (),
) -> Explanation:
    """Why ``request`` is allowed or denied at ``now``, as lines a person can read."""
    assessment = assess(request, agreements, revocations, now, unusable=unusable)
    if assessment.decision is not None:
        lines = _allowed_lines(assessment, assessment.decision)
        return Explanation(True, tuple(lines), assessment.decision, ())
    return Explanation(False, tuple(_denied_lines(assessment)), None, assessment.reasons)
