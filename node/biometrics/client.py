"""Fan-out biometric probes from the querier: every peer whose agreement allows it.

Why: an officer with a face template of a person in custody asks "has anyone enrolled this
person?" once; the node asks every holder the agreements allow, in parallel, and prints one
band per peer. For each peer the template is protected under the key the two nodes share in
the *holder's* epoch (:mod:`crypto.biohash`): the client first asks the holder for its epoch and
code length (GetEpoch, one unit of the quota), derives the key from its own X25519 key and the
peer's directory entry, checks that the holder derived the same key (``key_id``), projects, and
sends only the codes in batches of at most :data:`BATCH`. A peer that rotated in between
answers FAILED_PRECONDITION ("resync epoch"); the client fetches the new epoch and retries the
batch once.

Invariants:
* Nothing but protected codes (and their count) leaves this node; templates never do, and a
  code is made under one peer's key only, so codes sent to different peers are unlinkable.
* A peer our own copy of the agreements does not allow is shown as "not granted" and not
  called (``ask_all`` calls it anyway, to see its refusal).
* A peer's failure (unreachable, refused, quota spent, or an answer this node cannot use: a
  code length or template dimension it does not support, a key that cannot be derived) becomes
  an "error" row for that peer; it never stops the other peers' answers.
* Every call carries the purpose and is audited on both sides (by :class:`PeerClient`).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from crypto.biohash import SUPPORTED_BITS, ProjectionKey, normalise, pairwise_secret, protect
from crypto.errors import CryptoError
from enlace.v1 import biometric_pb2, match_pb2
from node.agreements import AgreementBook
from node.biometrics.followup import BIOMETRIC_ATTRIBUTES
from node.biometrics.holder import DATASET
from node.biometrics.search_answer import check_search
from node.biometrics.service import FOLLOW_UP, GET_EPOCH, MAX_PROBES, SEARCH
from node.client import PeerClient
from node.errors import EnlaceError, InvalidArgumentError, PeerError
from node.matching.followup_answer import check_answer, check_owner
from node.records.datasets import TEMPLATE_DIMENSION
from node.runtime import NodeRuntime
from node.store.matching_store import FollowUpRecord
from policies.decision import Request

BATCH = 256
Progress = Callable[[int, int], None]
_BANDS = {
    biometric_pb2.ProbeResult.STRONG: "strong",
    biometric_pb2.ProbeResult.PROBABLE: "probable",
    biometric_pb2.ProbeResult.NO_HIT: "no hit",
}


@dataclass(frozen=True)
class Target:
    peer: str
    allowed: bool
    reason: str = ""
    agreement: str = ""


@dataclass(frozen=True)
class PeerKey:
    """The key a peer and this node share in the peer's current epoch."""

    peer: str
    epoch: int
    key: ProjectionKey


@dataclass
class ProbeOutcome:
    """One (probe, peer) answer. ``status``: strong, probable, no hit, not granted, error."""

    probe: int
    peer: str
    status: str
    reference: str = field(default="", repr=False)
    code: str = ""  # gRPC status name of an error
    detail: str = ""
    agreement: str = ""
    epoch: int = 0

    @property
    def hit(self) -> bool:
        return self.status in ("strong", "probable")

    def to_dict(self) -> dict[str, Any]:
        return {
            "probe": self.probe,
            "peer": self.peer,
            "result": self.status,
            "hit_reference": self.reference,
            "status": self.code,
            "detail": self.detail,
            "agreement": self.agreement,
            "epoch": self.epoch,
        }


@dataclass
class BiometricReport:
    labels: list[str]
    outcomes: list[ProbeOutcome]
    seconds: float

    def for_probe(self, index: int) -> list[ProbeOutcome]:
        return [o for o in self.outcomes if o.probe == index]

    def hits(self) -> list[ProbeOutcome]:
        return [o for o in self.outcomes if o.hit]

    def to_dict(self) -> dict[str, Any]:
        return {
            "probes": [
                {"label": label, "results": [o.to_dict() for o in self.for_probe(i)]}
                for i, label in enumerate(self.labels)
            ],
            "seconds": round(self.seconds, 3),
        }


