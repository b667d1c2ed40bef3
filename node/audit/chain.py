"""Hash-chained audit entries: the node's append-only record of every signed exchange.

Why: both sides of every exchange keep the signed request/response pair in a log that anyone
holding it can verify (DESIGN §2.2, §4). An entry commits to its predecessor, so editing,
deleting or reordering any entry breaks every later link, and :func:`verify_chain` says where.

Invariants:

* Entry ``n`` has ``seq == n`` (from 1) and ``prev_hash`` equal to the ``entry_hash`` of entry
  ``n - 1``; the first entry's ``prev_hash`` is :data:`GENESIS_HASH` (64 zeros).
* ``entry_hash = SHA-256(b"enlace/1 audit-entry\\n" + canonical {seq, prev_hash, record_sha256})``
  and ``record_sha256 = SHA-256(b"enlace/1 audit-record\\n" + canonical record)``. Committing to
  the record through its own digest lets the evidence for one exchange prove its place in the
  chain without disclosing any other exchange (see :mod:`node.audit.evidence`).
* Canonical JSON: sorted keys, no whitespace, ASCII only (``\\u`` escapes), integers only (within
  ±2**53 so any JSON reader keeps them exact), bytes as padded standard base64, datetimes in UTC
  as RFC 3339 with microseconds and ``Z``. One record has exactly one encoding.
* Records hold metadata of an exchange, never the query contents: headers carry only the body's
  digest, and ``extra`` is for counts and similar figures.
* Verification raises :class:`node.errors.AuditIntegrityError` at the first problem, with
  ``position`` the sequence number where the chain departs from a valid one; it never returns a
  bool. It streams: memory does not grow with the length of the log.
* Pure: no I/O, no clock. Persistence stores :func:`entry_to_bytes` or the fields themselves.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

from node.errors import AuditIntegrityError, InvalidArgumentError

GENESIS_HASH: Final = "0" * 64
ENTRY_CONTEXT: Final = b"enlace/1 audit-entry\n"
RECORD_CONTEXT: Final = b"enlace/1 audit-record\n"
DIRECTIONS: Final = frozenset({"inbound", "outbound"})
DECISIONS: Final = frozenset({"allowed", "denied"})
MAX_JSON_INT: Final = 2**53 - 1

_HEX64 = re.compile(r"[0-9a-f]{64}")
_ISO3 = re.compile(r"[A-Z]{3}")
_STATUS = re.compile(r"[A-Z][A-Z_]*")
_METHOD = re.compile(r"/[^/\s]+/[^/\s]+")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", re.ASCII)

_RECORD_FIELDS: Final = (
    "at",
    "direction",
    "peer",
    "method",
    "request_header",
    "request_signature",
    "request_digest",
    "decision",
    "status",
    "reason",
    "agreement_id",
    "agreement_hash",
    "response_header",
    "response_signature",
    "response_digest",
    "extra",
)
_BYTES_FIELDS: Final = frozenset(
    {"request_header", "request_signature", "response_header", "response_signature"}
)


# --------------------------------------------------------------------------- encodings


def canonical_json(value: object) -> bytes:
    """The one byte encoding of a JSON value that every hash and signature here is over."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("ascii")


