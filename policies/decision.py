"""Agreement decisions: may this peer ask this of us, now, and under which agreement?

Why: every service of the node calls :func:`evaluate` (through an :class:`AgreementSet`)
before it touches data, so the rule "only what a signed agreement in force grants" lives in
one place, and a refusal can say *everything* the caller would need to fix.

Semantics (see docs/agreements.md):
* A grant *covers* a request when holder, requester and service are equal, the dataset and
  the purpose are listed, and the requested dimensions and attributes are subsets of the
  granted ones. Nothing else is implied: no wildcards, no inheritance between services.
* An agreement is *in force* at ``now`` when both signatures verified (the caller passes only
  :class:`~policies.agreement.VerifiedAgreement`), ``valid_from <= now < valid_until``, no
  verified revocation of that exact document has ``at <= now``, no later version of the same
  id has started (``valid_from <= now``), and no other document claims the same id and version.
* A request is allowed iff some in-force agreement between the two parties has a covering
  grant; if the request names an agreement, that agreement must be the one. Among several,
  the first by (agreement id, grant order) is cited.
* Agreements the caller holds but may not enforce (:class:`UnusableAgreement`, e.g. their
  stored signatures no longer verify) allow nothing; a refusal names them and says why,
  rather than claiming there is no agreement.

Invariants:
* Deny by default: no agreement, an empty grant list, or a grant with no datasets or no
  purposes allows nothing. Every refusal raises :class:`~policies.errors.Denied` listing
  every reason found; :func:`evaluate` never returns a refusal.
* Pure: no I/O, no clock; ``now`` must be timezone-aware.
* The only bypass is :class:`UnsafeAllowAll`, which logs a WARNING on every use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from policies.agreement import Agreement, Disclosure, Grant, Quotas
from policies.canonical import require_utc
from policies.diff import service_name, who
from policies.errors import DenialReason, Denied
from policies.in_force import agreement_label, agreement_status
from policies.signatures import VerifiedAgreement, VerifiedRevocation

if TYPE_CHECKING:
    from policies.explain import Explanation

logger = logging.getLogger("policies")


@dataclass(frozen=True)
class Request:
    """What a peer asks: ``requester`` wants ``service`` on ``holder``'s ``dataset``."""

    requester: str
    holder: str
    service: str
    dataset: str
    purpose: str
    dimensions: frozenset[str] = frozenset()
    attributes: frozenset[str] = frozenset()
    agreement_id: str | None = None
    units: int = 1

    def __post_init__(self) -> None:
        for name in ("dimensions", "attributes"):
            values = getattr(self, name)
            if isinstance(values, str):
                raise TypeError(f"Request.{name} must be a collection of names, not a string")
            object.__setattr__(self, name, frozenset(values))
        if isinstance(self.units, bool) or not isinstance(self.units, int) or self.units < 1:
            raise ValueError("Request.units must be a positive int")


@dataclass(frozen=True)
class Decision:
    """An allowed request and the rule that allows it (cite ``agreement_hash`` in responses).

    ``grant_index`` is 0-based (``grants[0]`` in the document; "grant #1" in prose).
    """

    allowed: bool
    agreement_id: str
    agreement_version: int
    agreement_hash: str
    grant: Grant
    grant_index: int
    unsafe: bool = False

    @property
    def requires_approval(self) -> bool:
        """True when the holder's operator must approve before answering (follow-up)."""
        return self.grant.service == "followup" and self.grant.followup_requires_approval


@dataclass(frozen=True)
class UnusableAgreement:
    """An agreement the node holds but may not enforce, with why and what to do.

    Why: it allows nothing, exactly like an absent one, but an operator told "there is no
    agreement" would look for the wrong problem; the refusal cites this reason instead.
    """

    agreement: Agreement
    reason: str
    hint: str

    def denial(self) -> DenialReason:
        return DenialReason("agreement", self.reason, self.hint, self.agreement.id)


# --- grants -------------------------------------------------------------------------------


def _quoted(values: Iterable[str]) -> str:
    items = sorted(values)
    return ", ".join(f"'{v}'" for v in items) if items else "none"


