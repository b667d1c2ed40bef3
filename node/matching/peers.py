"""The querier's view of one holder: streamed filter sync, the verified filter cache, Evaluate.

Why: a querier looks finalised outputs up in the holder's filter, so it must hold a copy it
has verified — the manifest signed by the holder's directory key, for the expected holder and
dataset, and a filter whose size, SHA-256 and header match that manifest (for a delta: the
filter after applying it re-encodes to the manifest's SHA-256). Filters are cached in the
store (``match_peer_filters``) and re-verified when loaded; in memory they are kept decoded.

Invariants:
* Nothing unverified is ever cached or looked up: :meth:`PeerFilters.install` raises
  (:class:`~crypto.errors.VerificationError`) on any mismatch and leaves the cache as it was.
* Every streamed message is its own signed response bound to our request digest
  (:meth:`StreamingPeerClient.receive`); one outbound audit entry records the exchange.
* A sync stream may announce at most :data:`MAX_SYNC_BYTES` bytes, and is checked message by
  message as it arrives: the first message past the announced size (or count, or otherwise
  out of line) cancels the stream, so nothing beyond the announced size is ever buffered.
* The cached copy never goes back: a filter of a lower (epoch, version) than the cached one is
  refused (``FAILED_PRECONDITION``), unless the operator asked for a full re-sync.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from crypto.chunks import MIN_CHUNK_SIZE, ChunkAssembler
from crypto.envelope import Sealed
from crypto.errors import CryptoError, EncodingError, VerificationError
from crypto.filter import Filter, apply_delta, decode_delta, encode_filter
from crypto.match_keys import (
    FilterManifest,
    SignedManifest,
    verify_filter,
    verify_filter_state,
    verify_manifest,
)
from enlace.v1 import envelope_pb2, match_pb2
from node.client import PeerClient, PeerReply
from node.errors import EnlaceError, PeerError
from node.peer_checks import citation_problem
from node.runtime import NodeRuntime
from node.store.matching_store import StoredFilter

M = TypeVar("M", bound=Message)

SERVICE = "enlace.v1.MatchService"
SYNC = f"/{SERVICE}/SyncFilter"
EVALUATE = f"/{SERVICE}/Evaluate"
FOLLOW_UP = f"/{SERVICE}/FollowUp"
GET_MANIFEST = f"/{SERVICE}/GetManifest"
MAX_SYNC_BYTES = 512 * 1024 * 1024
MAX_STREAM_MESSAGES = MAX_SYNC_BYTES // (16 * 1024) + 1


class StreamingPeerClient(PeerClient):
    """:class:`PeerClient` plus server-streaming calls, verified message by message."""

    def receive(
        self,
        method: str,
        request: Message,
        response_type: type[M],
        accept: Callable[[PeerReply[M]], None],
        *,
        agreement: str = "",
        purpose: str = "",
        timeout: float | None = None,
    ) -> int:
        """Hand each message of a server-streaming call to ``accept`` as it arrives, verified;
        return how many there were.

        Why one at a time: ``accept`` may refuse a message by raising (an :class:`EnlaceError`
        or :class:`CryptoError`), e.g. data past the size the stream announced. The call is
        then cancelled at once, so a peer cannot make this node take in more than it agreed
        to. A refusal, like a message that does not verify, is audited and raised as
        :class:`PeerError`; what ``accept`` kept of the stream is the caller's to discard.
        """
        sealed = self.seal_request(
            method, request.SerializeToString(), agreement=agreement, purpose=purpose
        )
        call = self.channel.unary_stream(
            method,
            request_serializer=envelope_pb2.Envelope.SerializeToString,
            response_deserializer=envelope_pb2.Envelope.FromString,
        )
        wire = envelope_pb2.Envelope(
            header=sealed.header, signature=sealed.signature, body=sealed.body
        )
        started = self.runtime.clock.now()
        count = 0
        first: Sealed | None = None
        answers = call(wire, timeout=timeout or self.timeout)
        try:
            for answer in answers:
                count += 1
                response = Sealed(bytes(answer.header), bytes(answer.signature), bytes(answer.body))
                first = first or response
                if count > MAX_STREAM_MESSAGES:
                    raise EncodingError(f"more than {MAX_STREAM_MESSAGES} stream messages")
                header = self._verify(response, sealed, method)
                cited = citation_problem(header)
                if cited:
                    raise PeerError(cited, peer=self.peer, status_name="INVALID_ARGUMENT")
                message = response_type.FromString(response.body)
                elapsed = (self.runtime.clock.now() - started).total_seconds() * 1000
                accept(PeerReply(message, header, sealed.digest, elapsed))
        except grpc.RpcError as exc:
            error = self._translate(exc)
            refusal = self._signed_refusal(exc, sealed)
            self._audit(method, sealed, refusal, error.status_name, error.message, started)
            raise error from None
        except (EnlaceError, CryptoError, DecodeError) as exc:
            answers.cancel()  # take nothing more of this stream
            malformed = isinstance(exc, PeerError) and exc.status_name == "INVALID_ARGUMENT"
            error = PeerError(
                f"stream from {self.peer} refused at message {count}: {exc}",
                peer=self.peer,
                status_name="INVALID_ARGUMENT" if malformed else "UNAUTHENTICATED",
                hint=f"{self.peer}'s node answered outside the protocol; ask its operator"
                if malformed
                else "the peer or something between us altered the answer; check the directory",
            )
            self._audit(method, sealed, first, error.status_name, error.message, started)
            raise error from None
        self._audit(method, sealed, first, "OK", "", started)
        return count


@dataclass(frozen=True)
class CachedFilter:
    """A holder's filter the querier verified, with the manifest it was verified against."""

    peer: str
    manifest: FilterManifest
    filter: Filter
    stored: StoredFilter


