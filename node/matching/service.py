"""``enlace.v1.MatchService``: manifests, filter sync, batched OPRF evaluation, follow-ups.

Why here: these are the only handlers through which a peer touches this node's matching keys.
Each goes through the pipeline (envelope, agreement rule, audit) with an :class:`Ask` that
names the dataset and what is metered: Evaluate counts one unit per blinded element against
the ``match`` grant's quotas; GetManifest and SyncFilter count one unit each (a sync is a
request like any other); FollowUp counts one unit of the ``followup`` grant per call.

What the audit entry's ``extra`` records (never the blinded elements, whose digest is all the
signed header carries): dataset, epoch, filter version, number of elements; for a follow-up the
SHA-256 of the revealed output, the case reference, the attributes asked and the outcome.

Invariants:
* A request for another epoch than the current one is refused with FAILED_PRECONDITION
  before any evaluation, so old outputs cannot be produced or used after a rotation.
* Blinded elements are checked (32 bytes, canonical, not the identity) before anything is
  returned; one bad element refuses the whole batch with its index.
* A stream is fully prepared (and any refusal raised) before its first message is sent.
"""

from __future__ import annotations

from crypto.chunks import DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, iter_chunks
from crypto.errors import EncodingError, InvalidPointError
from crypto.filter import decode_filter, diff, encode_delta
from crypto.match_keys import filter_sha256
from crypto.ristretto import check_element
from enlace.v1 import match_pb2
from node.errors import InvalidArgumentError
from node.matching.filters import Holder
from node.matching.followup import ATTRIBUTES, handle_followup
from node.matching.sources import check_dataset
from node.runtime import NodeRuntime
from node.server.pipeline import Ask, CallContext, MethodSpec
from node.store.matching_store import StoredFilter

SERVICE = "enlace.v1.MatchService"
MAX_BATCH = 4096
ELEMENT_SIZE = 32


def signed_manifest(published: StoredFilter) -> match_pb2.SignedManifest:
    return match_pb2.SignedManifest(
        body=published.manifest, signature=published.signature, key_id=published.key_id
    )


def _describe_dataset(request: match_pb2.GetManifestRequest | match_pb2.SyncFilterRequest) -> Ask:
    return Ask(dataset=check_dataset(request.dataset))


def _describe_evaluate(request: match_pb2.EvaluateRequest) -> Ask:
    count = len(request.blinded_elements)
    if not 1 <= count <= MAX_BATCH:
        raise InvalidArgumentError(
            f"{count} blinded elements; a batch holds 1 to {MAX_BATCH}",
            field="blinded_elements",
            hint=f"split the query into batches of at most {MAX_BATCH}",
        )
    for index, element in enumerate(request.blinded_elements):
        if len(element) != ELEMENT_SIZE:
            raise InvalidArgumentError(
                f"element {index} has {len(element)} bytes, not {ELEMENT_SIZE}",
                field=f"blinded_elements[{index}]",
            )
    return Ask(dataset=check_dataset(request.dataset), units=count)


def _describe_followup(request: match_pb2.FollowUpRequest) -> Ask:
    dataset = check_dataset(request.dataset)
    asked = list(request.attributes)
    known = ATTRIBUTES[dataset]
    unknown = sorted(set(asked) - set(known))
    if not asked or unknown or len(set(asked)) != len(asked):
        raise InvalidArgumentError(
            f"attributes {asked} are not a list of distinct {dataset} attributes"
            + (f" (unknown: {', '.join(unknown)})" if unknown else ""),
            field="attributes",
            hint=f"{dataset} offers: {', '.join(known)}",
        )
    return Ask(dataset=dataset, attributes=frozenset(asked))


def _bad_element(elements: list[bytes]) -> InvalidArgumentError:
    for index, element in enumerate(elements):
        try:
            check_element(element)
        except InvalidPointError as exc:
            return InvalidArgumentError(
                f"blinded element {index} is refused: {exc}",
                field=f"blinded_elements[{index}]",
                hint="blind every input afresh with crypto.oprf.blind",
            )
    return InvalidArgumentError("a blinded element is refused", field="blinded_elements")


