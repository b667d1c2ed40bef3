"""``enlace.v1.BiometricService``: hit / no-hit on protected templates, and the follow-up.

Why here: these are the only handlers through which a peer touches this node's biometric
galleries. Each goes through the pipeline (envelope, agreement rule, audit) with an
:class:`Ask` on dataset ``biometric_templates``: Search counts one unit per probe against the
``biometric`` grant's quotas, GetEpoch one unit; FollowUp one unit of the ``followup`` grant.

What the audit entry's ``extra`` records: for a search the epoch, the key id, the number of
probes, the SHA-256 of each probe code (``code_sha256``, comma-separated, in request order) and
how many answers fell in each band; never the codes, never the record ids. Probes are not
stored anywhere: they are searched in memory and dropped.

Invariants:
* A probe under another epoch, key or code length than the holder's current ones is refused
  with FAILED_PRECONDITION ("resync epoch") before any search; nothing is answered for it.
* The answer per probe is a band and, for a hit, an opaque single-use reference
  (:mod:`node.biometrics.holder`); the record id and the distance stay at the holder.
* A batch is checked whole (count, code lengths) before anything is searched or metered.
"""

from __future__ import annotations

import hashlib

import numpy as np

from crypto.biohash import check_bits
from crypto.envelope import format_time
from enlace.v1 import biometric_pb2, match_pb2
from node.biometrics.followup import describe_followup, handle_followup
from node.biometrics.holder import DATASET, HIT_TTL, EpochState, GalleryHolder
from node.errors import FailedPreconditionError, InvalidArgumentError
from node.runtime import NodeRuntime
from node.server.pipeline import Ask, CallContext, MethodSpec

SERVICE = "enlace.v1.BiometricService"
GET_EPOCH = f"/{SERVICE}/GetEpoch"
SEARCH = f"/{SERVICE}/Search"
FOLLOW_UP = f"/{SERVICE}/FollowUp"
MAX_PROBES = 1024

_BANDS = {
    "strong": biometric_pb2.ProbeResult.STRONG,
    "probable": biometric_pb2.ProbeResult.PROBABLE,
    "no-hit": biometric_pb2.ProbeResult.NO_HIT,
}


def _describe_epoch(_request: biometric_pb2.BiometricEpochRequest) -> Ask:
    return Ask(dataset=DATASET)


def _describe_search(request: biometric_pb2.BiometricSearchRequest) -> Ask:
    count = len(request.codes)
    if not 1 <= count <= MAX_PROBES:
        raise InvalidArgumentError(
            f"{count} codes; a search holds 1 to {MAX_PROBES}",
            field="codes",
            hint=f"split the probes into batches of at most {MAX_PROBES}",
        )
    try:
        check_bits(request.bits)
    except ValueError as exc:  # format-1 peers learn why their short codes are refused
        raise InvalidArgumentError(
            str(exc), field="bits", hint="upgrade: this node speaks biometric code format 2"
        ) from None
    size = request.bits // 8
    for index, code in enumerate(request.codes):
        if len(code) != size:
            raise InvalidArgumentError(
                f"code {index} has {len(code)} bytes, not {size} ({request.bits} bits)",
                field=f"codes[{index}]",
            )
    return Ask(dataset=DATASET, units=count)


def require_current(
    request: biometric_pb2.BiometricSearchRequest, state: EpochState, key_id: str, holder: str
) -> None:
    """FAILED_PRECONDITION unless the probes were made under the holder's current key."""
    hint = "resync epoch: fetch the holder's epoch (GetEpoch), re-derive the key and probe again"
    if request.epoch != state.epoch:
        raise FailedPreconditionError(
            f"resync epoch: probes are under epoch {request.epoch}, {holder}'s biometric epoch "
            f"is {state.epoch}",
            hint=hint,
        )
    if request.bits != state.bits:
        raise FailedPreconditionError(
            f"resync epoch: probes have {request.bits} bits, {holder} keeps {state.bits}-bit codes",
            hint=hint,
        )
    if request.key_id != key_id:
        raise FailedPreconditionError(
            f"resync epoch: probes are under key {request.key_id!r}, {holder} derives "
            f"{key_id!r} for this pair in epoch {state.epoch}",
            hint=hint + "; if it persists, the two nodes see different X25519 keys in the "
            "directory",
        )


def method_specs(runtime: NodeRuntime) -> list[MethodSpec]:
    holder = GalleryHolder(runtime.store, runtime.home, runtime.config.country, runtime.directory)

    def get_epoch(
        ctx: CallContext, _request: biometric_pb2.BiometricEpochRequest
    ) -> biometric_pb2.BiometricEpochResponse:
        state = holder.state()
        key = holder.key_for(ctx.peer.country, state, ctx.now)
        ctx.audit_extra.update(dataset=DATASET, epoch=state.epoch, key_id=key.key_id)
        return biometric_pb2.BiometricEpochResponse(
            epoch=state.epoch,
            bits=state.bits,
            dimension=state.dimension,
            orthonormal=state.orthonormal,
            key_id=key.key_id,
        )

    def search(
        ctx: CallContext, request: biometric_pb2.BiometricSearchRequest
    ) -> biometric_pb2.BiometricSearchResponse:
        state, marker = holder.current()
        peer = ctx.peer.country
        key = holder.key_for(peer, state, ctx.now)
        codes = list(request.codes)
        ctx.audit_extra.update(
            dataset=DATASET,
            epoch=state.epoch,
            key_id=request.key_id[:32],
            probes=len(codes),
            code_sha256=",".join(hashlib.sha256(c).hexdigest() for c in codes),
        )
        require_current(request, state, key.key_id, runtime.config.country)
        probes = np.frombuffer(b"".join(codes), dtype=np.uint8).reshape(len(codes), -1)
        answers = holder.search(
            peer, probes, ctx.now, state=state, agreement_id=ctx.permit.agreement_id, marker=marker
        )
        counts = {band: sum(a.band == band for a in answers) for band in _BANDS}
        ctx.audit_extra.update(
            strong=counts["strong"], probable=counts["probable"], no_hit=counts["no-hit"]
        )
        response = biometric_pb2.BiometricSearchResponse(epoch=state.epoch)
        for answer in answers:
            response.results.add(band=_BANDS[answer.band], hit_reference=answer.reference)
        if any(a.reference for a in answers):
            response.references_expire_at = format_time(ctx.now + HIT_TTL)
        return response

    def follow_up(
        ctx: CallContext, request: biometric_pb2.BiometricFollowUpRequest
    ) -> match_pb2.FollowUpResponse:
        return handle_followup(ctx, request, holder)

    return [
        MethodSpec(
            GET_EPOCH,
            "biometric",
            biometric_pb2.BiometricEpochRequest,
            get_epoch,
            _describe_epoch,
        ),
        MethodSpec(
            SEARCH, "biometric", biometric_pb2.BiometricSearchRequest, search, _describe_search
        ),
        MethodSpec(
            FOLLOW_UP,
            "followup",
            biometric_pb2.BiometricFollowUpRequest,
            follow_up,
            describe_followup,
        ),
    ]
