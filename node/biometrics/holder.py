"""The holder's biometric galleries: one per peer, under the key it shares with that peer.

Why: a querier probes with a code made under the pairwise key of the two nodes and the
holder's current epoch (:mod:`crypto.biohash`), so the holder must keep, per peer, the codes of
its own templates under that same key and search them exactly (DESIGN section 8). Projecting a
million templates costs about a minute of CPU, so galleries are persisted (one code per record
and peer, :mod:`node.store.biometric_store`) and kept current incrementally: when an import has
committed since a gallery was last brought up to date, only new or changed templates are
projected and codes of deleted or changed ones are removed. A gallery that does not exist yet
is built on the first search of its peer; :meth:`GalleryHolder.refresh` builds it ahead of time.

The epoch lives in ``node_state`` (``biometric.epoch``, 1 until the first rotation) with the
code length (``biometric.bits``, :data:`~crypto.biohash.DEFAULT_BITS` by default). Galleries of
biometric code format 1 (a key id of the old derivation, 256-1024-bit codes) are migrated by
rebuilding them from the stored templates on their next refresh or search: their state no
longer describes the current key, exactly as after a rotation; a stored format-1 code length
is read as the default length. :meth:`GalleryHolder.rotate` moves to the next
epoch and forgets every code of the old one: codes computed under an old key then match
nothing, and probes under it are refused with FAILED_PRECONDITION ("resync epoch").

Invariants:
* A gallery in memory always corresponds to one (peer, epoch, key id, code length); it is
  replaced, never mixed, when any of them changes, and searched under the peer's lock.
* A hit is answered with a fresh random reference (never the record id); only its SHA-256 is
  stored, with the record, the peer, the epoch and an expiry (:data:`HIT_TTL`); expired ones
  are deleted as new hits are stored (at most every :data:`PURGE_EVERY`).
* Time is injected (``now``); nothing here reads the clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from sqlalchemy.exc import IntegrityError

from crypto.biohash import (
    DEFAULT_BITS,
    SUPPORTED_BITS,
    Codes,
    ProjectionKey,
    check_bits,
    pairwise_secret,
)
from crypto.biohash import protect as protect_templates
from crypto.errors import CryptoError
from node.biometrics.gallery import Band, CodeGallery
from node.errors import FailedPreconditionError, InvalidArgumentError, StoreError
from node.home import NodeHome
from node.records.datasets import TEMPLATE_DIMENSION
from node.runtime import DirectoryHolder
from node.store import Store
from node.store.biometric_store import BITS_STATE, EPOCH_STATE, CodeRow, GalleryState, HitRecord
from policies.decision import AgreementSet

DATASET = "biometric_templates"
FIRST_EPOCH = 1
HIT_TTL = dt.timedelta(days=7)
PURGE_EVERY = dt.timedelta(hours=1)
_PROJECT_CHUNK = 5_000


@dataclass(frozen=True)
class EpochState:
    """The holder's current biometric parameters, which both sides need to derive the key."""

    epoch: int
    bits: int = DEFAULT_BITS
    dimension: int = TEMPLATE_DIMENSION
    orthonormal: bool = True


@dataclass(frozen=True)
class RefreshReport:
    peer: str
    epoch: int
    key_id: str
    projected: int
    removed: int
    codes: int
    rebuilt: bool
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ProbeAnswer:
    """The holder's answer to one probe; ``reference`` is empty for a no-hit."""

    band: Band
    reference: str
    distance: int | None  # stays at the holder (logs, tests), never sent


@dataclass
class _Loaded:
    epoch: int
    key_id: str
    bits: int
    marker: str
    gallery: CodeGallery


def project_vectors(rows: Iterable[tuple[str, str, bytes]], key: ProjectionKey) -> list[CodeRow]:
    """Codes of stored templates (float32 little-endian vectors) under ``key``, projected in
    chunks as the rows arrive."""
    out: list[CodeRow] = []
    width = 4 * key.dim
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, _PROJECT_CHUNK)):
        bad = next((r[0] for r in chunk if len(r[2]) != width), None)
        if bad is not None:
            raise StoreError(f"template {bad} is not a {key.dim}-dimensional float32 vector")
        vectors = np.frombuffer(b"".join(r[2] for r in chunk), dtype="<f4").reshape(-1, key.dim)
        try:
            codes = protect_templates(vectors, key)
        except CryptoError as exc:
            raise StoreError(f"a stored template cannot be protected: {exc}") from exc
        out.extend((r[0], r[1], code.tobytes()) for r, code in zip(chunk, codes, strict=True))
    return out