def format_time(at: datetime, *, name: str = "at") -> str:
    """RFC 3339 in UTC with microseconds and ``Z`` (always a four-digit year)."""
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise InvalidArgumentError("must be a timezone-aware datetime", field=name)
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: object, *, name: str = "at") -> datetime:
    """Inverse of :func:`format_time`; accepts only that exact form."""
    if not isinstance(text, str) or not _TIME.fullmatch(text):
        raise InvalidArgumentError("must be RFC 3339 UTC with microseconds and 'Z'", field=name)
    try:
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidArgumentError(f"not a valid date-time: {exc}", field=name) from None


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: object, *, name: str) -> bytes:
    """Strict base64: standard alphabet, padded, and the one encoding of the bytes it holds."""
    if not isinstance(text, str):
        raise InvalidArgumentError("must be a base64 string", field=name)
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InvalidArgumentError("is not valid base64", field=name) from None
    if b64encode(data) != text:
        raise InvalidArgumentError("is not canonical base64", field=name)
    return data


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_hex64(value: object) -> bool:
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def _check_text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentError("must be a string", field=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentError("must be valid Unicode text", field=name) from None
    return value


def _check_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError("must be an integer", field=name)
    if abs(value) > MAX_JSON_INT:
        raise InvalidArgumentError("must lie within ±2**53", field=name)
    return value


# --------------------------------------------------------------------------- the record


@dataclass(frozen=True)
class AuditRecord:
    """What the node appends for one exchange (either side), after deciding and answering.

    ``request_digest`` must be SHA-256 of ``request_header``; ``response_digest`` likewise of
    ``response_header``, or ``''`` when no response was signed (then the response fields are
    empty). ``at`` is normalised to UTC; ``extra`` is copied into a read-only mapping.
    """

    at: datetime
    direction: str
    peer: str
    method: str
    request_header: bytes
    request_signature: bytes
    request_digest: str
    decision: str
    status: str
    reason: str
    agreement_id: str
    agreement_hash: str
    response_header: bytes = b""
    response_signature: bytes = b""
    response_digest: str = ""
    extra: Mapping[str, str | int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", parse_time(format_time(self.at)))
        if self.direction not in DIRECTIONS:
            raise InvalidArgumentError("must be 'inbound' or 'outbound'", field="direction")
        if not isinstance(self.peer, str) or not _ISO3.fullmatch(self.peer):
            raise InvalidArgumentError("must be an ISO 3166 alpha-3 code", field="peer")
        if not isinstance(self.method, str) or not _METHOD.fullmatch(self.method):
            raise InvalidArgumentError(
                "must be a full gRPC method '/pkg.Service/Name'", field="method"
            )
        if self.decision not in DECISIONS:
            raise InvalidArgumentError("must be 'allowed' or 'denied'", field="decision")
        if not isinstance(self.status, str) or not _STATUS.fullmatch(self.status):
            raise InvalidArgumentError("must be a gRPC status name such as 'OK'", field="status")
        for name in ("reason", "agreement_id", "agreement_hash"):
            _check_text(getattr(self, name), name)
        for name in _BYTES_FIELDS:
            if not isinstance(getattr(self, name), bytes):
                raise InvalidArgumentError("must be bytes", field=name)
        if self.request_digest != sha256_hex(self.request_header):
            raise InvalidArgumentError("is not SHA-256 of request_header", field="request_digest")
        if self.response_header:
            if self.response_digest != sha256_hex(self.response_header):
                raise InvalidArgumentError(
                    "is not SHA-256 of response_header", field="response_digest"
                )
        elif self.response_digest or self.response_signature:
            raise InvalidArgumentError(
                "must be empty when no response header was signed", field="response_digest"
            )
        if not isinstance(self.extra, Mapping):
            raise InvalidArgumentError("must be a mapping", field="extra")
        if not all(isinstance(key, str) and key for key in self.extra):
            raise InvalidArgumentError("keys must be non-empty strings", field="extra")
        frozen: dict[str, str | int] = {}
        for key in sorted(self.extra):
            _check_text(key, "extra")
            value, name = self.extra[key], f"extra.{key}"
            frozen[key] = (
                _check_text(value, name) if isinstance(value, str) else _check_int(value, name)
            )
        object.__setattr__(self, "extra", MappingProxyType(frozen))

    def __hash__(self) -> int:
        return hash(record_digest(self))


def record_to_dict(record: AuditRecord) -> dict[str, Any]:
    """A JSON-ready dict: bytes as base64, ``at`` as RFC 3339."""
    out: dict[str, Any] = {}
    for name in _RECORD_FIELDS:
        value = getattr(record, name)
        if name == "at":
            out[name] = format_time(value)
        elif name in _BYTES_FIELDS:
            out[name] = b64encode(value)
        elif name == "extra":
            out[name] = dict(value)
        else:
            out[name] = value
    return out


def record_from_dict(data: Mapping[str, object]) -> AuditRecord:
    """Strict inverse of :func:`record_to_dict`; raises InvalidArgumentError naming the field."""
    if not isinstance(data, Mapping) or set(data) != set(_RECORD_FIELDS):
        raise InvalidArgumentError(
            f"must have exactly the keys {sorted(_RECORD_FIELDS)}", field="record"
        )
    values: dict[str, Any] = {}
    for name in _RECORD_FIELDS:
        raw = data[name]
        if name == "at":
            values[name] = parse_time(raw)
        elif name in _BYTES_FIELDS:
            values[name] = b64decode(raw, name=name)
        elif name == "extra":
            if not isinstance(raw, Mapping):
                raise InvalidArgumentError("must be an object", field=name)
            values[name] = dict(raw)
        else:
            values[name] = _check_text(raw, name)
    return AuditRecord(**values)


def record_digest(record: AuditRecord) -> str:
    """SHA-256 (hex) that an entry commits to in place of the record itself."""
    return sha256_hex(RECORD_CONTEXT + canonical_json(record_to_dict(record)))


# --------------------------------------------------------------------------- entries


def link_bytes(seq: int, prev_hash: str, record_sha256: str) -> bytes:
    """Canonical bytes of one link; what :func:`link_hash` hashes after the context."""
    return canonical_json({"prev_hash": prev_hash, "record_sha256": record_sha256, "seq": seq})


def link_hash(seq: int, prev_hash: str, record_sha256: str) -> str:
    return sha256_hex(ENTRY_CONTEXT + link_bytes(seq, prev_hash, record_sha256))


def canonical_bytes(seq: int, prev_hash: str, record: AuditRecord) -> bytes:
    """The canonical encoding of (seq, prev_hash, record) that an entry hash is over."""
    return link_bytes(seq, prev_hash, record_digest(record))


def compute_entry_hash(seq: int, prev_hash: str, record: AuditRecord) -> str:
    return sha256_hex(ENTRY_CONTEXT + canonical_bytes(seq, prev_hash, record))


@dataclass(frozen=True)
class AuditEntry:
    """One link of the chain as stored. Not validated on construction: verification judges it."""

    seq: int
    record: AuditRecord
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True)
class ChainSummary:
    """What a successful verification covered. Empty input: ``count == 0``, head = start."""

    count: int
    first_seq: int
    last_seq: int
    head_hash: str
    checkpoints: int = 0


def chain_next(prev: AuditEntry | None, record: AuditRecord) -> AuditEntry:
    """The entry that appends ``record`` after ``prev`` (``None`` starts a new chain)."""
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS_HASH if prev is None else prev.entry_hash
    return AuditEntry(seq, record, prev_hash, compute_entry_hash(seq, prev_hash, record))


def entry_to_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "entry_hash": entry.entry_hash,
        "prev_hash": entry.prev_hash,
        "record": record_to_dict(entry.record),
        "seq": entry.seq,
    }


