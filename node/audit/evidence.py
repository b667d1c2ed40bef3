"""Evidence of one exchange that a third party can check with the federation directory alone.

Why: a dispute ("you asked about this person", "you never answered", "you were refused") is
settled by the signed bytes themselves. The evidence for one audit entry carries the request
and response headers exactly as signed, both signatures, the entry, the links from it to the
next signed checkpoint, and that checkpoint. The verifier needs nothing else than a key
resolver built from the federation directory: no access to either node, no trust in the node
that exported it beyond what its checkpoint signature commits it to.

What it proves: the requester's key signed the request header; the responder's key signed a
response header that answers exactly that request (its ``request_digest``); the auditing node
recorded this entry, with its decision and status, at this place in its log, before signing the
checkpoint. What it does not disclose: other exchanges — later entries appear only as
``(seq, record_sha256, entry_hash)`` — nor any query contents, which the log never holds.

Invariants:

* Format tag ``enlace-audit-evidence/1``; the document is plain JSON (str, int, list, dict).
* :func:`verify_evidence` raises :class:`node.errors.AuditIntegrityError` (position = the
  entry's seq) on any failure, chained to the underlying crypto error; it never returns a bool.
* A request that failed its own signature check can be logged, but its evidence never verifies:
  nobody can prove a peer sent bytes its key did not sign.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from crypto.errors import CryptoError, VerificationError
from crypto.signing import verify
from node.audit.chain import (
    AuditEntry,
    compute_entry_hash,
    is_hex64,
    link_hash,
    record_digest,
    record_from_dict,
    record_to_dict,
    verify_chain,
)
from node.audit.checkpoint import (
    Checkpoint,
    KeyResolver,
    checkpoint_from_dict,
    checkpoint_to_dict,
    verify_checkpoint,
)
from node.errors import AuditIntegrityError, EnlaceError, InvalidArgumentError

EVIDENCE_FORMAT: Final = "enlace-audit-evidence/1"
REQUEST_CONTEXT: Final = b"enlace/1 request"
RESPONSE_CONTEXT: Final = b"enlace/1 response"

_ISO3 = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class EvidenceReport:
    """What a successful :func:`verify_evidence` established, for display or further checks."""

    seq: int
    entry_hash: str
    auditing_node: str
    direction: str
    requester: str
    responder: str
    method: str
    request_digest: str
    request_key_id: str
    request_issued_at: datetime
    response_digest: str
    response_key_id: str
    response_issued_at: datetime | None
    decision: str
    status: str
    reason: str
    agreement_id: str
    agreement_hash: str
    links: int
    checkpoint_seq: int
    checkpoint_at: datetime
    checkpoint_key_id: str


def covering_checkpoint(checkpoints: Sequence[Checkpoint], seq: int) -> Checkpoint | None:
    """The earliest checkpoint at or after ``seq``: the shortest segment for evidence."""
    later = [cp for cp in checkpoints if cp.seq >= seq]
    return min(later, key=lambda cp: cp.seq) if later else None


def build_evidence(
    entry: AuditEntry, chain_segment: Sequence[AuditEntry], checkpoint: Checkpoint
) -> dict[str, Any]:
    """Export ``entry`` with the links from it (``chain_segment[0]``) to ``checkpoint``.

    Refuses (AuditIntegrityError) a segment that does not verify, does not start at the entry
    or does not end at the checkpoint: evidence that cannot verify is not exported.
    """
    if not chain_segment or chain_segment[0] != entry:
        raise _fault(entry.seq, "the chain segment must start with the entry itself")
    verify_chain(chain_segment, start_prev_hash=entry.prev_hash, start_seq=entry.seq)
    last = chain_segment[-1]
    if last.seq != checkpoint.seq or last.entry_hash != checkpoint.entry_hash:
        raise _fault(entry.seq, f"the segment ends at entry {last.seq}, not at the checkpoint")
    return {
        "format": EVIDENCE_FORMAT,
        "entry": {
            "seq": entry.seq,
            "prev_hash": entry.prev_hash,
            "entry_hash": entry.entry_hash,
            "record": record_to_dict(entry.record),
        },
        "links": [
            {"seq": e.seq, "record_sha256": record_digest(e.record), "entry_hash": e.entry_hash}
            for e in chain_segment[1:]
        ],
        "checkpoint": checkpoint_to_dict(checkpoint),
    }


def _fault(seq: int, message: str, hint: str = "") -> AuditIntegrityError:
    return AuditIntegrityError(
        f"evidence for audit entry {seq}: {message}",
        position=seq,
        hint=hint or "the evidence was altered or is incomplete; request a fresh export",
    )


@dataclass(frozen=True)
class _Header:
    sender: str
    recipient: str
    key_id: str
    issued_at: datetime
    fields: Mapping[str, object]


def _parse_header(raw: bytes, what: str, seq: int) -> _Header:
    try:
        fields = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _fault(seq, f"the {what} header is not UTF-8 JSON") from None
    if not isinstance(fields, dict):
        raise _fault(seq, f"the {what} header is not a JSON object")
    values: dict[str, str] = {}
    for name in ("sender", "recipient", "key_id", "issued_at"):
        value = fields.get(name)
        if not isinstance(value, str) or not value:
            raise _fault(seq, f"the {what} header lacks '{name}'")
        values[name] = value
    for name in ("sender", "recipient"):
        if not _ISO3.fullmatch(values[name]):
            raise _fault(seq, f"the {what} header's {name} is not an ISO 3166 alpha-3 code")
    try:
        issued_at = datetime.fromisoformat(values["issued_at"])
    except ValueError:
        raise _fault(seq, f"the {what} header's issued_at is not RFC 3339") from None
    if issued_at.tzinfo is None:
        raise _fault(seq, f"the {what} header's issued_at has no time zone")
    return _Header(values["sender"], values["recipient"], values["key_id"], issued_at, fields)


def _check_signature(
    resolve_key: KeyResolver,
    header: _Header,
    context: bytes,
    raw: bytes,
    signature: bytes,
    what: str,
    seq: int,
) -> None:
    try:
        public_key = resolve_key(header.sender, header.key_id, header.issued_at)
        verify(public_key, context, raw, signature)
    except (CryptoError, LookupError, EnlaceError) as exc:
        kind = "does not verify" if isinstance(exc, VerificationError) else "has no valid key"
        raise _fault(
            seq,
            f"the {what} signature {kind}: key {header.key_id} of {header.sender} ({exc})",
            "check the federation directory version; otherwise the exchange is not authentic",
        ) from exc


def _parse(evidence: Mapping[str, Any]) -> tuple[AuditEntry, list[Mapping[str, Any]], Checkpoint]:
    if not isinstance(evidence, Mapping) or evidence.get("format") != EVIDENCE_FORMAT:
        raise _fault(0, f"not an {EVIDENCE_FORMAT} document")
    entry, links, cp = evidence.get("entry"), evidence.get("links"), evidence.get("checkpoint")
    if not isinstance(entry, Mapping) or not isinstance(links, list) or not isinstance(cp, Mapping):
        raise _fault(0, "'entry', 'links' and 'checkpoint' are required")
    seq = entry.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise _fault(0, "the entry has no valid seq")
    for name in ("prev_hash", "entry_hash"):
        if not is_hex64(entry.get(name)):
            raise _fault(seq, f"the entry's {name} is not 64 lowercase hex digits")
    for link in links:
        if not (
            isinstance(link, Mapping)
            and isinstance(link.get("seq"), int)
            and not isinstance(link.get("seq"), bool)
            and is_hex64(link.get("record_sha256"))
            and is_hex64(link.get("entry_hash"))
        ):
            raise _fault(seq, "a link is not {seq, record_sha256, entry_hash}")
    record_data = entry.get("record")
    try:
        if not isinstance(record_data, Mapping):
            raise InvalidArgumentError("must be an object", field="record")
        record = record_from_dict(record_data)
        checkpoint = checkpoint_from_dict(cp)
    except InvalidArgumentError as exc:
        raise _fault(seq, f"malformed: {exc.message}") from exc
    return AuditEntry(seq, record, entry["prev_hash"], entry["entry_hash"]), links, checkpoint


def _check_exchange(entry: AuditEntry, node: str, resolve_key: KeyResolver) -> tuple[_Header, ...]:
    """Signatures of the request and response, and their binding to the record and each other."""
    record, seq = entry.record, entry.seq
    request = _parse_header(record.request_header, "request", seq)
    _check_signature(
        resolve_key,
        request,
        REQUEST_CONTEXT,
        record.request_header,
        record.request_signature,
        "request",
        seq,
    )
    me, peer = (
        (request.sender, request.recipient)
        if record.direction == "outbound"
        else (request.recipient, request.sender)
    )
    if (me, peer) != (node, record.peer):
        raise _fault(
            seq,
            f"an {record.direction} exchange with {record.peer} logged by {node} does not match "
            f"a request from {request.sender} to {request.recipient}",
        )
    if request.fields.get("method", record.method) != record.method:
        raise _fault(seq, "the record's method differs from the signed request's")
    if not record.response_header:
        return (request,)
    response = _parse_header(record.response_header, "response", seq)
    _check_signature(
        resolve_key,
        response,
        RESPONSE_CONTEXT,
        record.response_header,
        record.response_signature,
        "response",
        seq,
    )
    if (response.sender, response.recipient) != (request.recipient, request.sender):
        raise _fault(seq, "the response is not from the request's recipient to its sender")
    if response.fields.get("request_digest") != record.request_digest:
        raise _fault(seq, "the signed response does not answer this request (request_digest)")
    status = response.fields.get("status")
    if isinstance(status, str) and status != record.status:
        raise _fault(seq, f"the record says {record.status} but the response says {status}")
    return request, response


def verify_evidence(evidence: Mapping[str, Any], resolve_key: KeyResolver) -> EvidenceReport:
    """Check exported evidence end to end; raise :class:`AuditIntegrityError` on any failure.

    ``resolve_key(country, key_id, at)`` must return the Ed25519 public key the federation
    directory lists for that country and key id, valid at ``at``; it raises ``LookupError``
    (or a crypto/node error) otherwise.
    """
    entry, links, checkpoint = _parse(evidence)
    seq, record = entry.seq, entry.record
    headers = _check_exchange(entry, checkpoint.node, resolve_key)
    if compute_entry_hash(seq, entry.prev_hash, record) != entry.entry_hash:
        raise _fault(seq, "edited: the record no longer matches its entry_hash")
    expected, head = seq + 1, entry.entry_hash
    for link in links:
        if link["seq"] != expected:
            raise _fault(seq, f"link {expected} is missing or out of order")
        if link_hash(expected, head, link["record_sha256"]) != link["entry_hash"]:
            raise _fault(seq, f"link {expected} does not chain to the previous entry")
        expected, head = expected + 1, link["entry_hash"]
    if (expected - 1, head) != (checkpoint.seq, checkpoint.entry_hash):
        raise _fault(seq, f"the links end at entry {expected - 1}, not at the checkpoint")
    try:
        verify_checkpoint(
            checkpoint, resolve_key(checkpoint.node, checkpoint.key_id, checkpoint.at)
        )
    except (CryptoError, LookupError, EnlaceError) as exc:
        raise _fault(
            seq,
            f"the checkpoint of {checkpoint.node} at entry {checkpoint.seq} does not verify "
            f"({exc})",
            "the auditing node's checkpoint is forged, or its key is not in the directory",
        ) from exc
    response = headers[1] if len(headers) > 1 else None
    return EvidenceReport(
        seq=seq,
        entry_hash=entry.entry_hash,
        auditing_node=checkpoint.node,
        direction=record.direction,
        requester=headers[0].sender,
        responder=headers[0].recipient,
        method=record.method,
        request_digest=record.request_digest,
        request_key_id=headers[0].key_id,
        request_issued_at=headers[0].issued_at,
        response_digest=record.response_digest,
        response_key_id=response.key_id if response else "",
        response_issued_at=response.issued_at if response else None,
        decision=record.decision,
        status=record.status,
        reason=record.reason,
        agreement_id=record.agreement_id,
        agreement_hash=record.agreement_hash,
        links=len(links),
        checkpoint_seq=checkpoint.seq,
        checkpoint_at=checkpoint.at,
        checkpoint_key_id=checkpoint.key_id,
    )
