"""The bilateral agreement: model, document form, canonical bytes, signatures, revocation.

Why: every exchange between two nodes must be authorised by an agreement that both
directorates signed. This module turns the ``enlace-agreement/1`` document (YAML or JSON)
into immutable values and back, defines the exact bytes the parties sign, and verifies
party signatures and unilateral revocations against keys the caller resolves (the node
resolves them from the federation directory).

Invariants:
* Every :class:`Agreement` instance is valid: construction re-checks it against the
  published JSON Schema (``policies/schema/agreement.schema.json``, draft 2020-12) and the
  semantic rules (``valid_from < valid_until``; each grant's holder and requester are the
  two parties and differ; a DP budget is at least one query's epsilon, and a DP total, when
  set, at least the budget per period). Failures raise
  :class:`~policies.errors.AgreementFormatError` naming the JSON path.
* Set-like lists (datasets, purposes, dimensions, attributes) are kept sorted; their order in
  the YAML changes neither the agreement nor its hash. Grant order is kept (it numbers them).
* Defaults are explicit in the canonical body (``min_cell: 5``, ``secondary: true``,
  ``perturbation: null``, ``dp: null``, ``followup_requires_approval: true``), so the hash
  covers the values actually enforced. Quotas have no default: both ``per_day`` and
  ``per_quarter`` must be written, ``null`` meaning no limit for that window. The one
  exception is the optional ``dp.budget_total``: it is left out of the canonical body when
  unset, so agreements written before it existed keep their bytes, hash and signatures.
* :meth:`Agreement.canonical_bytes` never includes signatures; :attr:`Agreement.hash` is the
  SHA-256 hex of those bytes and is what responses and revocations cite.
* A :class:`VerifiedAgreement` exists only if *both* parties' signatures verified with keys
  the resolver vouched for at ``now``; a :class:`VerifiedRevocation` only if one party signed
  it for exactly that agreement hash. Neither can be built by hand (``TypeError``).
* Verification raises (:class:`~policies.errors.AgreementSignatureError`), never returns a bool.
"""

from __future__ import annotations

import contextvars
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from policies.canonical import (
    canonical_json,
    check_schema,
    decimal_text,
    format_timestamp,
    parse_decimal,
    parse_timestamp,
    require_utc,
    sha256_hex,
)
from policies.errors import AgreementFormatError

FORMAT = "enlace-agreement/1"
REVOCATION_FORMAT = "enlace-agreement-revocation/1"
AGREEMENT_CONTEXT = b"enlace/1 agreement"
REVOCATION_CONTEXT = b"enlace/1 agreement-revocation"
SERVICES = ("stats", "match", "biometric", "followup", "directory")

_DECIMAL_TEXT = re.compile(r"(0|[1-9][0-9]{0,5})(\.[0-9]{1,9})?")
_FROM_VALID_DOCUMENT: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "_FROM_VALID_DOCUMENT", default=False
)


# --- model ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Perturbation:
    """Cell-key perturbation: same records give the same noise, at most ``max_noise``."""

    max_noise: int
    method: str = "cell_key"
    secret_ref: str | None = None


@dataclass(frozen=True)
class DifferentialPrivacy:
    """Differential privacy with a per-peer budget that refuses once spent in the period.

    ``budget_total`` (optional) caps what the peer may spend in all, across every period; it
    never resets. ``None`` means no cap beyond the budget per period.
    """

    mechanism: str
    epsilon_per_query: Decimal
    budget_per_period: Decimal
    period: str = "quarter"
    budget_total: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "epsilon_per_query", parse_decimal(self.epsilon_per_query))
        object.__setattr__(self, "budget_per_period", parse_decimal(self.budget_per_period))
        if self.budget_total is not None:
            object.__setattr__(self, "budget_total", parse_decimal(self.budget_total))


@dataclass(frozen=True)
class Disclosure:
    """Disclosure control for a stats grant; counts 1 … ``min_cell - 1`` are suppressed."""

    profile: str
    min_cell: int = 5
    secondary: bool = True
    perturbation: Perturbation | None = None
    dp: DifferentialPrivacy | None = None


@dataclass(frozen=True)
class Quotas:
    """Units per UTC day and per calendar quarter; ``None`` means no limit for that window."""

    per_day: int | None
    per_quarter: int | None


@dataclass(frozen=True)
class Grant:
    """What ``holder`` lets ``requester`` ask of it, for one service."""

    holder: str
    requester: str
    service: str
    datasets: tuple[str, ...]
    purposes: tuple[str, ...]
    quotas: Quotas
    dimensions: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    disclosure: Disclosure | None = None
    followup_requires_approval: bool = True

    def __post_init__(self) -> None:
        for name in ("datasets", "purposes", "dimensions", "attributes"):
            values = getattr(self, name)
            if isinstance(values, str):
                raise TypeError(f"Grant.{name} must be a collection of names, not a string")
            object.__setattr__(self, name, tuple(sorted(values)))

    @property
    def direction(self) -> str:
        return f"{self.holder} → {self.requester}"


