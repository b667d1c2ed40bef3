"""The follow-up step after a biometric hit, on the identity-matching follow-up mechanism.

Why reuse: a biometric hit leads to the same question as an identity hit — "what do you know
about this person?" — under the same kind of ``followup`` grant, with the same operator
approval, the same coarse identity attributes and the same records on both sides. So this
module keeps follow-ups in the matching store's follow-up table (dataset
``biometric_templates``), releases values with :func:`node.matching.followup.release_attributes`
over the matched person's encounters (the ``identities`` attributes), and leaves approval to
``enlace followup approve | deny`` (:func:`node.matching.followup.decide`), which works on any
inbound follow-up. What differs is the proof of a hit: the querier presents the opaque
reference the search answered, which is redeemed exactly once (a reference is single-use and
expires), instead of an OPRF output.

Invariants:
* The agreement rule has already checked the purpose and that every asked attribute is
  granted on ``biometric_templates``; this module releases exactly the asked ones.
* Like an identity follow-up's, an answer never says how many records the person has; a
  pending or denied one carries only the id, the status and the reason.
* A reference that is unknown, of another peer, expired, already used, or of an old epoch is
  refused with FAILED_PRECONDITION, and the call still counts against the follow-up quota.
* Audit ``extra`` gets the SHA-256 of the reference and the case reference, never the record.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import TYPE_CHECKING

from enlace.v1 import biometric_pb2, match_pb2
from node.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from node.matching.followup import ATTRIBUTES, check_case_reference, release_attributes
from node.server.pipeline import Ask, CallContext
from node.store.matching_store import FollowUpRecord

if TYPE_CHECKING:
    from node.biometrics.holder import GalleryHolder

DATASET = "biometric_templates"
#: What a biometric follow-up may ask: the identity attributes of the matched person.
BIOMETRIC_ATTRIBUTES = ATTRIBUTES["identities"]
_REFERENCE_RE = re.compile(r"^[0-9a-f]{40}$")


def describe_followup(request: biometric_pb2.BiometricFollowUpRequest) -> Ask:
    asked = list(request.attributes)
    unknown = sorted(set(asked) - set(BIOMETRIC_ATTRIBUTES))
    if not asked or unknown or len(set(asked)) != len(asked):
        raise InvalidArgumentError(
            f"attributes {asked} are not a list of distinct identity attributes"
            + (f" (unknown: {', '.join(unknown)})" if unknown else ""),
            field="attributes",
            hint=f"a biometric follow-up offers: {', '.join(BIOMETRIC_ATTRIBUTES)}",
        )
    return Ask(dataset=DATASET, attributes=frozenset(asked))


def _response(
    record: FollowUpRecord, values: dict[str, str] | None, asked: tuple[str, ...]
) -> match_pb2.FollowUpResponse:
    shown = {k: v for k, v in (values or {}).items() if k in asked}
    return match_pb2.FollowUpResponse(
        followup_id=record.followup_id,
        status=record.status,
        attributes=[match_pb2.Attribute(name=k, value=v) for k, v in shown.items()],
        reason=record.note or "",
    )


def handle_followup(
    ctx: CallContext, request: biometric_pb2.BiometricFollowUpRequest, holder: GalleryHolder
) -> match_pb2.FollowUpResponse:
    """The FollowUp handler (the agreement rule already allowed purpose and attributes)."""
    store = holder.store
    asked = tuple(request.attributes)
    if request.followup_id:
        return _fetch(ctx, request.followup_id, holder, asked)
    if not _REFERENCE_RE.match(request.hit_reference):
        raise InvalidArgumentError(
            "is not a hit reference (40 hexadecimal digits)",
            field="hit_reference",
            hint="use the reference a Search answered for the hit",
        )
    check_case_reference(request.case_reference)
    digest = hashlib.sha256(request.hit_reference.encode("ascii")).hexdigest()
    ctx.audit_extra.update(
        dataset=DATASET,
        reference_sha256=digest,
        case_reference=request.case_reference,
        attributes=",".join(asked),
    )
    hit = store.biometrics.redeem_hit(digest, ctx.peer.country, ctx.now)
    state = holder.state()
    if hit is None or hit.epoch != state.epoch:
        ctx.audit_extra["outcome"] = "no live hit"
        raise FailedPreconditionError(
            f"this is not a live hit reference of {ctx.peer.country} at "
            f"{ctx.runtime.config.country}: unknown, already used, expired or from an earlier "
            "epoch",
            hint="a reference is redeemed once; probe again for a fresh one",
        )
    person = store.biometrics.person_records(hit.record_id)
    encounters = person[1] if person else []
    records = (
        ("biometric_templates", hit.record_id),
        *(("encounters", record_id) for record_id in encounters),
    )
    decision = ctx.permit.decision
    pending = decision is not None and decision.requires_approval
    record = FollowUpRecord(
        followup_id=uuid.uuid4().hex,
        direction="inbound",
        peer=ctx.peer.country,
        dataset=DATASET,
        epoch=hit.epoch,
        output_sha256=digest,
        case_reference=request.case_reference,
        purpose=ctx.header.purpose,
        agreement_id=ctx.permit.agreement_id,
        attributes=asked,
        records=records,
        status="pending" if pending else "released",
        created_at=ctx.now,
    )
    values = None
    if not pending:
        values = release_attributes(store.engine, "identities", records, asked)
        record = FollowUpRecord(**{**record.__dict__, "released": values, "decided_at": ctx.now})
    store.matching.add_followup(record)
    ctx.audit_extra.update(followup_id=record.followup_id, band=hit.band, outcome=record.status)
    return _response(record, values, asked)


def _fetch(
    ctx: CallContext, followup_id: str, holder: GalleryHolder, asked: tuple[str, ...]
) -> match_pb2.FollowUpResponse:
    store = holder.store
    record = store.matching.followup(followup_id, "inbound")
    if record is None or record.peer != ctx.peer.country or record.dataset != DATASET:
        raise NotFoundError(
            f"no biometric follow-up {followup_id!r} of {ctx.peer.country}",
            hint="use the id the first answer gave",
        )
    if not set(asked) <= set(record.attributes):
        raise InvalidArgumentError(
            "ask for the attributes of the original request only", field="attributes"
        )
    ctx.audit_extra.update(
        dataset=DATASET,
        followup_id=record.followup_id,
        reference_sha256=record.output_sha256,
        case_reference=record.case_reference,
    )
    if record.status == "approved":
        values = release_attributes(store.engine, "identities", record.records, record.attributes)
        store.matching.update_followup(
            record.followup_id, "inbound", expect=("approved",), status="released", released=values
        )
        record = store.matching.followup(record.followup_id, "inbound") or record
    ctx.audit_extra["outcome"] = record.status
    released = record.released if record.status == "released" else None
    return _response(record, released, asked)