def _signed(message: match_pb2.SignedManifest) -> SignedManifest:
    return SignedManifest(bytes(message.body), bytes(message.signature), message.key_id)


class PeerFilters:
    """The verified filters of every peer and dataset (memory, backed by the store)."""

    def __init__(self, runtime: NodeRuntime) -> None:
        self.runtime = runtime
        self._memory: dict[tuple[str, str], CachedFilter] = {}
        self._lock = threading.Lock()
        self._loaded = False

    def _verify_manifest(self, peer: str, dataset: str, signed: SignedManifest) -> FilterManifest:
        directory = self.runtime.directory.current(self.runtime.clock.now())
        manifest = FilterManifest.from_json(signed.body)
        public_key = directory.signing_key(peer, signed.key_id, manifest.created_at)
        return verify_manifest(signed, public_key, holder=peer, dataset=dataset)

    def _verified(self, stored: StoredFilter) -> CachedFilter | None:
        try:
            signed = SignedManifest(stored.manifest, stored.signature, stored.key_id)
            manifest = self._verify_manifest(stored.peer, stored.dataset, signed)
            filt = verify_filter(manifest, stored.encoded)
        except (CryptoError, EnlaceError):
            return None  # a cached copy that no longer verifies is simply not used
        return CachedFilter(stored.peer, manifest, filt, stored)

    def _load(self) -> None:
        """Verify and decode every cached filter once per process. Decoding is numpy work that
        runs without the interpreter lock, so the filters are spread over one thread per core
        (ten 1M-record holders are some 90M entries: seconds on one core)."""
        if self._loaded:
            return
        stored = self.runtime.store.matching.peer_filters()
        with ThreadPoolExecutor(max(1, min(len(stored), os.cpu_count() or 1))) as pool:
            for cached in pool.map(self._verified, stored):
                if cached is not None:
                    self._memory[(cached.stored.peer, cached.stored.dataset)] = cached
        self._loaded = True

    @staticmethod
    def _refuse_older(
        peer: str, dataset: str, offered: FilterManifest, held: tuple[int, int]
    ) -> None:
        if (offered.epoch, offered.version) < held:
            raise PeerError(
                f"{peer}'s {dataset} filter of epoch {offered.epoch} version {offered.version} "
                f"is older than the epoch {held[0]} version {held[1]} this node holds; "
                "refused: an older filter replaces a newer one only in a full re-sync",
                peer=peer,
                status_name="FAILED_PRECONDITION",
                hint=f"if {peer} really went back (restored from a backup), ask for a full "
                f"re-sync: enlace match sync --peer {peer} --dataset {dataset} --full",
            )

    def get(self, peer: str, dataset: str) -> CachedFilter | None:
        with self._lock:
            self._load()
            return self._memory.get((peer, dataset))

    def install(
        self,
        peer: str,
        dataset: str,
        signed: SignedManifest,
        kind: int,
        payload: bytes,
        now: dt.datetime,
        *,
        allow_older: bool = False,
    ) -> CachedFilter:
        """Verify what a sync delivered and make it the cached copy (raises on any mismatch).

        A filter with a lower (epoch, version) than the cached one is refused unless
        ``allow_older`` (an explicit full re-sync): a signed manifest never expires, so an old
        one replayed, or served by a holder restored from a backup, would silently hide every
        record added since.
        """
        manifest = self._verify_manifest(peer, dataset, signed)
        current = self.get(peer, dataset)
        if current is not None and not allow_older:
            held = (current.manifest.epoch, current.manifest.version)
            self._refuse_older(peer, dataset, manifest, held)
        if kind == match_pb2.FilterChunk.FULL:
            filt = verify_filter(manifest, payload)
            encoded = payload
        elif kind == match_pb2.FilterChunk.DELTA:
            if current is None or current.manifest.epoch != manifest.epoch:
                raise VerificationError("a delta arrived for a filter this node does not hold")
            filt = current.filter
            if payload:
                filt = apply_delta(filt, decode_delta(payload))
            verify_filter_state(manifest, filt)
            encoded = encode_filter(filt, manifest.encoding)
        else:
            raise EncodingError(f"unknown filter chunk kind {kind}")
        stored = StoredFilter(
            dataset,
            manifest.epoch,
            manifest.version,
            signed.body,
            signed.signature,
            signed.key_id,
            encoded,
            now,
            peer=peer,
        )
        newer = self.runtime.store.matching.save_peer_filter(stored, allow_older=allow_older)
        if newer is not None:  # another process of this node stored a newer copy meanwhile
            self._refuse_older(peer, dataset, manifest, newer)
        cached = CachedFilter(peer, manifest, filt, stored)
        with self._lock:
            self._memory[(peer, dataset)] = cached
        return cached