class BiometricClient:
    """The querier's biometric client for one node runtime. Close it when done."""

    def __init__(self, runtime: NodeRuntime, *, timeout: float = 10.0, workers: int = 4) -> None:
        self.runtime = runtime
        self.timeout = timeout
        self.workers = workers
        self.book = AgreementBook(runtime)
        self._clients: dict[str, PeerClient] = {}
        self._keys: dict[str, PeerKey] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def __enter__(self) -> BiometricClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def client(self, peer: str) -> PeerClient:
        with self._lock:
            client = self._clients.get(peer)
            if client is None:
                client = PeerClient(self.runtime, peer, timeout=self.timeout)
                self._clients[peer] = client
            return client

    # -- whom to ask -----------------------------------------------------------------------
    def peers(self) -> list[str]:
        me = self.runtime.config.country
        directory = self.runtime.directory.current(self.runtime.clock.now())
        return sorted(
            m.country for m in directory.members if m.country != me and "member" in m.roles
        )

    def targets(
        self, purpose: str, *, peers: Sequence[str] | None = None, ask_all: bool = False
    ) -> list[Target]:
        """Each peer with what our copy of the agreements says about probing it."""
        now = self.runtime.clock.now()
        view = self.book.current(now)
        me = self.runtime.config.country
        out: list[Target] = []
        for peer in peers or self.peers():
            explanation = view.explain(Request(me, peer, "biometric", DATASET, purpose), now)
            if explanation.allowed and explanation.decision is not None:
                out.append(Target(peer, True, "", explanation.decision.agreement_id))
            else:
                reason = explanation.reasons[0].message if explanation.reasons else "denied"
                out.append(Target(peer, ask_all, reason))
        return out

    # -- keys ------------------------------------------------------------------------------
    def peer_key(self, peer: str, purpose: str, *, refresh: bool = False) -> PeerKey:
        """The key shared with ``peer`` in its current epoch (asked once per client)."""
        cached = self._keys.get(peer)
        if cached is not None and not refresh:
            return cached
        reply = self.client(peer).call(
            GET_EPOCH,
            biometric_pb2.BiometricEpochRequest(),
            biometric_pb2.BiometricEpochResponse,
            purpose=purpose,
        )
        answer = reply.message
        if answer.dimension != TEMPLATE_DIMENSION or answer.bits not in SUPPORTED_BITS:
            raise PeerError(
                f"{peer} announces {answer.bits}-bit codes of {answer.dimension}-value templates; "
                f"this node probes with {TEMPLATE_DIMENSION} values and "
                f"{'/'.join(map(str, SUPPORTED_BITS))} bits",
                peer=peer,
                status_name="FAILED_PRECONDITION",
                hint=f"{peer}'s operator must fix its biometric settings",
            )
        now = self.runtime.clock.now()
        public = self.runtime.directory.current(now).member(peer).x25519_public_key
        try:
            secret = pairwise_secret(
                self.runtime.home.keys.load_x25519_private(),
                public,
                me=self.runtime.config.country,
                peer=peer,
                epoch=answer.epoch,
            )
            key = ProjectionKey.from_secret(
                secret, answer.dimension, answer.bits, orthonormal=answer.orthonormal
            )
        except (CryptoError, ValueError) as exc:
            raise PeerError(
                f"cannot derive the biometric key shared with {peer}: {exc}",
                peer=peer,
                status_name="FAILED_PRECONDITION",
            ) from None
        if key.key_id != answer.key_id:
            raise PeerError(
                f"{peer} derives key {answer.key_id!r} for epoch {answer.epoch}, this node "
                f"derives {key.key_id!r}",
                peer=peer,
                status_name="FAILED_PRECONDITION",
                hint="the two nodes see different X25519 keys: refresh the federation directory",
            )
        shared = PeerKey(peer, answer.epoch, key)
        self._keys[peer] = shared
        return shared

    # -- probing ---------------------------------------------------------------------------
    def search(
        self,
        templates: npt.ArrayLike,
        purpose: str,
        *,
        labels: Sequence[str] | None = None,
        peers: Sequence[str] | None = None,
        ask_all: bool = False,
        progress: Progress | None = None,
        batch: int = BATCH,
    ) -> BiometricReport:
        """Probe every allowed peer with every template (rows of ``templates``)."""
        started = time.perf_counter()
        try:
            unit = normalise(templates, TEMPLATE_DIMENSION)
        except CryptoError as exc:
            raise InvalidArgumentError(str(exc), field="template") from None
        if not 1 <= batch <= MAX_PROBES:
            raise InvalidArgumentError(f"must be 1 to {MAX_PROBES}", field="batch")
        count = unit.shape[0]
        names = list(labels) if labels is not None else [str(i + 1) for i in range(count)]
        targets = self.targets(purpose, peers=peers, ask_all=ask_all)
        outcomes = [
            ProbeOutcome(i, t.peer, "not granted", detail=t.reason)
            for t in targets
            if not t.allowed
            for i in range(count)
        ]
        called = [t for t in targets if t.allowed]
        total = count * len(called)
        done = 0
        lock = threading.Lock()

        def step(n: int) -> None:
            nonlocal done
            with lock:
                done += n
                if progress is not None:
                    progress(done, total)

        def work(target: Target) -> list[ProbeOutcome]:
            out: list[ProbeOutcome] = []
            for start in range(0, count, batch):
                rows = unit[start : start + batch]
                try:
                    out += self._probe(target, rows, start, purpose)
                except EnlaceError as exc:
                    out += self._errors(target.peer, exc, range(start, start + len(rows)))
                except (CryptoError, ValueError) as exc:  # e.g. a TemplateError from protect()
                    failed = PeerError(
                        f"{target.peer}: {exc}", peer=target.peer, status_name="INTERNAL"
                    )
                    out += self._errors(target.peer, failed, range(start, start + len(rows)))
                step(len(rows))
            return out

        if progress is not None:
            progress(0, total)
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(called) or 1))) as pool:
            for found in pool.map(work, called):
                outcomes += found
        outcomes.sort(key=lambda o: (o.probe, o.peer))
        return BiometricReport(names, outcomes, time.perf_counter() - started)

    def _probe(
        self, target: Target, rows: npt.NDArray[np.float64], first: int, purpose: str
    ) -> list[ProbeOutcome]:
        for attempt in range(2):
            shared = self.peer_key(target.peer, purpose, refresh=attempt > 0)
            codes = protect(rows, shared.key)
            request = biometric_pb2.BiometricSearchRequest(
                epoch=shared.epoch,
                key_id=shared.key.key_id,
                bits=shared.key.bits,
                codes=[row.tobytes() for row in codes],
            )
            try:
                reply = self.client(target.peer).call(
                    SEARCH, request, biometric_pb2.BiometricSearchResponse, purpose=purpose
                )
            except PeerError as exc:
                if exc.status_name == "FAILED_PRECONDITION" and attempt == 0:
                    continue  # the holder rotated: fetch its epoch and probe again
                raise
            # One result per probe, among the rest: a malformed answer is the holder's
            # INVALID_ARGUMENT failure for these probes (node/biometrics/search_answer.py).
            check_search(target.peer, reply.message, epoch=shared.epoch, probes=len(rows))
            results = list(reply.message.results)
            return [
                ProbeOutcome(
                    first + i,
                    target.peer,
                    _BANDS.get(r.band, "no hit"),
                    reference=r.hit_reference,
                    agreement=reply.header.agreement,
                    epoch=reply.message.epoch,
                )
                for i, r in enumerate(results)
            ]
        raise AssertionError("unreachable")

    @staticmethod
    def _errors(peer: str, exc: EnlaceError, probes: range) -> list[ProbeOutcome]:
        code = getattr(exc, "status_name", "")
        return [ProbeOutcome(i, peer, "error", code=code, detail=exc.message) for i in probes]

    # -- follow-up -------------------------------------------------------------------------
    def granted_attributes(self, peer: str, purpose: str) -> tuple[str, ...]:
        """The follow-up attributes our copy of the agreement grants on biometric hits."""
        now = self.runtime.clock.now()
        me = self.runtime.config.country
        explanation = self.book.current(now).explain(
            Request(me, peer, "followup", DATASET, purpose), now
        )
        if not explanation.allowed or explanation.decision is None:
            return ()
        granted = set(explanation.decision.grant.attributes)
        return tuple(a for a in BIOMETRIC_ATTRIBUTES if a in granted)

    def follow_up(
        self,
        peer: str,
        *,
        purpose: str,
        case_reference: str = "",
        reference: str = "",
        followup_id: str = "",
        attributes: Sequence[str] = (),
        epoch: int = 0,
    ) -> FollowUpRecord:
        """Redeem a hit ``reference`` (or fetch ``followup_id``) and record the answer."""
        asked = tuple(attributes) or self.granted_attributes(peer, purpose)
        request = biometric_pb2.BiometricFollowUpRequest(
            hit_reference=reference,
            case_reference=case_reference,
            attributes=list(asked),
            followup_id=followup_id,
        )
        reply = self.client(peer).call(
            FOLLOW_UP, request, match_pb2.FollowUpResponse, purpose=purpose
        )
        answer = reply.message
        check_answer(peer, answer, asked)
        now = self.runtime.clock.now()
        released = {a.name: a.value for a in answer.attributes} or None
        matching = self.runtime.store.matching
        existing = matching.followup(answer.followup_id, "outbound")
        check_owner(peer, answer.followup_id, existing, asked_id=followup_id, dataset=DATASET)
        if existing is not None:
            matching.update_followup(
                existing.followup_id,
                "outbound",
                expect=(existing.status,),
                status=answer.status,
                now=now if answer.status != "pending" else None,
                note=answer.reason or None,
                released=released,
            )
            return matching.followup(existing.followup_id, "outbound") or existing
        record = FollowUpRecord(
            followup_id=answer.followup_id,
            direction="outbound",
            peer=peer,
            dataset=DATASET,
            epoch=epoch or (self._keys[peer].epoch if peer in self._keys else 0),
            output_sha256=hashlib.sha256(reference.encode("ascii")).hexdigest()
            if reference
            else "",
            case_reference=case_reference,
            purpose=purpose,
            agreement_id=reply.header.agreement,
            attributes=asked,
            records=(),
            status=answer.status,
            created_at=now,
            decided_at=now if answer.status != "pending" else None,
            note=answer.reason or None,
            released=released,
        )
        matching.add_followup(record)
        return record