def reference_digest(reference: str) -> str:
    return hashlib.sha256(reference.encode("utf-8")).hexdigest()


class GalleryHolder:
    """Biometric state of one node as a holder. Thread-safe; keys and galleries are cached."""

    def __init__(
        self, store: Store, home: NodeHome, country: str, directory: DirectoryHolder
    ) -> None:
        self.store = store
        self.home = home
        self.country = country
        self.directory = directory
        self._keys: dict[tuple[str, bytes, int, int, int], ProjectionKey] = {}
        self._loaded: dict[str, _Loaded] = {}
        self._locks: dict[str, threading.RLock] = {}
        self._lock = threading.Lock()
        self._purged_at: dt.datetime | None = None

    # -- epoch and keys --------------------------------------------------------------------
    def current(self) -> tuple[EpochState, str]:
        """The epoch state and the marker of the template imports, read in one query."""
        snap = self.store.biometrics.snapshot()
        bits = snap.bits if snap.bits in SUPPORTED_BITS else DEFAULT_BITS  # format 1: migrate
        state = EpochState(snap.epoch or FIRST_EPOCH, bits)
        return state, snap.marker

    def state(self) -> EpochState:
        return self.current()[0]

    def key_for(self, peer: str, state: EpochState, now: dt.datetime) -> ProjectionKey:
        """The projection key this node shares with ``peer`` in ``state``'s epoch."""
        public = self.directory.current(now).member(peer).x25519_public_key
        cache_key = (peer, public, state.epoch, state.bits, state.dimension)
        key = self._keys.get(cache_key)
        if key is None:
            try:
                secret = pairwise_secret(
                    self.home.keys.load_x25519_private(),
                    public,
                    me=self.country,
                    peer=peer,
                    epoch=state.epoch,
                )
            except CryptoError as exc:
                raise FailedPreconditionError(
                    f"no pairwise biometric key with {peer}: {exc}",
                    hint=f"{peer} must publish a valid X25519 key in the federation directory",
                ) from exc
            key = ProjectionKey.from_secret(
                secret, state.dimension, state.bits, orthonormal=state.orthonormal
            )
            self._keys[cache_key] = key
        return key

    def _peer_lock(self, peer: str) -> threading.RLock:
        with self._lock:
            return self._locks.setdefault(peer, threading.RLock())

    def source_marker(self) -> str:
        """What identifies the template imports a gallery reflects (changes with each one)."""
        return self.current()[1]

    # -- galleries -------------------------------------------------------------------------
    def refresh(self, peer: str, now: dt.datetime, *, rebuild: bool = False) -> RefreshReport:
        """Bring ``peer``'s stored and loaded gallery in line with the stored templates."""
        with self._peer_lock(peer):
            return self._refresh(peer, self.state(), now, rebuild)

    def _refresh(
        self, peer: str, state: EpochState, now: dt.datetime, rebuild: bool
    ) -> RefreshReport:
        started = time.perf_counter()
        key = self.key_for(peer, state, now)
        marker = self.source_marker()
        biometrics = self.store.biometrics
        for attempt in range(2):
            stored = biometrics.gallery_state(peer)
            replace = rebuild or stored is None or not _describes(stored, state, key)
            removed: list[str] = []
            added: list[CodeRow] = []
            if replace or (stored is not None and stored.source_marker != marker):
                if replace:
                    todo = biometrics.template_ids()
                else:
                    removed = biometrics.orphan_codes(peer, state.epoch)
                    todo = biometrics.stale_templates(peer, state.epoch)
                added = project_vectors(biometrics.templates(todo), key)
                new_state = GalleryState(
                    peer, state.epoch, key.key_id, state.bits, state.dimension, marker, 0, now
                )
                try:
                    biometrics.apply_changes(new_state, removed, added, replace=replace)
                except IntegrityError:  # another process updated it first: look again
                    if attempt:
                        raise
                    continue
            loaded = self._loaded.get(peer)
            if (
                loaded is not None
                and stored is not None
                and not replace
                and not removed
                and _matches(loaded, state, key, stored.source_marker)
            ):  # memory held the stored gallery as it was: add what was just added
                if added:
                    joined = np.frombuffer(b"".join(r[2] for r in added), dtype=np.uint8)
                    loaded.gallery.add([r[0] for r in added], joined.reshape(len(added), -1))
                loaded.marker = marker
            else:
                loaded = self._load(peer, state, key, marker)
            self._loaded[peer] = loaded
            seconds = time.perf_counter() - started
            count = len(loaded.gallery)
            return RefreshReport(
                peer, state.epoch, key.key_id, len(added), len(removed), count, replace, seconds
            )
        raise StoreError(f"the biometric gallery of {peer} could not be updated")

    def _load(self, peer: str, state: EpochState, key: ProjectionKey, marker: str) -> _Loaded:
        ids, joined = self.store.biometrics.load_codes(peer, state.epoch)
        gallery = CodeGallery(state.bits, key_id=key.key_id)
        if ids:
            gallery.add(ids, np.frombuffer(joined, dtype=np.uint8).reshape(len(ids), -1))
        return _Loaded(state.epoch, key.key_id, state.bits, marker, gallery)

    def search(
        self,
        peer: str,
        codes: Codes,
        now: dt.datetime,
        *,
        state: EpochState,
        agreement_id: str,
        marker: str | None = None,
    ) -> list[ProbeAnswer]:
        """Nearest code and band of each probe; hits get fresh single-use references.
        ``marker`` is the :meth:`current` one read with ``state``, to save a query."""
        with self._peer_lock(peer):
            key = self.key_for(peer, state, now)
            loaded = self._loaded.get(peer)
            seen = marker if marker is not None else self.source_marker()
            if loaded is None or not _matches(loaded, state, key, seen):
                self._refresh(peer, state, now, False)
                loaded = self._loaded[peer]
            gallery = loaded.gallery
            gallery.require_key(key.key_id)
            nearest = gallery.search_batch(codes, 1)
        answers: list[ProbeAnswer] = []
        hits: list[HitRecord] = []
        for found in nearest:
            band: Band = gallery.band(found[0].distance) if found else "no-hit"
            if band == "no-hit":
                answers.append(ProbeAnswer("no-hit", "", found[0].distance if found else None))
                continue
            reference = secrets.token_hex(20)
            hits.append(
                HitRecord(
                    reference_digest(reference),
                    peer,
                    state.epoch,
                    found[0].id,
                    band,
                    agreement_id,
                    now,
                    now + HIT_TTL,
                )
            )
            answers.append(ProbeAnswer(band, reference, found[0].distance))
        self.store.biometrics.add_hits(hits)
        if hits and (self._purged_at is None or now - self._purged_at >= PURGE_EVERY):
            self._purged_at = now
            self.store.biometrics.purge_hits(now)  # expired references, used or not
        return answers

    # -- epochs ----------------------------------------------------------------------------
    def rotate(
        self, now: dt.datetime, peers: Iterable[str] = (), *, bits: int | None = None
    ) -> tuple[EpochState, list[RefreshReport]]:
        """Move to the next epoch (optionally another code length), forget every old code and
        rebuild the galleries of ``peers`` (others are built on their first search)."""
        if bits is not None:
            try:
                check_bits(bits)
            except ValueError as exc:
                raise InvalidArgumentError(str(exc), field="bits") from None
        old = self.state()
        new = EpochState(old.epoch + 1, bits or old.bits)
        # Together, in one transaction: codes of one length under another epoch match nothing.
        self.store.put_states({EPOCH_STATE: str(new.epoch), BITS_STATE: str(new.bits)}, now)
        self.store.biometrics.drop_other_epochs(new.epoch)
        with self._lock:
            self._loaded.clear()
        return new, [self.refresh(peer, now) for peer in sorted(set(peers))]

    def granted_peers(self, view: AgreementSet, now: dt.datetime) -> list[str]:
        """Peers that an agreement in its validity window lets probe this node's templates."""
        peers: set[str] = set()
        for verified in view.agreements:
            agreement = verified.agreement
            if not agreement.valid_from <= now < agreement.valid_until:
                continue
            for grant in agreement.grants:
                if (
                    grant.holder == self.country
                    and grant.service == "biometric"
                    and DATASET in grant.datasets
                ):
                    peers.add(grant.requester)
        return sorted(peers)


def _describes(stored: GalleryState, state: EpochState, key: ProjectionKey) -> bool:
    return (
        stored.epoch == state.epoch
        and stored.key_id == key.key_id
        and stored.bits == state.bits
        and stored.dimension == state.dimension
    )


def _matches(loaded: _Loaded, state: EpochState, key: ProjectionKey, marker: str) -> bool:
    return (
        loaded.epoch == state.epoch
        and loaded.key_id == key.key_id
        and loaded.bits == state.bits
        and loaded.marker == marker
    )
