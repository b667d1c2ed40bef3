"""Signatures over agreements: both parties sign, either party may revoke.

Why a module of its own: the agreement model (:mod:`policies.agreement`) says *what* is
granted; this module says *who vouched for it*. It defines the signed document form (the
canonical body plus a ``signatures`` block outside it), party signatures over the canonical
bytes, unilateral signed revocations, and their verification against keys the caller
resolves (the node resolves them from the federation directory).

Invariants:
* A :class:`VerifiedAgreement` exists only if *both* parties' signatures verified with keys
  the resolver vouched for at ``now``; a :class:`VerifiedRevocation` only if one party signed
  it for exactly that agreement hash. Neither can be built by hand (``TypeError``).
* Verification raises (:class:`~policies.errors.AgreementSignatureError`), never returns a bool.
* A revocation verified once against the directory stays verifiable with the key recorded
  then (:func:`verify_recorded_revocation`): a later key rotation never un-revokes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crypto.errors import CryptoError, KeyError_
from crypto.signing import SigningKey, key_id, verify
from policies.agreement import AGREEMENT_CONTEXT, REVOCATION_CONTEXT, REVOCATION_FORMAT, Agreement
from policies.canonical import (
    b64decode,
    b64encode,
    canonical_json,
    check_schema,
    dump_document,
    format_timestamp,
    load_document,
    parse_timestamp,
    require_utc,
)
from policies.errors import AgreementFormatError, AgreementSignatureError

# --- signatures ---------------------------------------------------------------------------

#: ``resolver(country, key_id, at)`` returns the Ed25519 public key that ``country`` published
#: under ``key_id`` and that is valid at ``at``, or raises :class:`crypto.errors.KeyError_`.
KeyResolver = Callable[[str, str, datetime], bytes]

_VERIFIED = object()


@dataclass(frozen=True)
class PartySignature:
    """One party's Ed25519 signature over the canonical bytes, and the key it used."""

    key_id: str
    signature_b64: str


@dataclass(frozen=True)
class SignedAgreement:
    """An agreement with the signatures collected so far (zero, one or both parties)."""

    agreement: Agreement
    signatures: Mapping[str, PartySignature] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "signatures", dict(sorted(self.signatures.items())))


def sign_agreement(
    document: Agreement | SignedAgreement, party: str, key: SigningKey
) -> SignedAgreement:
    """Add (or replace) ``party``'s signature; the other party's signature is kept."""
    signed = document if isinstance(document, SignedAgreement) else SignedAgreement(document)
    agreement = signed.agreement
    if party not in agreement.parties:
        raise AgreementSignatureError(
            f"{party} is not a party to {agreement.label()}",
            hint=f"only {' and '.join(agreement.parties)} sign it",
        )
    signature = key.sign(AGREEMENT_CONTEXT, agreement.canonical_bytes())
    signatures = dict(signed.signatures)
    signatures[party] = PartySignature(key.key_id, b64encode(signature))
    return SignedAgreement(agreement, signatures)


def _signature_problem(
    party: str,
    signature: PartySignature,
    context: bytes,
    message: bytes,
    resolver: KeyResolver,
    at: datetime,
) -> str | None:
    try:
        public_key = resolver(party, signature.key_id, at)
    except CryptoError as exc:
        return (
            f"{party} signed with key {signature.key_id}, which the federation directory "
            f"does not list as valid at {format_timestamp(at)} ({exc})"
        )
    try:
        if key_id(public_key) != signature.key_id:
            return f"the directory returned a different key than {signature.key_id} for {party}"
        verify(public_key, context, message, b64decode(signature.signature_b64))
    except (CryptoError, ValueError):
        return (
            f"the signature of {party} (key {signature.key_id}) does not verify: the document "
            "was changed after signing, or it was signed with another key"
        )
    return None


