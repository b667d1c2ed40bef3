"""The agreements this node holds: installed, verified against the directory, enforced.

Why a book: services must decide on every call, cheaply, from agreements whose signatures
were checked against the *current* directory. The book keeps the signed documents in the
store (the evidence) and a verified in-memory view that is rebuilt whenever the store or the
directory changes, or when the cached verification is older than a minute (keys expire).

Invariants:
* Only agreements to which this node is a party and that both parties signed with keys in
  the directory are installed; verification failures are refused at install time.
* An agreement whose signatures stop verifying later (a key removed from the directory) simply
  drops out of the verified view — it then allows nothing — and is reported by ``status()``.
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
from dataclasses import dataclass, field, replace

from node.errors import InvalidArgumentError, from_policy
from node.runtime import NodeRuntime
from policies.decision import AgreementSet, Decision, Request, agreement_status
from policies.errors import PolicyError
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
    verify_revocation,
)

log = logging.getLogger("node.agreements")
REVERIFY_AFTER = dt.timedelta(seconds=60)
MAX_CACHED_DECISIONS = 4096


@dataclass
class _Decisions:
    """Allowed decisions of one verified view, with the instants at which any could change."""

    view: AgreementSet
    boundaries: list[dt.datetime]
    entries: dict[Request, tuple[int, Decision]] = field(default_factory=dict)

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
        self._cache: tuple[tuple[tuple[str, tuple[int, int]], dt.datetime], AgreementSet] | None = (
            None
        )
        self._problems: dict[str, str] = {}
        self._decisions: _Decisions | None = None

    # -- installing ---------------------------------------------------------------------
    def install_text(self, text: str, now: dt.datetime) -> str:
        """Install an agreement or a revocation document; returns what was installed."""
        if "enlace-agreement-revocation/1" in text:
            return self.install_revocation(load_revocation(text), now)
        return self.install_agreement(load_signed_agreement(text), now)

    def install_agreement(self, signed: SignedAgreement, now: dt.datetime) -> str:
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
            verify_agreement(signed, directory.signing_key, now)
        except PolicyError as exc:
            raise from_policy(exc) from exc
        created = self.runtime.store.policies.save_agreement(
            agreement.id, agreement.version, agreement.hash, dump_signed_agreement(signed), now
        )
        self._cache = None
        return f"{agreement.label()} {'installed' if created else 'was already installed'}"

    def install_revocation(self, signed: SignedRevocation, now: dt.datetime) -> str:
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
            verify_revocation(signed, target.agreement, directory.signing_key, now)
        except PolicyError as exc:
            raise from_policy(exc) from exc
        self.runtime.store.policies.save_revocation(
            revoked.agreement_id, revoked.agreement_hash, dump_revocation(signed), now
        )
        self._cache = None
        return f"revocation of {target.agreement.label()} by {revoked.by} installed"

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

    def decide(self, request: Request, now: dt.datetime) -> Decision:
        """``current(now).evaluate(request, now)``, remembering allowed decisions (see the
        module's invariants); raises :class:`~policies.errors.Denied` like ``evaluate``."""
        view = self.current(now)
        with self._lock:
            cache = self._decisions
            if cache is None or cache.view is not view:
                cache = self._decisions = _Decisions.of(view)
        # Every field of the request but ``units`` (metered by the quota, not by the decision),
        # so a field added to Request later is part of the key without anyone remembering to.
        key = replace(request, units=1)
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
        verified: list[VerifiedAgreement] = []
        problems: dict[str, str] = {}
        by_hash = {}
        for signed in self._signed_agreements():
            try:
                item = verify_agreement(signed, directory.signing_key, now)
            except PolicyError as exc:
                problems[signed.agreement.hash] = exc.message
                continue
            verified.append(item)
            by_hash[item.hash] = item
        revocations: list[VerifiedRevocation] = []
        for text in self.runtime.store.policies.revocations():
            signed_rev = load_revocation(text)
            target = by_hash.get(signed_rev.revocation.agreement_hash)
            if target is None:
                continue
            try:
                revocations.append(
                    verify_revocation(signed_rev, target.agreement, directory.signing_key, now)
                )
            except PolicyError as exc:
                log.warning("stored revocation no longer verifies: %s", exc)
        self._problems = problems
        return AgreementSet(tuple(verified), tuple(revocations))

    def status(self, now: dt.datetime) -> list[AgreementStatus]:
        view = self.current(now)
        rows: list[AgreementStatus] = []
        for signed in self._signed_agreements():
            agreement = signed.agreement
            verified = next((v for v in view.agreements if v.hash == agreement.hash), None)
            if verified is None:
                state = "signatures do not verify: " + self._problems.get(agreement.hash, "?")
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