def _grant_misses(
    agreement: Agreement, index: int, grant: Grant, request: Request
) -> list[DenialReason]:
    prefix = f"{agreement_label(agreement)}, grant #{index + 1}:"
    aid = agreement.id
    misses: list[DenialReason] = []
    singles = (
        ("dataset", request.dataset, grant.datasets),
        ("purpose", request.purpose, grant.purposes),
    )
    for element, wanted, granted in singles:
        if not granted:
            misses.append(
                DenialReason(
                    element,
                    f"{prefix} it lists no {element}s, so it allows nothing.",
                    "amend the agreement to list what is granted",
                    aid,
                    (wanted,),
                )
            )
        elif wanted not in granted:
            misses.append(
                DenialReason(
                    element,
                    f"{prefix} {element} '{wanted}' is not granted (granted: {_quoted(granted)}).",
                    f"ask for a granted {element}, or amend the agreement",
                    aid,
                    (wanted,),
                    tuple(granted),
                )
            )
    sets = (
        ("dimension", request.dimensions, grant.dimensions),
        ("attribute", request.attributes, grant.attributes),
    )
    for element, wanted_set, granted in sets:
        missing = sorted(wanted_set - set(granted))
        if missing:
            noun = element if len(missing) == 1 else f"{element}s"
            verb = "is" if len(missing) == 1 else "are"
            misses.append(
                DenialReason(
                    element,
                    f"{prefix} {noun} {_quoted(missing)} {verb} not granted "
                    f"(granted: {_quoted(granted)}).",
                    f"drop the {element}s not granted, or amend the agreement",
                    aid,
                    tuple(missing),
                    tuple(granted),
                )
            )
    return misses


@dataclass(frozen=True)
class AgreementAssessment:
    """How one agreement between the two parties relates to the request."""

    verified: VerifiedAgreement
    status: tuple[DenialReason, ...]
    grant_reasons: tuple[DenialReason, ...]
    covering: tuple[int, Grant] | None

    @property
    def in_force(self) -> bool:
        return not self.status

    @property
    def usable(self) -> bool:
        return self.in_force and self.covering is not None

    @property
    def reasons(self) -> tuple[DenialReason, ...]:
        return self.status + (() if self.covering is not None else self.grant_reasons)


def _assess_one(
    verified: VerifiedAgreement,
    request: Request,
    between: Sequence[VerifiedAgreement],
    revocations: Sequence[VerifiedRevocation],
    now: datetime,
) -> AgreementAssessment:
    agreement = verified.agreement
    status = tuple(agreement_status(verified, revocations, now, others=between))
    label, aid = agreement_label(agreement), agreement.id
    direction = [
        (i, g)
        for i, g in enumerate(agreement.grants)
        if g.holder == request.holder and g.requester == request.requester
    ]
    offered = sorted({g.service for _, g in direction})
    matching = [(i, g) for i, g in direction if g.service == request.service]
    reasons: list[DenialReason] = []
    if not agreement.grants:
        reasons.append(
            DenialReason("agreement", f"{label} has no grants, so it allows nothing.", "", aid)
        )
    elif not direction:
        reasons.append(
            DenialReason(
                "party",
                f"{label} grants {who(request.requester)} nothing from {who(request.holder)}.",
                "its grants run in the other direction only",
                aid,
            )
        )
    elif not matching:
        reasons.append(
            DenialReason(
                "service",
                f"{label} does not let {who(request.requester)} ask {who(request.holder)} for "
                f"{service_name(request.service)} ('{request.service}'); granted services: "
                f"{_quoted(offered)}.",
                "use a granted service, or amend the agreement",
                aid,
                (request.service,),
                tuple(offered),
            )
        )
    for index, grant in matching:
        misses = _grant_misses(agreement, index, grant, request)
        if not misses:
            return AgreementAssessment(verified, status, (), (index, grant))
        reasons.extend(misses)
    return AgreementAssessment(verified, status, tuple(reasons), None)


@dataclass(frozen=True)
class Assessment:
    """Everything :func:`evaluate` and :func:`policies.explain.explain` need to say."""

    request: Request
    agreements: tuple[AgreementAssessment, ...]
    decision: Decision | None
    reasons: tuple[DenialReason, ...]


def _decision(a: AgreementAssessment) -> Decision:
    assert a.covering is not None
    index, grant = a.covering
    return Decision(True, a.verified.id, a.verified.version, a.verified.hash, grant, index)


def assess(
    request: Request,
    agreements: Sequence[VerifiedAgreement],
    revocations: Sequence[VerifiedRevocation],
    now: datetime,
    *,
    unusable: Sequence[UnusableAgreement] = (),
) -> Assessment:
    """Assess ``request`` against every agreement; never raises a refusal.

    ``unusable`` agreements between the two parties allow nothing; every refusal ends with
    their reasons."""
    now = require_utc(now)
    req, holder = request.requester, request.holder
    if req == holder:
        itself = DenialReason("party", f"{who(req)} is both requester and holder.")
        return Assessment(request, (), None, (itself,))
    held = tuple(u.denial() for u in unusable if set(u.agreement.parties) == {req, holder})
    assessment = _assess_usable(request, agreements, revocations, now)
    if assessment.decision is not None or not held:
        return assessment
    if not assessment.agreements:  # "there is no agreement" would be wrong: name them
        return replace(assessment, reasons=held)
    return replace(assessment, reasons=assessment.reasons + held)