@dataclass(frozen=True)
class VerifiedAgreement:
    """An agreement whose two party signatures verified; only :func:`verify_agreement` makes it."""

    signed: SignedAgreement
    key_ids: Mapping[str, str]
    verified_at: datetime
    _token: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._token is not _VERIFIED:
            raise TypeError("VerifiedAgreement is made by verify_agreement() only")

    @property
    def agreement(self) -> Agreement:
        return self.signed.agreement

    @property
    def id(self) -> str:
        return self.agreement.id

    @property
    def version(self) -> int:
        return self.agreement.version

    @property
    def hash(self) -> str:
        return self.agreement.hash


def verify_agreement(
    signed: SignedAgreement, resolver: KeyResolver, now: datetime
) -> VerifiedAgreement:
    """Check that both parties signed with keys valid at ``now``; raise otherwise.

    Keys are checked at ``now`` (not at some claimed signing time, which nothing
    authenticates): when a party rotates its key, it re-signs its agreements with the new key
    before the old one leaves the directory. The other party's signature stays valid because
    the canonical bytes do not change.
    """
    now = require_utc(now)
    agreement = signed.agreement
    message = agreement.canonical_bytes()
    problems: list[str] = []
    for party in sorted(signed.signatures):
        if party not in agreement.parties:
            problems.append(f"{party} signed but is not a party to {agreement.label()}")
    for party in agreement.parties:
        signature = signed.signatures.get(party)
        if signature is None:
            problems.append(f"{party} has not signed {agreement.label()}")
            continue
        problem = _signature_problem(party, signature, AGREEMENT_CONTEXT, message, resolver, now)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise AgreementSignatureError(
            f"{agreement.label()} is not validly signed by both parties: " + "; ".join(problems),
            problems=problems,
            hint="have each party sign the same version (enlace policy sign) with a key "
            "listed in the federation directory",
        )
    key_ids = {p: signed.signatures[p].key_id for p in agreement.parties}
    return VerifiedAgreement(signed, key_ids, now, _VERIFIED)


def load_signed_agreement(text: str | bytes) -> SignedAgreement:
    """Parse a YAML/JSON agreement with an optional ``signatures:`` block (not verified)."""
    document = load_document(text)
    check_schema(document)
    assert isinstance(document, dict)
    body = {k: v for k, v in document.items() if k != "signatures"}
    signatures = {
        party: PartySignature(entry["key_id"], entry["signature"])
        for party, entry in (document.get("signatures") or {}).items()
    }
    return SignedAgreement(Agreement.from_document(body), signatures)


def dump_signed_agreement(signed: SignedAgreement) -> str:
    """YAML text: the canonical body in reading order, then the ``signatures:`` block."""
    document: dict[str, Any] = signed.agreement.to_document()
    if signed.signatures:
        document["signatures"] = {
            party: {"key_id": sig.key_id, "signature": sig.signature_b64}
            for party, sig in signed.signatures.items()
        }
    return dump_document(document)


# --- revocation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Revocation:
    """One party's statement that the agreement with ``agreement_hash`` ends at ``at``."""

    agreement_id: str
    agreement_hash: str
    by: str
    at: datetime
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", require_utc(self.at, "at"))
        check_schema(self.to_document(), "revocation")

    @classmethod
    def for_agreement(cls, agreement: Agreement, by: str, at: datetime, reason: str) -> Revocation:
        return cls(agreement.id, agreement.hash, by, at, reason)

    def to_document(self) -> dict[str, Any]:
        return {
            "format": REVOCATION_FORMAT,
            "agreement_id": self.agreement_id,
            "agreement_hash": self.agreement_hash,
            "by": self.by,
            "at": format_timestamp(self.at),
            "reason": self.reason,
        }

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.to_document())


@dataclass(frozen=True)
class SignedRevocation:
    revocation: Revocation
    signature: PartySignature