class _FilterStream:
    """The querier's side of one SyncFilter stream, checked message by message as it arrives.

    The first message must carry the manifest and announce a size of at most
    :data:`MAX_SYNC_BYTES`; every message must be the next of the announced count and kind,
    only the first carries a manifest, and the data may never exceed the announced size
    (:class:`~crypto.chunks.ChunkAssembler`). The first violation raises, which cancels the
    stream: nothing past the announced size is ever taken in.
    """

    def __init__(self) -> None:
        self.first: match_pb2.FilterChunk | None = None
        self._assembler: ChunkAssembler | None = None
        self._received = 0

    def __call__(self, reply: PeerReply[match_pb2.FilterChunk]) -> None:
        chunk = reply.message
        if self.first is None:
            if not chunk.HasField("manifest") or chunk.total_size > MAX_SYNC_BYTES:
                raise EncodingError(
                    f"the first chunk must carry the manifest and announce at most "
                    f"{MAX_SYNC_BYTES} bytes (announced {chunk.total_size})"
                )
            most = -(-max(chunk.total_size, 1) // MIN_CHUNK_SIZE)
            if not 1 <= chunk.count <= most:
                raise EncodingError(
                    f"{chunk.count} chunks announced for {chunk.total_size} bytes "
                    f"(chunks hold at least {MIN_CHUNK_SIZE} bytes)"
                )
            try:
                self._assembler = ChunkAssembler(chunk.total_size, chunk.payload_sha256)
            except ValueError as exc:
                raise EncodingError(str(exc)) from None
            self.first = chunk
        elif chunk.HasField("manifest"):
            raise EncodingError("only the first chunk carries the manifest")
        first, index = self.first, self._received
        if (chunk.index, chunk.count, chunk.kind) != (index, first.count, first.kind):
            raise EncodingError("filter chunks arrived out of order or of mixed kinds")
        assert self._assembler is not None
        self._assembler.add(chunk.data)
        self._received += 1

    def finish(self) -> tuple[match_pb2.FilterChunk, bytes]:
        """The first message and the whole payload, once every announced chunk arrived."""
        if self.first is None or self._assembler is None:
            raise EncodingError("the stream carried no filter chunk")
        if self._received != self.first.count:
            raise EncodingError(f"{self._received} of {self.first.count} chunks arrived")
        return self.first, self._assembler.finish()


def sync_filter(
    client: StreamingPeerClient,
    filters: PeerFilters,
    dataset: str,
    *,
    purpose: str,
    agreement: str = "",
    full: bool = False,
) -> CachedFilter:
    """Fetch the holder's current filter (a delta from our copy when possible) and verify it.

    ``full`` is the operator's explicit full re-sync: the whole filter is fetched and replaces
    our copy even if it is older than it (a holder restored from a backup); otherwise an older
    filter is refused (:meth:`PeerFilters.install`).
    """
    current = None if full else filters.get(client.peer, dataset)
    request = match_pb2.SyncFilterRequest(
        dataset=dataset,
        epoch=current.manifest.epoch if current else 0,
        have_version=current.manifest.version if current else 0,
    )
    received = _FilterStream()
    client.receive(
        SYNC, request, match_pb2.FilterChunk, received, purpose=purpose, agreement=agreement
    )
    try:
        first, payload = received.finish()
        return filters.install(
            client.peer,
            dataset,
            _signed(first.manifest),
            first.kind,
            payload,
            client.runtime.clock.now(),
            allow_older=full,
        )
    except CryptoError as exc:
        raise PeerError(
            f"the {dataset} filter from {client.peer} does not verify: {exc}",
            peer=client.peer,
            status_name="UNAUTHENTICATED",
            hint="sync again; if it persists, the holder's filter or manifest was altered",
        ) from None
