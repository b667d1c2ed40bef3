"""The follow-up step after a hit: the querier reveals one output; the holder releases only
the attributes the agreement grants, after its operator's approval where the grant says so.

Why a check on the whole output: the filter is public to the querier, so a prefix proves
nothing. The holder keeps the SHA-256 of every full 64-byte output and releases attributes
only for a revealed output whose digest equals a stored one: only someone who had the holder
evaluate that exact identity key can present it. A follow-up without a hit is refused
(FAILED_PRECONDITION), and still counts against the ``followup`` quota, so fishing is metered.

Attributes are coarse on purpose (a quarter, not a date; a code, not a record). Per dataset:

* ``travel_documents``: first_seen_quarter, nationality, document_type, issuing_state
* ``document_alerts``: alert_type, reported_quarter, source
* ``persons_of_interest``: reason, since_quarter, nationality
* ``identities``: first_seen_quarter, last_seen_quarter, event_type (latest), nationality,
  nationality_basis (latest), encounters (count) — over every record of the matched person.

Invariants:
* The agreement rule has already checked that every asked attribute is granted; this module
  releases exactly the asked ones, never more.
* An answer that is pending or denied carries the follow-up id, the status and the operator's
  reason, nothing else; a released one adds the asked attributes. No answer says how many
  records matched (that count stays in the holder's own follow-up row).
* A case reference is 1 to 200 printable ASCII characters, not only spaces, checked over the
  whole string (:func:`check_case_reference`) before anything is looked up or stored.
* A request held for approval is answered ``pending``; its decision (``enlace followup approve
  | deny``) is recorded with who decided and when; the querier fetches it with the follow-up id,
  and only the peer that asked can fetch it.
* Audit ``extra`` gets the output's SHA-256 and the case reference, never the output itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select

from enlace.v1 import match_pb2
from node.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from node.server.pipeline import CallContext
from node.store import Store
from node.store.followup_store import FollowUpRecord
from node.store.records_schema import (
    document_alerts,
    encounters,
    persons_of_interest,
    travel_documents,
)

if TYPE_CHECKING:
    from node.matching.filters import Holder

ATTRIBUTES: Mapping[str, tuple[str, ...]] = {
    "travel_documents": ("first_seen_quarter", "nationality", "document_type", "issuing_state"),
    "document_alerts": ("alert_type", "reported_quarter", "source"),
    "persons_of_interest": ("reason", "since_quarter", "nationality"),
    "identities": (
        "first_seen_quarter", "last_seen_quarter", "event_type", "nationality",
        "nationality_basis", "encounters",
    ),
}  # fmt: skip
OUTPUT_SIZE = 64
#: The longest case reference (the width of ``match_followups.case_reference``).
CASE_REFERENCE_MAX = 200
_CASE_RE = re.compile(rf"[\x20-\x7e]{{1,{CASE_REFERENCE_MAX}}}")


def check_case_reference(value: str) -> None:
    """INVALID_ARGUMENT unless ``value`` is a case reference this node can record.

    The whole string is checked: a trailing newline or an over-long value is the caller's
    mistake and must be refused here, not surface later as a database error; a reference of
    spaces only cites no case at all.
    """
    rule = (
        f"a case reference is 1 to {CASE_REFERENCE_MAX} printable ASCII characters "
        "(space to '~'), not only spaces"
    )
    if not 1 <= len(value) <= CASE_REFERENCE_MAX:
        problem = f"has {len(value)} characters"
    elif not _CASE_RE.fullmatch(value):
        problem = "has a character outside printable ASCII (a newline, a tab, a non-ASCII letter)"
    elif not value.strip(" "):
        problem = "is only spaces"
    else:
        return
    raise InvalidArgumentError(
        f"{problem}; {rule}",
        field="case_reference",
        hint="cite the case file the follow-up is for",
    )


def quarter(day: dt.date | None) -> str:
    return "" if day is None else f"{day.year}Q{(day.month - 1) // 3 + 1}"


def _ids(records: Sequence[tuple[str, str]], source: str) -> list[str]:
    return [record for src, record in records if src == source]


def _rows(engine: Engine, query: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(query))


def release_attributes(
    engine: Engine, dataset: str, records: Sequence[tuple[str, str]], asked: Iterable[str]
) -> dict[str, str]:
    """The values of the ``asked`` attributes over the matched ``records`` of ``dataset``."""
    values: dict[str, str] = {}
    if dataset == "travel_documents":
        t = travel_documents
        rows = _rows(engine, select(t).where(t.c.record_id.in_(_ids(records, t.name))))
        rows.sort(key=lambda r: r.first_seen_date)
        if rows:
            values = {
                "first_seen_quarter": quarter(rows[0].first_seen_date),
                "nationality": rows[0].nationality,
                "document_type": rows[0].document_type,
                "issuing_state": rows[0].issuing_state,
            }
    elif dataset == "document_alerts":
        a = document_alerts
        rows = _rows(engine, select(a).where(a.c.record_id.in_(_ids(records, a.name))))
        rows.sort(key=lambda r: r.reported_date)
        if rows:
            latest = rows[-1]
            values = {
                "alert_type": latest.alert_type,
                "reported_quarter": quarter(latest.reported_date),
                "source": latest.source,
            }
    elif dataset == "persons_of_interest":
        p = persons_of_interest
        rows = _rows(engine, select(p).where(p.c.record_id.in_(_ids(records, p.name))))
        rows.sort(key=lambda r: r.since_date)
        if rows:
            values = {
                "reason": rows[0].reason,
                "since_quarter": quarter(rows[0].since_date),
                "nationality": rows[0].nationality or "",
            }
    elif dataset == "identities":
        values = _identity_attributes(engine, records)
    return {name: values.get(name, "") for name in asked}


def _identity_attributes(engine: Engine, records: Sequence[tuple[str, str]]) -> dict[str, str]:
    e, t = encounters, travel_documents
    persons = {
        r.person_id
        for r in _rows(
            engine, select(e.c.person_id).where(e.c.record_id.in_(_ids(records, e.name)))
        )
    } | {
        r.person_id
        for r in _rows(
            engine, select(t.c.person_id).where(t.c.record_id.in_(_ids(records, t.name)))
        )
    }
    events = _rows(engine, select(e).where(e.c.person_id.in_(sorted(persons))))
    documents = _rows(engine, select(t).where(t.c.person_id.in_(sorted(persons))))
    events.sort(key=lambda r: (r.event_date, r.record_id))
    seen = [r.event_date for r in events] + [r.first_seen_date for r in documents]
    latest = events[-1] if events else None
    nationality = latest.nationality if latest else (documents[0].nationality if documents else "")
    return {
        "first_seen_quarter": quarter(min(seen)) if seen else "",
        "last_seen_quarter": quarter(max(seen)) if seen else "",
        "event_type": latest.event_type if latest else "",
        "nationality": nationality,
        "nationality_basis": latest.nationality_basis if latest else "",
        "encounters": str(len(events)),
    }


def _response(
    record: FollowUpRecord, values: Mapping[str, str] | None
) -> match_pb2.FollowUpResponse:
    """The answer: id, status and reason, plus ``values`` once released. Never how many
    records matched: that is information about the holder's data no grant covers."""
    return match_pb2.FollowUpResponse(
        followup_id=record.followup_id,
        status=record.status,
        attributes=[match_pb2.Attribute(name=k, value=v) for k, v in (values or {}).items()],
        reason=record.note or "",
    )