def _malformed(where: int, detail: str) -> AuditIntegrityError:
    return AuditIntegrityError(
        f"audit entry {where}: malformed: {detail}",
        position=where,
        hint="the stored entry was damaged or edited after it was written; restore it",
    )


def entry_from_dict(data: Mapping[str, object], *, position: int | None = None) -> AuditEntry:
    """Load a stored entry; a malformed one raises AuditIntegrityError.

    ``position`` is where the caller read it (its row's seq); without it, the seq it claims.
    """
    claimed = data.get("seq") if isinstance(data, Mapping) else None
    if position is None:
        position = claimed if isinstance(claimed, int) and not isinstance(claimed, bool) else 0
    try:
        if not isinstance(data, Mapping) or set(data) != {
            "entry_hash",
            "prev_hash",
            "record",
            "seq",
        }:
            raise InvalidArgumentError("unexpected or missing keys", field="entry")
        seq = _check_int(data["seq"], "seq")
        for name in ("prev_hash", "entry_hash"):
            if not is_hex64(data[name]):
                raise InvalidArgumentError("must be 64 lowercase hex digits", field=name)
        record = data["record"]
        if not isinstance(record, Mapping):
            raise InvalidArgumentError("must be an object", field="record")
        return AuditEntry(
            seq, record_from_dict(record), str(data["prev_hash"]), str(data["entry_hash"])
        )
    except InvalidArgumentError as exc:
        raise _malformed(position, exc.message) from exc


def entry_to_bytes(entry: AuditEntry) -> bytes:
    """The canonical storage form of an entry (one line of JSON, ASCII)."""
    return canonical_json(entry_to_dict(entry))


def entry_from_bytes(data: bytes, *, position: int | None = None) -> AuditEntry:
    """Strict inverse of :func:`entry_to_bytes`: anything but the canonical bytes is refused."""
    try:
        parsed = json.loads(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict):
        raise _malformed(position or 0, "not a JSON object")
    entry = entry_from_dict(parsed, position=position)
    if entry_to_bytes(entry) != data:
        raise _malformed(entry.seq if position is None else position, "not in canonical form")
    return entry


