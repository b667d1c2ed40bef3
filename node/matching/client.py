"""Fan-out matching from the querier: every peer whose agreement allows it, every dataset.

Why: an officer with a passport or a name in front of them asks "has anyone seen this?" once;
the node asks every holder the agreements allow, in parallel, and prints one hit / no-hit row
per peer and dataset. The querier's own copy of each agreement decides which peers to ask
(a peer whose agreement does not allow the request is shown as "not granted" and not called;
``ask_all`` calls it anyway, to see its refusal). Batches of thousands are split into Evaluate
calls of at most :data:`BATCH` elements and run concurrently.

Per (peer, dataset): make sure a verified filter is cached (sync on first use), blind the
inputs with fresh random blinds, have them evaluated, unblind and finalise (checking the proof
in VOPRF mode), re-sync when the holder reports a newer filter version or another epoch, and
look the outputs up. A hit is reported with its strength (document, or name + day / month /
year of birth); the output of the strongest hit is kept for a possible follow-up.

Invariants:
* Nothing but blinded elements (and the counts they imply) leaves this node for a query.
* A peer's failure (unreachable, refused, quota spent) becomes an "error" row for that peer; it
  never stops the other peers' answers.
* Every call carries the purpose and is audited on both sides (by :class:`PeerClient`).
* Re-syncs of its own never accept a filter older than the cached one; only an explicit
  :meth:`sync` with ``full`` (``enlace match sync --full``) does.
* A holder that answered "no filter published" for a dataset is not asked again by this
  client for :data:`UNPUBLISHED_TTL` (the answer is repeated as the peer's error row):
  members publish only the datasets they hold, and a fan-out over every dataset would
  otherwise pay a sync round trip per such peer on every query. An explicit :meth:`sync`
  always asks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from crypto.errors import CryptoError
from crypto.oprf import BlindState, HashedInputs, Mode
from enlace.v1 import match_pb2
from node.agreements import AgreementBook
from node.errors import EnlaceError, PeerError
from node.matching.filters import NOT_PUBLISHED
from node.matching.followup import ATTRIBUTES
from node.matching.followup_answer import check_answer, check_owner
from node.matching.keys import parse_input, strongest
from node.matching.peers import (
    EVALUATE,
    FOLLOW_UP,
    CachedFilter,
    PeerFilters,
    StreamingPeerClient,
    sync_filter,
)
from node.matching.querier_crypto import QuerierCrypto
from node.matching.sources import Query, keys_by_dataset
from node.runtime import NodeRuntime
from node.store.followup_store import FollowUpRecord
from policies.decision import Request
from policies.errors import Denied

BATCH = 512  # elements per Evaluate call; several calls run at once so both sides overlap
IN_FLIGHT = 8  # Evaluate calls in flight per peer (at most the thread pool's size)
UNPUBLISHED_TTL = dt.timedelta(seconds=60)  # how long "no filter published" is believed
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Target:
    peer: str
    dataset: str
    allowed: bool
    reason: str = ""
    agreement: str = ""


@dataclass
class Outcome:
    """One (query, peer, dataset) answer."""

    query: int
    peer: str
    dataset: str
    status: str  # "hit", "no hit", "not granted", "error"
    strength: str = ""
    detail: str = ""
    agreement: str = ""
    epoch: int = 0
    output: bytes = field(default=b"", repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "dataset": self.dataset,
            "result": self.status,
            "strength": self.strength,
            "detail": self.detail,
            "agreement": self.agreement,
        }


@dataclass
class MatchReport:
    queries: list[Query]
    outcomes: list[Outcome]
    elements: int
    seconds: float

    def for_query(self, index: int) -> list[Outcome]:
        return [o for o in self.outcomes if o.query == index]

    def hits(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "hit"]


class HashMemo:
    """The inputs of one fan-out hashed to the group once, whichever holder's thread asks first.

    Scoped to one :meth:`MatchClient.run` (never kept across queries: it holds the inputs).
    The first thread hashes and blinds its own batch in one go; the others wait for the hashes
    instead of computing them again, then blind with fresh blinds of their own.
    """

    def __init__(self, crypto: QuerierCrypto) -> None:
        self._crypto = crypto
        self._lock = threading.Lock()
        self._entries: dict[tuple[int, tuple[bytes, ...]], tuple[threading.Lock, list[Any]]] = {}

    def blind(self, inputs: Sequence[bytes], mode: Mode) -> BlindState:
        key = (int(mode), tuple(inputs))
        with self._lock:
            entry = self._entries.setdefault(key, (threading.Lock(), []))
        lock, box = entry
        with lock:
            if not box:
                points, state = self._crypto.hash_and_blind(key[1], mode)
                box.append(points)
                return state
            found: HashedInputs = box[0]
        return self._crypto.blind(key[1], mode, found)


class MatchClient:
    """The querier's matching client for one node runtime. Close it when done.

    ``workers`` threads run the calls; ``crypto_workers`` processes do the OPRF arithmetic of
    large batches (0: one per usable core, at most 8; 1: none; see
    :mod:`node.matching.querier_crypto`).
    """

    def __init__(
        self,
        runtime: NodeRuntime,
        *,
        timeout: float = 10.0,
        workers: int = 8,
        crypto_workers: int = 0,
    ) -> None:
        self.runtime = runtime
        self.timeout = timeout
        self.workers = workers
        self.filters = PeerFilters(runtime)
        self.book = AgreementBook(runtime)
        self._clients: dict[str, StreamingPeerClient] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="match")
        self._sync_locks: dict[tuple[str, str], threading.Lock] = {}
        # (peer, dataset) -> when the peer said it has no filter, and what it said.
        self._unpublished: dict[tuple[str, str], tuple[dt.datetime, str, str]] = {}
        self.crypto = QuerierCrypto(crypto_workers)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.crypto.close()
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def __enter__(self) -> MatchClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def client(self, peer: str) -> StreamingPeerClient:
        with self._lock:
            client = self._clients.get(peer)
            if client is None:
                client = StreamingPeerClient(self.runtime, peer, timeout=self.timeout)
                self._clients[peer] = client
            return client

    # -- whom to ask -----------------------------------------------------------------------
    def peers(self) -> list[str]:
        me = self.runtime.config.country
        directory = self.runtime.directory.current(self.runtime.clock.now())
        return sorted(m.country for m in directory.members if m.country != me)

    def targets(
        self,
        datasets: Sequence[str],
        purpose: str,
        *,
        peers: Sequence[str] | None = None,
        ask_all: bool = False,
        service: str = "match",
    ) -> list[Target]:
        """Each (peer, dataset) with what our copy of the agreements says about it."""
        now = self.runtime.clock.now()
        me = self.runtime.config.country
        view = self.book.current(now)  # one read of the store for the whole fan-out
        out: list[Target] = []
        for peer in peers or self.peers():
            for dataset in datasets:
                request = Request(me, peer, service, dataset, purpose)
                try:  # the book remembers allowed decisions; a refusal is explained afresh
                    decision = self.book.decide(request, now, view)
                except Denied:
                    explanation = view.explain(request, now)
                    reason = explanation.reasons[0].message if explanation.reasons else "denied"
                    out.append(Target(peer, dataset, ask_all, reason))
                else:
                    out.append(Target(peer, dataset, True, "", decision.agreement_id))
        return out

    # -- one peer and dataset --------------------------------------------------------------
    def sync(self, peer: str, dataset: str, purpose: str, *, full: bool = False) -> CachedFilter:
        lock = self._sync_locks.setdefault((peer, dataset), threading.Lock())
        with lock:
            synced = sync_filter(
                self.client(peer), self.filters, dataset, purpose=purpose, full=full
            )
        self._unpublished.pop((peer, dataset), None)
        return synced

    def _cached(self, peer: str, dataset: str, purpose: str) -> CachedFilter:
        cached = self.filters.get(peer, dataset)
        if cached is not None:
            return cached
        now = self.runtime.clock.now()
        known = self._unpublished.get((peer, dataset))
        if known is not None and known[0] <= now < known[0] + UNPUBLISHED_TTL:
            # A fresh error each time: re-raising one object would chain every query's frames
            # (and the inputs in them) onto its traceback.
            _, message, hint = known
            raise PeerError(message, peer=peer, status_name="FAILED_PRECONDITION", hint=hint)
        try:
            return self.sync(peer, dataset, purpose)
        except PeerError as exc:
            if exc.status_name == "FAILED_PRECONDITION" and NOT_PUBLISHED in exc.message:
                self._unpublished[(peer, dataset)] = (now, exc.message, exc.hint)
            raise

    def evaluate(
        self,
        peer: str,
        dataset: str,
        inputs: Sequence[bytes],
        purpose: str,
        *,
        hashed: HashMemo | None = None,
    ) -> tuple[list[bytes], CachedFilter, str]:
        """Finalised outputs of ``inputs`` under the holder's key, the (current) filter to look
        them up in, and the agreement the holder cited. ``hashed`` shares the inputs' hash to
        the group between the holders of one fan-out (the blinds are fresh for each)."""
        cached = self._cached(peer, dataset, purpose)
        for attempt in range(2):
            mode = Mode.VOPRF if cached.manifest.mode == "voprf" else Mode.OPRF
            if hashed is not None:
                state = hashed.blind(inputs, mode)
            else:
                state = self.crypto.blind(inputs, mode)
            request = match_pb2.EvaluateRequest(
                dataset=dataset,
                epoch=cached.manifest.epoch,
                blinded_elements=list(state.blinded_elements),
            )
            try:
                reply = self.client(peer).call(
                    EVALUATE, request, match_pb2.EvaluateResponse, purpose=purpose
                )
            except PeerError as exc:
                if exc.status_name == "FAILED_PRECONDITION" and attempt == 0:
                    # Not a full re-sync: another epoch comes whole anyway, and an older
                    # filter than ours must stay refused unless the operator asks for it.
                    cached = self.sync(peer, dataset, purpose)
                    continue
                raise
            answer = reply.message
            if (answer.epoch, answer.filter_version) != (
                cached.manifest.epoch,
                cached.manifest.version,
            ):
                cached = self.sync(peer, dataset, purpose)
                if cached.manifest.epoch != answer.epoch:
                    continue  # rotated between the calls: blind again for the new epoch
            evaluated = list(answer.evaluated_elements)
            try:
                if mode == Mode.VOPRF:
                    key = cached.manifest.public_key_bytes
                    assert key is not None
                    outputs = self.crypto.finalize(
                        state, evaluated, proof=bytes(answer.proof), public_key=key
                    )
                else:
                    outputs = self.crypto.finalize(state, evaluated)
            except CryptoError as exc:
                raise PeerError(
                    f"{peer}'s evaluation does not verify: {exc}",
                    peer=peer,
                    status_name="UNAUTHENTICATED",
                    hint="the holder answered with another key or altered elements",
                ) from None
            return outputs, cached, reply.header.agreement
        raise PeerError(
            f"{peer} changed its key epoch twice during one query",
            peer=peer,
            status_name="FAILED_PRECONDITION",
            hint="retry",
        )

    # -- fan-out ---------------------------------------------------------------------------
    def run(
        self,
        queries: Sequence[Query],
        datasets: Sequence[str],
        *,
        purpose: str,
        peers: Sequence[str] | None = None,
        ask_all: bool = False,
        progress: Progress | None = None,
    ) -> MatchReport:
        started = time.perf_counter()
        keyed = keys_by_dataset(queries, datasets)
        targets = self.targets(datasets, purpose, peers=peers, ask_all=ask_all)
        outcomes: list[Outcome] = []
        units: list[tuple[Target, list[tuple[int, bytes]]]] = []
        for target in targets:
            pairs = keyed.get(target.dataset, [])
            if not target.allowed:
                outcomes += [
                    Outcome(i, target.peer, target.dataset, "not granted", detail=target.reason)
                    for i in sorted({q for q, _ in pairs})
                ]
                continue
            for start in range(0, len(pairs), BATCH):
                units.append((target, pairs[start : start + BATCH]))
        total = sum(len(pairs) for _, pairs in units)
        hashed = HashMemo(self.crypto)
        done = [0]
        done_lock = threading.Lock()

        # Several calls per peer in flight keep the OPRF workers and the holder busy at once:
        # with one peer and three in flight, both sides waited for each other (1.50x PSI's
        # throughput against 1.72x with six, bench_match --holder 100000).
        in_flight = {t.peer: threading.BoundedSemaphore(IN_FLIGHT) for t in targets}

        def work(unit: tuple[Target, list[tuple[int, bytes]]]) -> list[Outcome]:
            target, pairs = unit
            with in_flight[target.peer]:
                result = self._run_unit(target, pairs, purpose, hashed)
            with done_lock:
                done[0] += len(pairs)
                if progress is not None:
                    progress(done[0], total)
            return result

        for result in self._pool.map(work, units):
            outcomes.extend(result)
        order = {t: n for n, t in enumerate((t.peer, t.dataset) for t in targets)}
        outcomes.sort(key=lambda o: (o.query, order.get((o.peer, o.dataset), 0)))
        return MatchReport(list(queries), outcomes, total, time.perf_counter() - started)

    def _run_unit(
        self,
        target: Target,
        pairs: list[tuple[int, bytes]],
        purpose: str,
        hashed: HashMemo | None = None,
    ) -> list[Outcome]:
        queries = sorted({q for q, _ in pairs})
        try:
            outputs, cached, agreement = self.evaluate(
                target.peer, target.dataset, [value for _, value in pairs], purpose, hashed=hashed
            )
        except EnlaceError as exc:
            return [
                Outcome(q, target.peer, target.dataset, "error", detail=str(exc)) for q in queries
            ]
        found = cached.filter.contains_many(outputs)
        hits: dict[int, list[tuple[bytes, bytes]]] = {}
        for (query, value), output, hit in zip(pairs, outputs, found, strict=True):
            if hit:
                hits.setdefault(query, []).append((value, output))
        out: list[Outcome] = []
        for query in queries:
            if query not in hits:
                out.append(
                    Outcome(
                        query,
                        target.peer,
                        target.dataset,
                        "no hit",
                        agreement=agreement,
                        epoch=cached.manifest.epoch,
                    )
                )
                continue
            parsed = {parse_input(v): (v, o) for v, o in hits[query]}
            best = strongest(list(parsed))
            assert best is not None
            out.append(
                Outcome(
                    query,
                    target.peer,
                    target.dataset,
                    "hit",
                    strength=best.strength,
                    agreement=agreement,
                    epoch=cached.manifest.epoch,
                    output=parsed[best][1],
                )
            )
        return out

    # -- follow-up -------------------------------------------------------------------------
    def granted_attributes(self, peer: str, dataset: str, purpose: str) -> tuple[str, ...]:
        """The follow-up attributes our copy of the agreement grants for (peer, dataset)."""
        now = self.runtime.clock.now()
        me = self.runtime.config.country
        explanation = self.book.current(now).explain(
            Request(me, peer, "followup", dataset, purpose), now
        )
        if not explanation.allowed or explanation.decision is None:
            return ()
        granted = set(explanation.decision.grant.attributes)
        return tuple(a for a in ATTRIBUTES.get(dataset, ()) if a in granted)

    def follow_up(
        self,
        hit: Outcome,
        *,
        case_reference: str,
        purpose: str,
        attributes: Sequence[str] = (),
        followup_id: str = "",
    ) -> FollowUpRecord:
        """Reveal the output of ``hit`` (or fetch ``followup_id``) and record the answer."""
        asked = tuple(attributes) or self.granted_attributes(hit.peer, hit.dataset, purpose)
        request = match_pb2.FollowUpRequest(
            dataset=hit.dataset,
            epoch=hit.epoch,
            output=b"" if followup_id else hit.output,
            case_reference=case_reference,
            attributes=list(asked),
            followup_id=followup_id,
        )
        reply = self.client(hit.peer).call(
            FOLLOW_UP, request, match_pb2.FollowUpResponse, purpose=purpose
        )
        answer = reply.message
        check_answer(hit.peer, answer, asked)
        now = self.runtime.clock.now()
        record = FollowUpRecord(
            followup_id=answer.followup_id,
            direction="outbound",
            peer=hit.peer,
            dataset=hit.dataset,
            epoch=hit.epoch,
            output_sha256=hashlib.sha256(hit.output).hexdigest() if hit.output else "",
            case_reference=case_reference,
            purpose=purpose,
            agreement_id=reply.header.agreement,
            attributes=asked,
            records=(),
            status=answer.status,
            created_at=now,
            decided_at=now if answer.status != "pending" else None,
            note=answer.reason or None,
            released={a.name: a.value for a in answer.attributes} or None,
        )
        matching = self.runtime.store.matching
        existing = matching.followup(record.followup_id, "outbound")
        check_owner(
            hit.peer, record.followup_id, existing, asked_id=followup_id, dataset=hit.dataset
        )
        if existing is None:
            matching.add_followup(record)
        else:
            matching.update_followup(
                record.followup_id,
                "outbound",
                expect=(existing.status,),
                status=record.status,
                now=now,
                note=record.note,
                released=record.released,
            )
            # As stored now: the holder's note and decision time with the new status (a copy of
            # the old record kept its empty note, so a denial's reason showed only next time).
            record = matching.followup(record.followup_id, "outbound") or record
        return record