@dataclass(frozen=True)
class VerifiedRevocation:
    """A revocation signed by a party of the agreement it names; see :func:`verify_revocation`."""

    revocation: Revocation
    key_id: str
    public_key: bytes  # the key that verified it: the evidence to record
    _token: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._token is not _VERIFIED:
            raise TypeError("VerifiedRevocation is made by verify_revocation() only")


def sign_revocation(revocation: Revocation, key: SigningKey) -> SignedRevocation:
    signature = key.sign(REVOCATION_CONTEXT, revocation.canonical_bytes())
    return SignedRevocation(revocation, PartySignature(key.key_id, b64encode(signature)))


def verify_revocation(
    signed: SignedRevocation, agreement: Agreement, resolver: KeyResolver, now: datetime
) -> VerifiedRevocation:
    """Check that a party of ``agreement`` signed this revocation of exactly that document.

    The key must be valid at the revocation's ``at`` (or at ``now`` for a revocation that
    takes effect later), so a later key rotation never un-revokes an agreement.
    """
    now = require_utc(now)
    revocation = signed.revocation
    problems: list[str] = []
    used: list[bytes] = []

    def resolve(country: str, wanted: str, at: datetime) -> bytes:
        public_key = resolver(country, wanted, at)
        used.append(public_key)
        return public_key

    if (revocation.agreement_id, revocation.agreement_hash) != (agreement.id, agreement.hash):
        problems.append(
            f"the revocation names agreement '{revocation.agreement_id}' with hash "
            f"{revocation.agreement_hash[:16]}…, not {agreement.label()} ({agreement.hash[:16]}…)"
        )
    if revocation.by not in agreement.parties:
        problems.append(f"{revocation.by} is not a party to {agreement.label()}")
    else:
        problem = _signature_problem(
            revocation.by,
            signed.signature,
            REVOCATION_CONTEXT,
            revocation.canonical_bytes(),
            resolve,
            min(revocation.at, now),
        )
        if problem is not None:
            problems.append(problem)
    if problems:
        raise AgreementSignatureError(
            "revocation does not verify: " + "; ".join(problems),
            problems=problems,
            hint="a revocation must be signed by one of the two parties for that exact version",
        )
    return VerifiedRevocation(revocation, signed.signature.key_id, used[-1], _VERIFIED)


def verify_recorded_revocation(
    signed: SignedRevocation, agreement: Agreement, public_key: bytes, now: datetime
) -> VerifiedRevocation:
    """Re-check a stored revocation against the key recorded when it was first verified.

    Why: a revocation ends an agreement for good. Once the directory vouched for the revoking
    party's key (at install, with :func:`verify_revocation`), the revocation must not lapse
    when that key later leaves the directory — that would turn a refusal back into an allow.
    The signature itself is still checked, with the recorded key, so a stored document
    altered after it was verified is refused like any other bad signature.
    """
    revocation, signature = signed.revocation, signed.signature

    def recorded(country: str, wanted: str, at: datetime) -> bytes:
        if (country, wanted) != (revocation.by, signature.key_id):
            raise KeyError_(f"only key {signature.key_id} of {revocation.by} was recorded")
        return public_key

    return verify_revocation(signed, agreement, recorded, now)


def load_revocation(text: str | bytes) -> SignedRevocation:
    document = load_document(text)
    check_schema(document, "revocation")
    assert isinstance(document, dict)
    if "signature" not in document:
        raise AgreementFormatError("a revocation must carry its signature", path="$.signature")
    revocation = Revocation(
        document["agreement_id"],
        document["agreement_hash"],
        document["by"],
        parse_timestamp(document["at"], path="$.at"),
        document["reason"],
    )
    sig = document["signature"]
    return SignedRevocation(revocation, PartySignature(sig["key_id"], sig["signature"]))


def dump_revocation(signed: SignedRevocation) -> str:
    document = signed.revocation.to_document()
    document["signature"] = {
        "key_id": signed.signature.key_id,
        "signature": signed.signature.signature_b64,
    }
    return dump_document(document)