def _assess_usable(
    request: Request,
    agreements: Sequence[VerifiedAgreement],
    revocations: Sequence[VerifiedRevocation],
    now: datetime,
) -> Assessment:
    req, holder = request.requester, request.holder
    unique = {v.hash: v for v in agreements}
    between = sorted(
        (v for v in unique.values() if set(v.agreement.parties) == {req, holder}),
        key=lambda v: (v.id, v.version, v.hash),
    )
    assessed = tuple(_assess_one(v, request, between, revocations, now) for v in between)
    usable = [a for a in assessed if a.usable]
    if not between:
        reasons = [
            DenialReason(
                "agreement",
                f"There is no agreement between {who(req)} and {who(holder)}.",
                "the two directorates must sign one first (enlace policy)",
            )
        ]
        return Assessment(request, (), None, tuple(reasons))
    named_id = request.agreement_id
    if named_id is None:
        if usable:
            return Assessment(request, assessed, _decision(usable[0]), ())
        reasons = [r for a in assessed for r in a.reasons]
        return Assessment(request, assessed, None, tuple(reasons))
    named = [a for a in assessed if a.verified.id == named_id]
    named_usable = [a for a in named if a.usable]
    if named_usable:
        return Assessment(request, assessed, _decision(named_usable[0]), ())
    if named:
        reasons = [r for a in named for r in a.reasons]
    else:
        ids = _quoted({v.id for v in between})
        reasons = [
            DenialReason(
                "agreement",
                f"There is no agreement '{named_id}' between {who(req)} and {who(holder)} "
                f"(agreements between them: {ids}).",
                "name one of their agreements, or none",
                named_id,
            )
        ]
        reasons += [r for a in assessed for r in a.reasons]
    for other in usable:
        label = other.verified.agreement.label()
        reasons.append(
            DenialReason(
                "agreement",
                f"The request names agreement '{named_id}', but only {label} covers it.",
                f"name agreement '{other.verified.id}' in the request",
                other.verified.id,
            )
        )
    return Assessment(request, assessed, None, tuple(reasons))


def evaluate(
    request: Request,
    agreements: Sequence[VerifiedAgreement],
    revocations: Sequence[VerifiedRevocation],
    now: datetime,
    *,
    unusable: Sequence[UnusableAgreement] = (),
) -> Decision:
    """The :class:`Decision` allowing ``request``, or :class:`Denied` with every reason."""
    assessment = assess(request, agreements, revocations, now, unusable=unusable)
    if assessment.decision is None:
        raise Denied(assessment.reasons)
    return assessment.decision


# --- policies the node can hold -----------------------------------------------------------


class Policy(Protocol):
    """What a node service calls before touching data."""

    def evaluate(self, request: Request, now: datetime) -> Decision: ...

    def explain(self, request: Request, now: datetime) -> Explanation: ...


@dataclass(frozen=True)
class AgreementSet:
    """The verified agreements and revocations a node holds; the normal :class:`Policy`."""

    agreements: tuple[VerifiedAgreement, ...] = ()
    revocations: tuple[VerifiedRevocation, ...] = ()
    unusable: tuple[UnusableAgreement, ...] = ()

    def evaluate(self, request: Request, now: datetime) -> Decision:
        return evaluate(request, self.agreements, self.revocations, now, unusable=self.unusable)

    def explain(self, request: Request, now: datetime) -> Explanation:
        from policies.explain import explain

        return explain(request, self.agreements, self.revocations, now, unusable=self.unusable)


class UnsafeAllowAll:
    """Allows every request without any agreement. For local demos and tests only.

    Every use logs a WARNING on the ``policies`` logger; decisions are marked ``unsafe`` and
    cite the pseudo-agreement ``unsafe-allow-all`` so the audit log shows what happened.
    """

    AGREEMENT_ID = "unsafe-allow-all"

    def _warn(self, request: Request) -> None:
        logger.warning(
            "UnsafeAllowAll: allowing %s → %s %s on %r for %r WITHOUT any agreement",
            request.holder,
            request.requester,
            request.service,
            request.dataset,
            request.purpose,
        )

    def evaluate(self, request: Request, now: datetime) -> Decision:
        require_utc(now)
        self._warn(request)
        grant = Grant(
            holder=request.holder,
            requester=request.requester,
            service=request.service,
            datasets=(request.dataset,),
            purposes=(request.purpose,),
            quotas=Quotas(None, None),
            dimensions=tuple(request.dimensions),
            attributes=tuple(request.attributes),
            disclosure=Disclosure("unsafe_allow_all") if request.service == "stats" else None,
            followup_requires_approval=False,
        )
        return Decision(True, self.AGREEMENT_ID, 0, "0" * 64, grant, 0, unsafe=True)

    def explain(self, request: Request, now: datetime) -> Explanation:
        from policies.explain import Explanation

        decision = self.evaluate(request, now)
        lines = (
            "ALLOWED by UnsafeAllowAll: no agreement was consulted.",
            "This bypass is for local demos and tests; never run a node with it.",
        )
        return Explanation(True, lines, decision, ())