@dataclass(frozen=True)
class Agreement:
    """One version of a bilateral agreement (the signed body, without signatures)."""

    id: str
    version: int
    parties: tuple[str, str]
    title: str
    valid_from: datetime
    valid_until: datetime
    grants: tuple[Grant, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "parties", tuple(self.parties))
        object.__setattr__(self, "grants", tuple(self.grants))
        object.__setattr__(self, "valid_from", require_utc(self.valid_from, "valid_from"))
        object.__setattr__(self, "valid_until", require_utc(self.valid_until, "valid_until"))
        if not _FROM_VALID_DOCUMENT.get():
            validate_document(self.to_document())

    @classmethod
    def from_document(cls, document: object) -> Agreement:
        """Build from a parsed document (a mapping); ``signatures`` must already be removed."""
        validate_document(document)
        assert isinstance(document, Mapping)
        # The conversion keeps a valid document valid (it only fills in defaults, sorts sets
        # and normalises timestamps and decimals), so the check is not run a second time.
        token = _FROM_VALID_DOCUMENT.set(True)
        try:
            return cls(
                id=document["id"],
                version=document["version"],
                parties=(document["parties"][0], document["parties"][1]),
                title=document["title"],
                valid_from=parse_timestamp(document["valid_from"], path="$.valid_from"),
                valid_until=parse_timestamp(document["valid_until"], path="$.valid_until"),
                grants=tuple(_grant_from(g) for g in document["grants"]),
            )
        finally:
            _FROM_VALID_DOCUMENT.reset(token)

    def to_document(self) -> dict[str, Any]:
        """The body as plain data, in reading order, with every default made explicit."""
        return {
            "format": FORMAT,
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "parties": list(self.parties),
            "valid_from": format_timestamp(self.valid_from),
            "valid_until": format_timestamp(self.valid_until),
            "grants": [_grant_to(g) for g in self.grants],
        }

    def canonical_bytes(self) -> bytes:
        """The bytes both parties sign."""
        return canonical_json(self.to_document())

    @functools.cached_property
    def hash(self) -> str:
        """SHA-256 hex of :meth:`canonical_bytes`; cited by responses and revocations."""
        return sha256_hex(self.canonical_bytes())

    def other_party(self, party: str) -> str:
        if party not in self.parties:
            raise ValueError(f"{party} is not a party to agreement {self.id!r}")
        return self.parties[1] if party == self.parties[0] else self.parties[0]

    def label(self) -> str:
        return f"agreement '{self.id}' (version {self.version})"


def _grant_from(doc: Mapping[str, Any]) -> Grant:
    disclosure = None
    if (d := doc.get("disclosure")) is not None:
        pert = d.get("perturbation")
        dp = d.get("dp")
        disclosure = Disclosure(
            profile=d["profile"],
            min_cell=d.get("min_cell", 5),
            secondary=d.get("secondary", True),
            perturbation=None
            if pert is None
            else Perturbation(pert["max_noise"], pert["method"], pert.get("secret_ref")),
            dp=None
            if dp is None
            else DifferentialPrivacy(
                dp["mechanism"],
                parse_decimal(dp["epsilon_per_query"]),
                parse_decimal(dp["budget_per_period"]),
                dp["period"],
                None if dp.get("budget_total") is None else parse_decimal(dp["budget_total"]),
            ),
        )
    return Grant(
        holder=doc["holder"],
        requester=doc["requester"],
        service=doc["service"],
        datasets=tuple(doc["datasets"]),
        purposes=tuple(doc["purposes"]),
        quotas=Quotas(doc["quotas"]["per_day"], doc["quotas"]["per_quarter"]),
        dimensions=tuple(doc.get("dimensions", ())),
        attributes=tuple(doc.get("attributes", ())),
        disclosure=disclosure,
        followup_requires_approval=doc.get("followup_requires_approval", True),
    )