def method_specs(runtime: NodeRuntime) -> list[MethodSpec]:
    holder = Holder(runtime.store, runtime.home, runtime.config.country, runtime.signing_key)

    def get_manifest(
        ctx: CallContext, request: match_pb2.GetManifestRequest
    ) -> match_pb2.GetManifestResponse:
        state = holder.state()
        published = holder.require_published(request.dataset, state)
        ctx.audit_extra.update(
            dataset=request.dataset, epoch=state.epoch, filter_version=published.version
        )
        return match_pb2.GetManifestResponse(manifest=signed_manifest(published))

    def sync_filter(
        ctx: CallContext, request: match_pb2.SyncFilterRequest
    ) -> list[match_pb2.FilterChunk]:
        chunk_size = request.chunk_size or DEFAULT_CHUNK_SIZE
        if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
            raise InvalidArgumentError(
                f"chunk size {chunk_size} is outside {MIN_CHUNK_SIZE}..{MAX_CHUNK_SIZE}",
                field="chunk_size",
            )
        state = holder.state()
        published = holder.require_published(request.dataset, state)
        kind, payload = match_pb2.FilterChunk.FULL, published.encoded
        have = request.have_version
        if request.epoch == state.epoch and 0 < have <= published.version:
            kind, payload = match_pb2.FilterChunk.DELTA, b""
            old = holder.published(request.dataset, state, have)
            if have < published.version and old is None:
                kind, payload = match_pb2.FilterChunk.FULL, published.encoded
            elif have < published.version and old is not None:
                try:
                    delta = encode_delta(
                        diff(decode_filter(old.encoded), decode_filter(published.encoded))
                    )
                except EncodingError:  # the width changed: only the full filter will do
                    delta = published.encoded
                if len(delta) < len(published.encoded):
                    payload = delta
                else:
                    kind, payload = match_pb2.FilterChunk.FULL, published.encoded
        pieces = list(iter_chunks(payload, chunk_size))
        digest = filter_sha256(payload)
        ctx.audit_extra.update(
            dataset=request.dataset,
            epoch=state.epoch,
            filter_version=published.version,
            sync="delta" if kind == match_pb2.FilterChunk.DELTA else "full",
            bytes=len(payload),
        )
        return [
            match_pb2.FilterChunk(
                kind=kind,
                manifest=signed_manifest(published) if index == 0 else None,
                total_size=len(payload),
                payload_sha256=digest,
                index=index,
                count=len(pieces),
                data=piece,
            )
            for index, piece in enumerate(pieces)
        ]

    def evaluate(
        ctx: CallContext, request: match_pb2.EvaluateRequest
    ) -> match_pb2.EvaluateResponse:
        state = holder.state()
        holder.require_epoch(request.epoch, state)
        key = holder.key(request.dataset, state)
        elements = list(request.blinded_elements)
        proof = b""
        try:
            if state.mode == "voprf":
                evaluated, proof = key.blind_evaluate_verifiable(elements)
            else:
                evaluated = key.blind_evaluate(elements)
        except InvalidPointError:
            raise _bad_element(elements) from None
        version = holder.store.matching.current_version(request.dataset, state.epoch)
        ctx.audit_extra.update(
            dataset=request.dataset,
            epoch=state.epoch,
            filter_version=version,
            elements=len(elements),
            purpose=ctx.header.purpose,
        )
        return match_pb2.EvaluateResponse(
            evaluated_elements=evaluated, proof=proof, epoch=state.epoch, filter_version=version
        )

    def follow_up(
        ctx: CallContext, request: match_pb2.FollowUpRequest
    ) -> match_pb2.FollowUpResponse:
        return handle_followup(ctx, request, holder)

    base = f"/{SERVICE}"
    return [
        MethodSpec(
            f"{base}/GetManifest",
            "match",
            match_pb2.GetManifestRequest,
            get_manifest,
            _describe_dataset,
        ),
        MethodSpec(
            f"{base}/SyncFilter",
            "match",
            match_pb2.SyncFilterRequest,
            sync_filter,
            _describe_dataset,
            streaming=True,
        ),
        MethodSpec(
            f"{base}/Evaluate", "match", match_pb2.EvaluateRequest, evaluate, _describe_evaluate
        ),
        MethodSpec(
            f"{base}/FollowUp",
            "followup",
            match_pb2.FollowUpRequest,
            follow_up,
            _describe_followup,
        ),
    ]