# --------------------------------------------------------------------------- verification

_RESTORE = "compare with a backup or with the peer's copy of the exchange"


def walk_chain(
    entries: Iterable[AuditEntry],
    *,
    start_prev_hash: str = GENESIS_HASH,
    start_seq: int = 1,
) -> Iterator[AuditEntry]:
    """Yield each entry once it is proven to extend the chain so far; raise at the first fault.

    The building block of every verifier here: constant memory, one pass. On a sequence gap it
    reads the rest of the stream to tell a deletion from a reordering.
    """
    expected, prev_hash = start_seq, start_prev_hash
    stream = iter(entries)
    for entry in stream:
        if compute_entry_hash(entry.seq, entry.prev_hash, entry.record) != entry.entry_hash:
            claims = "" if entry.seq == expected else f" (it claims seq {entry.seq})"
            raise AuditIntegrityError(
                f"audit entry {expected}: edited: its content no longer matches its "
                f"entry_hash{claims}",
                position=expected,
                hint=f"{_RESTORE}; later entries stay linked but this one cannot be trusted",
            )
        if entry.seq != expected:
            raise _misplaced(entry.seq, expected, stream)
        if entry.prev_hash != prev_hash:
            raise _broken_link(expected, start_seq, start_prev_hash)
        yield entry
        prev_hash, expected = entry.entry_hash, expected + 1


def _misplaced(seq: int, expected: int, rest: Iterator[AuditEntry]) -> AuditIntegrityError:
    if seq < expected:
        return AuditIntegrityError(
            f"audit entry {expected}: out of order: found entry {seq} again after entry "
            f"{expected - 1}",
            position=expected,
            hint="entries were duplicated or moved; read the log ordered by seq and compare",
        )
    later = next((e.seq for e in rest if expected <= e.seq < seq), None)
    if later is not None:
        return AuditIntegrityError(
            f"audit entry {expected}: out of order: entry {seq} stands where {expected} "
            f"belongs, and entry {later} comes later",
            position=expected,
            hint="entries were reordered; their contents may be intact",
        )
    count = seq - expected
    missing = f"entry {expected}" if count == 1 else f"entries {expected}..{seq - 1}"
    return AuditIntegrityError(
        f"audit entry {expected}: missing: {missing} deleted ({count} in all), the next "
        f"present is {seq}",
        position=expected,
        hint=f"{_RESTORE}; peers hold their own signed copy of each exchange",
    )


def _broken_link(expected: int, start_seq: int, start_prev_hash: str) -> AuditIntegrityError:
    if expected == start_seq:
        origin = "genesis" if start_prev_hash == GENESIS_HASH else "the given start hash"
        return AuditIntegrityError(
            f"audit entry {expected}: broken link: it does not follow {origin}",
            position=expected,
            hint="entries before it were deleted, or it belongs to another chain",
        )
    return AuditIntegrityError(
        f"audit entry {expected}: broken link: its prev_hash is not the hash of entry "
        f"{expected - 1}",
        position=expected,
        hint=f"entry {expected - 1} was rewritten with a recomputed hash, or entries were "
        "removed and renumbered; check the checkpoints",
    )


def verify_chain(
    entries: Iterable[AuditEntry],
    *,
    start_prev_hash: str = GENESIS_HASH,
    start_seq: int = 1,
) -> ChainSummary:
    """Verify an ordered run of entries; raise :class:`AuditIntegrityError` at the first fault.

    A whole log starts at genesis; a later segment passes the hash and seq it continues from.
    A chain proves order and integrity, not completeness of its tail: deleting the newest
    entries leaves a valid shorter chain, which only a checkpoint held elsewhere reveals
    (:func:`node.audit.checkpoint.verify_chain_with_checkpoints`).
    """
    if not is_hex64(start_prev_hash) or start_seq < 1:
        raise InvalidArgumentError("start must be a 64-hex hash and a seq >= 1", field="start")
    count, head = 0, start_prev_hash
    for entry in walk_chain(entries, start_prev_hash=start_prev_hash, start_seq=start_seq):
        count, head = count + 1, entry.entry_hash
    return ChainSummary(count, start_seq, start_seq + count - 1, head)