def _grant_to(grant: Grant) -> dict[str, Any]:
    out: dict[str, Any] = {
        "holder": grant.holder,
        "requester": grant.requester,
        "service": grant.service,
        "datasets": list(grant.datasets),
        "purposes": list(grant.purposes),
    }
    # Fields that do not apply to the service are emitted only when (wrongly) set, so that
    # validation reports them instead of silently dropping them.
    if grant.service == "stats" or grant.dimensions:
        out["dimensions"] = list(grant.dimensions)
    if grant.service == "followup" or grant.attributes:
        out["attributes"] = list(grant.attributes)
    if grant.disclosure is not None:
        out["disclosure"] = _disclosure_to(grant.disclosure)
    out["quotas"] = {"per_day": grant.quotas.per_day, "per_quarter": grant.quotas.per_quarter}
    if grant.service == "followup" or not grant.followup_requires_approval:
        out["followup_requires_approval"] = grant.followup_requires_approval
    return out


def disclosure_fields(d: Disclosure) -> dict[str, Any]:
    """A grant's disclosure profile as the agreement document states it (decimals as text), for
    showing an agreement to the people who sign it."""
    return _disclosure_to(d)


def _disclosure_to(d: Disclosure) -> dict[str, Any]:
    pert: dict[str, Any] | None = None
    if d.perturbation is not None:
        pert = {"method": d.perturbation.method, "max_noise": d.perturbation.max_noise}
        if d.perturbation.secret_ref is not None:
            pert["secret_ref"] = d.perturbation.secret_ref
    dp: dict[str, Any] | None = None
    if d.dp is not None:
        dp = {
            "mechanism": d.dp.mechanism,
            "epsilon_per_query": decimal_text(d.dp.epsilon_per_query),
            "budget_per_period": decimal_text(d.dp.budget_per_period),
            "period": d.dp.period,
        }
        # Emitted only when set: an agreement without a total keeps its pre-existing bytes.
        if d.dp.budget_total is not None:
            dp["budget_total"] = decimal_text(d.dp.budget_total)
    return {
        "profile": d.profile,
        "min_cell": d.min_cell,
        "secondary": d.secondary,
        "perturbation": pert,
        "dp": dp,
    }


# --- validation ---------------------------------------------------------------------------


def validate_document(document: object) -> None:
    """Schema plus semantic checks of an agreement body (no ``signatures``)."""
    check_schema(document)
    assert isinstance(document, Mapping)
    problems: list[tuple[str, str]] = []
    start = parse_timestamp(document["valid_from"], path="$.valid_from")
    end = parse_timestamp(document["valid_until"], path="$.valid_until")
    if not start < end:
        problems.append(("$.valid_until", "must be later than valid_from"))
    parties = document["parties"]
    for i, grant in enumerate(document["grants"]):
        for role in ("holder", "requester"):
            if grant[role] not in parties:
                message = f"{grant[role]} is not a party ({' and '.join(parties)})"
                problems.append((f"$.grants[{i}].{role}", message))
        if grant["holder"] == grant["requester"]:
            problems.append((f"$.grants[{i}].requester", "must be the other party"))
        dp = (grant.get("disclosure") or {}).get("dp")
        if dp is not None:
            problems.extend(_dp_problems(dp, f"$.grants[{i}].disclosure.dp"))
    if problems:
        path, message = problems[0]
        raise AgreementFormatError(message, path=path, problems=[f"{p}: {m}" for p, m in problems])


def _dp_problems(dp: Mapping[str, Any], at: str) -> list[tuple[str, str]]:
    """``epsilon_per_query`` ≤ ``budget_per_period`` ≤ ``budget_total`` (when set), all exact
    decimals of at most 6 digits before and 9 after the point."""
    problems: list[tuple[str, str]] = []
    eps = parse_decimal(dp["epsilon_per_query"], path=f"{at}.epsilon_per_query")
    budget = parse_decimal(dp["budget_per_period"], path=f"{at}.budget_per_period")
    values = [("epsilon_per_query", eps), ("budget_per_period", budget)]
    total = None
    if dp.get("budget_total") is not None:
        total = parse_decimal(dp["budget_total"], path=f"{at}.budget_total")
        values.append(("budget_total", total))
    for name, value in values:
        if not _DECIMAL_TEXT.fullmatch(decimal_text(value)):
            problems.append((f"{at}.{name}", "at most 6 digits before and 9 after the point"))
    if eps <= 0:
        problems.append((f"{at}.epsilon_per_query", "must be > 0"))
    if budget < eps:
        problems.append((f"{at}.budget_per_period", "must be at least epsilon_per_query"))
    if total is not None and total < budget:
        problems.append((f"{at}.budget_total", "must be at least budget_per_period"))
    return problems


# --- helpers used by the other modules ----------------------------------------------------


def grants_between(agreement: Agreement, holder: str, requester: str) -> list[tuple[int, Grant]]:
    """The grants (with their 0-based index) in the direction holder → requester."""
    return [
        (i, g)
        for i, g in enumerate(agreement.grants)
        if g.holder == holder and g.requester == requester
    ]
