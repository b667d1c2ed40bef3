"""Whether one agreement is in force at a moment, and every reason it is not.

Why apart from :mod:`policies.decision`: the node asks this of a single agreement too (the
status ``enlace policy list`` shows), not only while deciding a request; the decision cites
these reasons word for word.

An agreement is *in force* at ``now`` when its signatures verified (the caller passes only
:class:`~policies.signatures.VerifiedAgreement`), ``valid_from <= now < valid_until``, no
verified revocation of that exact document has ``at <= now``, no later version of the same id
has started (``valid_from <= now``), and no other document claims the same id and version.

Invariants:
* Pure: no I/O, no clock; ``now`` must be timezone-aware.
* :func:`agreement_status` returns every reason found, not the first;
  :func:`require_in_force` raises :class:`~policies.errors.AgreementNotInForceError` with them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from policies.agreement import Agreement
from policies.canonical import format_timestamp, require_utc
from policies.diff import who
from policies.errors import AgreementNotInForceError, DenialReason
from policies.signatures import VerifiedAgreement, VerifiedRevocation


def agreement_label(agreement: Agreement) -> str:
    """How every refusal names an agreement: its id and version."""
    return f"Agreement '{agreement.id}' (version {agreement.version})"


def agreement_status(
    verified: VerifiedAgreement,
    revocations: Iterable[VerifiedRevocation],
    now: datetime,
    *,
    others: Iterable[VerifiedAgreement] = (),
) -> list[DenialReason]:
    """Why ``verified`` is not in force at ``now`` (empty list: it is in force).

    ``others`` are the other agreements known to the node; versions of the same id decide
    supersession and conflicts.
    """
    now = require_utc(now)
    agreement = verified.agreement
    label, aid = agreement_label(agreement), agreement.id
    reasons: list[DenialReason] = []
    if now < agreement.valid_from:
        reasons.append(
            DenialReason(
                "validity",
                f"{label} is not yet in force: it starts on "
                f"{format_timestamp(agreement.valid_from)}.",
                "wait until it starts, or use an agreement in force",
                aid,
            )
        )
    elif now >= agreement.valid_until:
        reasons.append(
            DenialReason(
                "validity",
                f"{label} expired on {format_timestamp(agreement.valid_until)}.",
                "the parties must sign a new version",
                aid,
            )
        )
    for rev in sorted(revocations, key=lambda r: r.revocation.at):
        r = rev.revocation
        if r.agreement_hash == agreement.hash and r.at <= now:
            reasons.append(
                DenialReason(
                    "agreement",
                    f"{label} was revoked by {who(r.by)} on {format_timestamp(r.at)}: "
                    f"{r.reason.rstrip('.')}.",
                    "the parties must sign a new agreement",
                    aid,
                )
            )
            break
    same_id = [
        o
        for o in others
        if o.id == aid
        and set(o.agreement.parties) == set(agreement.parties)
        and o.hash != agreement.hash
    ]
    if any(o.version == agreement.version for o in same_id):
        reasons.append(
            DenialReason(
                "agreement",
                f"Two different signed documents claim to be {label}; neither is used.",
                "the parties must settle on one text and sign it as a new version",
                aid,
            )
        )
    started = [
        o for o in same_id if o.version > agreement.version and o.agreement.valid_from <= now
    ]
    if started:
        newest = max(started, key=lambda o: o.version).agreement
        reasons.append(
            DenialReason(
                "agreement",
                f"{label} is superseded by version {newest.version}, which started on "
                f"{format_timestamp(newest.valid_from)}.",
                f"requests now fall under version {newest.version}",
                aid,
            )
        )
    return reasons


def require_in_force(
    verified: VerifiedAgreement,
    revocations: Iterable[VerifiedRevocation],
    now: datetime,
    *,
    others: Iterable[VerifiedAgreement] = (),
) -> None:
    """Raise :class:`AgreementNotInForceError` unless ``verified`` is in force at ``now``."""
    reasons = agreement_status(verified, revocations, now, others=others)
    if reasons:
        raise AgreementNotInForceError(reasons)