def handle_followup(
    ctx: CallContext, request: match_pb2.FollowUpRequest, holder: Holder
) -> match_pb2.FollowUpResponse:
    """The FollowUp handler (the agreement rule already allowed dataset, purpose, attributes)."""
    store = holder.store
    asked = tuple(request.attributes)
    if request.followup_id:
        return _fetch(ctx, request, store, asked)
    if len(request.output) != OUTPUT_SIZE:
        raise InvalidArgumentError(
            f"the output has {len(request.output)} bytes, not {OUTPUT_SIZE}", field="output"
        )
    check_case_reference(request.case_reference)
    state = holder.state()
    holder.require_epoch(request.epoch, state)
    digest = hashlib.sha256(request.output).digest()
    ctx.audit_extra.update(
        dataset=request.dataset,
        epoch=state.epoch,
        output_sha256=digest.hex(),
        case_reference=request.case_reference,
        attributes=",".join(asked),
    )
    found = store.matching.find(request.dataset, state.epoch, request.output[:16])
    records = tuple(
        (source, record) for source, record, stored in found if hmac.compare_digest(stored, digest)
    )
    if not records:
        ctx.audit_extra["outcome"] = "no hit"
        raise FailedPreconditionError(
            f"this output is not a hit in {ctx.runtime.config.country}'s {request.dataset} "
            f"(epoch {state.epoch})",
            hint="a follow-up reveals the output of a hit; query first",
        )
    decision = ctx.permit.decision
    pending = decision is not None and decision.requires_approval
    record = FollowUpRecord(
        followup_id=uuid.uuid4().hex,
        direction="inbound",
        peer=ctx.peer.country,
        dataset=request.dataset,
        epoch=state.epoch,
        output_sha256=digest.hex(),
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
        values = release_attributes(store.engine, request.dataset, records, asked)
        record = FollowUpRecord(**{**record.__dict__, "released": values, "decided_at": ctx.now})
    store.matching.add_followup(record)
    ctx.audit_extra.update(followup_id=record.followup_id, outcome=record.status)
    return _response(record, values)


def _fetch(
    ctx: CallContext, request: match_pb2.FollowUpRequest, store: Store, asked: tuple[str, ...]
) -> match_pb2.FollowUpResponse:
    record = store.matching.followup(request.followup_id, "inbound")
    if record is None or record.peer != ctx.peer.country or record.dataset != request.dataset:
        raise NotFoundError(
            f"no follow-up {request.followup_id!r} of {ctx.peer.country} on {request.dataset}",
            hint="use the id the first answer gave, with the same dataset",
        )
    if not set(asked) <= set(record.attributes):
        raise InvalidArgumentError(
            "ask for the attributes of the original request only", field="attributes"
        )
    ctx.audit_extra.update(
        dataset=record.dataset,
        followup_id=record.followup_id,
        output_sha256=record.output_sha256,
        case_reference=record.case_reference,
    )
    if record.status == "approved":
        values = release_attributes(store.engine, record.dataset, record.records, record.attributes)
        store.matching.update_followup(
            record.followup_id, "inbound", expect=("approved",), status="released", released=values
        )
        record = store.matching.followup(record.followup_id, "inbound") or record
    ctx.audit_extra["outcome"] = record.status
    released = record.released if record.status == "released" else None
    return _response(record, {k: v for k, v in (released or {}).items() if k in asked})


# -- the holder's operator ------------------------------------------------------------------


def decide(
    store: Store, followup_id: str, *, approve: bool, by: str, note: str, now: dt.datetime
) -> FollowUpRecord:
    """Approve or deny a pending follow-up; refuses one that is not pending."""
    record = store.matching.followup(followup_id, "inbound")
    if record is None:
        raise NotFoundError(f"no follow-up {followup_id!r}", hint="see `enlace followup list`")
    moved = store.matching.update_followup(
        followup_id,
        "inbound",
        expect=("pending",),
        status="approved" if approve else "denied",
        now=now,
        by=by,
        note=note,
    )
    if not moved:
        raise FailedPreconditionError(
            f"follow-up {followup_id} is {record.status}, not pending",
            hint="only pending follow-ups can be approved or denied",
        )
    updated = store.matching.followup(followup_id, "inbound")
    assert updated is not None
    return updated
