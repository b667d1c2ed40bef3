"""The agreements this node holds: installed, verified against the directory, enforced.

Why a book: services must decide on every call, cheaply, from agreements whose signatures
were checked against the *current* directory. The book keeps the signed documents in the
store (the evidence) and a verified in-memory view that is rebuilt whenever the store or the
directory changes, or when the cached verification is older than a minute (keys expire).

Invariants:
* Only agreements to which this node is a party and that both parties signed with keys in
  the directory are installed; verification failures are refused at install time.
* An agreement whose signatures stop verifying later (a key removed from the directory) drops
  out of the verified view — it then allows nothing — and refusals and ``status()`` say that
  its stored signatures no longer verify and how to fix it (re-sign, re-install). Installing
  the same text with newly verified signatures replaces the stored ones.
* A revocation is verified against the directory once, at install, and stored with the key
  that verified it; afterwards it is checked against that recorded key only, so no later
  directory change can un-revoke an agreement. Every revocation of an agreement is kept; the
  earliest ``at`` ends it. A stored revocation that cannot be checked any more makes its
  agreement refuse everything (fail closed) rather than being ignored.
* :meth:`AgreementBook.decide` caches allowed decisions per verified view, so a peer's
  repeated requests skip re-assessing every agreement. An entry is used only by the view it
  was computed from (a new directory, an installed agreement or revocation, or the one-minute
  re-verification builds a new view with an empty cache) and only while ``now`` stays between
  the same two instants at which any agreement of the view starts, ends or is revoked — the
  only instants at which a decision can change. Refusals are never cached: they are
  recomputed, with every reason, each time.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from crypto.errors import KeyError_
from node.errors import InvalidArgumentError, from_policy
from node.runtime import NodeRuntime
from node.store.policy_store import StoredRevocation
from node.trust.directory import DirectoryLookupError, KeyResolver
from policies.agreement import REVOCATION_FORMAT, Agreement
from policies.canonical import format_timestamp
from policies.decision import AgreementSet, Decision, Request, UnusableAgreement
from policies.errors import PolicyError
from policies.in_force import agreement_label, agreement_status
from policies.signatures import (
    SignedAgreement,
    SignedRevocation,
    VerifiedAgreement,
    VerifiedRevocation,
    dump_revocation,
    dump_signed_agreement,
    load_revocation,
    load_signed_agreement,
    verify_agreement,
    verify_recorded_revocation,
    verify_revocation,
)

log = logging.getLogger("node.agreements")
REVERIFY_AFTER = dt.timedelta(seconds=60)
MAX_CACHED_DECISIONS = 4096
# Every field of a request but ``units`` (metered by the quota, not by the decision), so a
# field added to Request later is part of the key without anyone remembering to.
_DECISION_KEY = tuple(f.name for f in fields(Request) if f.name != "units")
RESIGN_HINT = (
    "the party whose key is no longer listed signs this same version again with its current "
    "key (enlace policy sign), and both parties install the re-signed copy (enlace policy "
    "install); the text and the hash do not change"
)


@dataclass
class _Decisions:
    """Allowed decisions of one verified view, with the instants at which any could change."""

    view: AgreementSet
    boundaries: list[dt.datetime]
    entries: dict[tuple[object, ...], tuple[int, Decision]] = field(default_factory=dict)

    @classmethod
    def of(cls, view: AgreementSet) -> _Decisions:
        instants = {v.agreement.valid_from for v in view.agreements}
        instants |= {v.agreement.valid_until for v in view.agreements}
        instants |= {r.revocation.at for r in view.revocations}
        return cls(view, sorted(instants))

    def interval(self, now: dt.datetime) -> int:
        """Which stretch between two boundaries ``now`` falls in (boundaries belong to the
        stretch they start, as validity is ``valid_from <= now < valid_until``)."""
        return bisect.bisect_right(self.boundaries, now)


@dataclass(frozen=True)
class AgreementStatus:
    agreement_id: str
    version: int
    agreement_hash: str
    parties: tuple[str, str]
    valid_from: dt.datetime
    valid_until: dt.datetime
    state: str  # "in force" or the reason it is not
    grants: int


class AgreementBook:
    def __init__(self, runtime: NodeRuntime) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()
        self._cache: (
            tuple[tuple[tuple[str, tuple[int, int, int]], dt.datetime], AgreementSet] | None
        ) = None
        self._decisions: _Decisions | None = None

    # -- installing ---------------------------------------------------------------------
    def install_text(self, text: str, now: dt.datetime) -> str:
        """Install an agreement or a revocation document; returns what was installed."""
        if REVOCATION_FORMAT in text:
            return self.install_revocation(load_revocation(text), now)
        return self.install_agreement(load_signed_agreement(text), now)

    def install_agreement(self, signed: SignedAgreement, now: dt.datetime) -> str:
        """Verify and store an agreement; the same text with newly verified signatures
        replaces the stored signatures (how a party's key rotation reaches this node)."""
        me = self.runtime.config.country
        agreement = signed.agreement
        if me not in agreement.parties:
            raise InvalidArgumentError(
                f"{agreement.label()} is between {' and '.join(agreement.parties)}; "
                f"this node is {me}",
                hint="install an agreement on the nodes of its two parties only",
            )
        directory = self.runtime.directory.current(now)
        try:
            verify_agreement(signed, party_keys(directory), now)
        except PolicyError as exc:
            raise from_policy(exc) from exc
        before = next(
            (
                load_signed_agreement(s.document)
                for s in self.runtime.store.policies.agreements()
                if (s.agreement_id, s.version) == (agreement.id, agreement.version)
            ),
            None,
        )
        saved = self.runtime.store.policies.save_agreement(
            agreement.id, agreement.version, agreement.hash, dump_signed_agreement(signed), now
        )
        self._cache = None
        if saved == "installed":
            said = f"{agreement.label()} installed"
        elif saved == "unchanged":
            said = f"{agreement.label()} was already installed"
        else:
            said = (
                f"{agreement.label()} re-signed: the stored signatures were replaced by the newly "
                f"verified ones ({_signature_changes(before, signed)}); the text and hash are "
                "unchanged"
            )
        # Installing is not granting: an operator who installs an expired or future agreement
        # must hear at once that nothing will be answered under it.
        state = next(
            (s.state for s in self.status(now) if s.agreement_hash == agreement.hash), "in force"
        )
        return said if state == "in force" else f"{said}, but it is not in force: {state}"

    def install_revocation(self, signed: SignedRevocation, now: dt.datetime) -> str:
        """Verify a revocation against the directory and store it with the key that verified
        it; says whether it changes when the agreement ends (the earliest revocation wins)."""
        revoked = signed.revocation
        target = next(
            (s for s in self._signed_agreements() if s.agreement.hash == revoked.agreement_hash),
            None,
        )
        if target is None:
            raise InvalidArgumentError(
                f"no installed agreement has hash {revoked.agreement_hash[:16]}…",
                hint="install the agreement first, or check which version was revoked",
            )
        directory = self.runtime.directory.current(now)
        try:
            verified = verify_revocation(signed, target.agreement, party_keys(directory), now)
        except PolicyError as exc:
            raise from_policy(exc) from exc
        policies = self.runtime.store.policies
        earlier = [
            load_revocation(r.document).revocation
            for r in policies.revocations(revoked.agreement_hash)
        ]
        created = policies.save_revocation(
            revoked.agreement_id,
            revoked.agreement_hash,
            dump_revocation(signed),
            now,
            key_id=verified.key_id,
            public_key=verified.public_key,
            directory_hash=directory.hash,
        )
        self._cache = None
        what = (
            f"revocation of {target.agreement.label()} by {revoked.by} "
            f"from {format_timestamp(revoked.at)}"
        )
        if not created:
            return f"{what} was already installed"
        first = min(earlier, key=lambda r: r.at, default=None)
        if first is None:
            return f"{what} installed"
        if first.at <= revoked.at:
            return (
                f"{what} installed; it changes nothing: the revocation by {first.by} already "
                f"ends the agreement on {format_timestamp(first.at)}, and a later date never "
                "postpones an earlier one"
            )
        return (
            f"{what} installed; the agreement now ends on {format_timestamp(revoked.at)}, "
            f"before the date of the revocation by {first.by} ({format_timestamp(first.at)})"
        )

    # -- reading ------------------------------------------------------------------------
    def _signed_agreements(self) -> list[SignedAgreement]:
        return [load_signed_agreement(s.document) for s in self.runtime.store.policies.agreements()]

    def signed_document(self, agreement_id: str) -> str | None:
        """The highest installed version of ``agreement_id`` as signed YAML."""
        stored = [
            s for s in self.runtime.store.policies.agreements() if s.agreement_id == agreement_id
        ]
        return stored[-1].document if stored else None

    def current(self, now: dt.datetime) -> AgreementSet:
        """The verified view, rebuilt when stale."""
        directory = self.runtime.directory.current(now)
        stamp = (directory.hash, self.runtime.store.policies.marker())
        with self._lock:
            cached = self._cache
            if cached is not None:
                (cached_stamp, built_at), view = cached
                fresh = built_at <= now < built_at + REVERIFY_AFTER
                if cached_stamp == stamp and fresh:
                    return view
            view = self._verify_all(now)
            self._cache = ((stamp, now), view)
            return view

    def decide(
        self, request: Request, now: dt.datetime, view: AgreementSet | None = None
    ) -> Decision:
        """``current(now).evaluate(request, now)``, remembering allowed decisions (see the
        module's invariants); raises :class:`~policies.errors.Denied` like ``evaluate``.

        ``view``: a :meth:`current` view taken at ``now``, for a caller deciding many requests
        at once (a fan-out asks for each peer and dataset) without re-reading the store."""
        view = view if view is not None else self.current(now)
        with self._lock:
            cache = self._decisions
            if cache is None or cache.view is not view:
                cache = self._decisions = _Decisions.of(view)
        key = tuple(getattr(request, name) for name in _DECISION_KEY)
        stretch = cache.interval(now)
        hit = cache.entries.get(key)
        if hit is not None and hit[0] == stretch:
            return hit[1]
        decision = view.evaluate(request, now)  # raises on refusal: never cached
        with self._lock:
            if len(cache.entries) >= MAX_CACHED_DECISIONS:
                cache.entries.clear()
            cache.entries[key] = (stretch, decision)
        return decision

    def _verify_all(self, now: dt.datetime) -> AgreementSet:
        directory = self.runtime.directory.current(now)
        by_hash: dict[str, VerifiedAgreement] = {}
        unusable: dict[str, UnusableAgreement] = {}
        for signed in self._signed_agreements():
            agreement = signed.agreement
            try:
                by_hash[agreement.hash] = verify_agreement(signed, party_keys(directory), now)
            except PolicyError as exc:
                unusable[agreement.hash] = UnusableAgreement(
                    agreement,
                    f"{agreement_label(agreement)} is installed at this node, but its stored "
                    f"signatures no longer verify against the federation directory: {exc.message}",
                    RESIGN_HINT,
                )
        revocations: list[VerifiedRevocation] = []
        for stored in self.runtime.store.policies.revocations():
            target = by_hash.get(stored.agreement_hash)
            if target is None:  # its agreement allows nothing already
                continue
            try:
                revocations.append(_reverify(stored, target.agreement, directory, now))
            except PolicyError as exc:
                log.error("refusing %s: %s", target.agreement.label(), exc.message)
                del by_hash[stored.agreement_hash]
                unusable[stored.agreement_hash] = _unverifiable(stored, target.agreement, exc)
        return AgreementSet(tuple(by_hash.values()), tuple(revocations), tuple(unusable.values()))

    def status(self, now: dt.datetime) -> list[AgreementStatus]:
        view = self.current(now)
        unusable = {u.agreement.hash: u for u in view.unusable}
        rows: list[AgreementStatus] = []
        for signed in self._signed_agreements():
            agreement = signed.agreement
            verified = next((v for v in view.agreements if v.hash == agreement.hash), None)
            if verified is None:
                problem = unusable.get(agreement.hash)
                state = "refused" if problem is None else f"{problem.reason} — {problem.hint}"
            else:
                reasons = agreement_status(verified, view.revocations, now, others=view.agreements)
                state = "in force" if not reasons else reasons[0].message
            rows.append(
                AgreementStatus(
                    agreement.id,
                    agreement.version,
                    agreement.hash,
                    agreement.parties,
                    agreement.valid_from,
                    agreement.valid_until,
                    state,
                    len(agreement.grants),
                )
            )
        return rows


def party_keys(directory: KeyResolver) -> Callable[[str, str, dt.datetime], bytes]:
    """``directory.signing_key`` as :mod:`policies.signatures` expects a key resolver: a key
    the directory does not list, or not as valid at the time asked (a party's old key after
    its rotation), raises :class:`crypto.errors.KeyError_`. That is one signature's problem —
    the agreement is named as not validly signed, with the way to re-sign it — where the
    directory's own error escaped the agreement checks and stopped every agreement of the
    node at once."""

    def resolve(country: str, key_id: str, at: dt.datetime) -> bytes:
        try:
            return directory.signing_key(country, key_id, at)
        except DirectoryLookupError as exc:
            raise KeyError_(exc.message) from exc

    return resolve


def _reverify(
    stored: StoredRevocation, agreement: Agreement, directory: KeyResolver, now: dt.datetime
) -> VerifiedRevocation:
    """A stored revocation, checked against the key recorded when it was installed.

    Revocations installed before keys were recorded can only be checked against the
    directory; if that fails the caller refuses the agreement (never ignores the revocation).
    """
    signed = load_revocation(stored.document)
    if stored.public_key is None:
        return verify_revocation(signed, agreement, party_keys(directory), now)
    return verify_recorded_revocation(signed, agreement, stored.public_key, now)


def _unverifiable(
    stored: StoredRevocation, agreement: Agreement, exc: PolicyError
) -> UnusableAgreement:
    """Why an agreement with a revocation that cannot be checked any more refuses everything:
    the revocation was verified at install, so ignoring it would fail open."""
    installed = format_timestamp(stored.installed_at)
    reason = (
        f"{agreement_label(agreement)} refuses every request: a revocation of it installed at "
        f"this node on {installed} cannot be checked any more ({exc.message})"
    )
    if stored.public_key is None:
        hint = (
            "the revocation predates recorded keys and its key has left the directory, so the "
            "node cannot confirm when it takes effect; the parties sign a new version"
        )
    else:
        hint = (
            "the stored revocation no longer matches the key recorded when it was verified, "
            "so the database was altered; restore it from a backup and check the audit log"
        )
    return UnusableAgreement(agreement, reason, hint)


def _signature_changes(before: SignedAgreement | None, after: SignedAgreement) -> str:
    """Which party's signature changed, and from which key to which, for the install report."""
    changes = []
    for party, signature in after.signatures.items():
        old = None if before is None else before.signatures.get(party)
        if old is None:
            changes.append(f"{party} key {signature.key_id}")
        elif old.key_id != signature.key_id:
            changes.append(f"{party} key {old.key_id} → {signature.key_id}")
        elif old.signature_b64 != signature.signature_b64:
            changes.append(f"{party} signed again with key {signature.key_id}")
    return ", ".join(changes) or "same keys"
