"""Signed envelopes: the header that every request and response carries, signed as sent.

A header is canonical JSON (sorted keys, no whitespace, UTF-8). The sender signs
``"enlace/1 request\\n" || header`` (or ``response``) with Ed25519; the header carries the
SHA-256 of the body, so the signature covers header and body together while the body can
be large. The receiver parses and verifies *the bytes it received*; nothing is re-encoded.

Invariants:
* :func:`open_envelope` raises :class:`crypto.errors.VerificationError` unless the signature
  verifies under the given key, the body digest matches, the header is well formed with no
  unknown fields, and the kind is the expected one.
* A response header binds the request by ``request_digest`` = SHA-256 of the request header
  bytes, so a response cannot be replayed as the answer to a different request.
* Checks that need state (who is allowed, the time window, the replay cache) are the node's;
  this module is pure and has no clock.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from crypto.errors import EncodingError, VerificationError
from crypto.signing import SigningKey, verify

PROTOCOL = "enlace/1"
MAX_HEADER_BYTES = 4096
REQUEST_CONTEXT = b"enlace/1 request"
RESPONSE_CONTEXT = b"enlace/1 response"

Kind = Literal["request", "response"]


def format_time(moment: dt.datetime) -> str:
    """RFC 3339 UTC with milliseconds and ``Z``, the only time form in headers."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime; pass an aware UTC time")
    utc = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


def parse_time(text: str) -> dt.datetime:
    """Parse the one header time form (``YYYY-MM-DDTHH:MM:SS.mmmZ``); refuse any other."""
    if not text.endswith("Z"):
        raise EncodingError(f"time {text!r} must be UTC ending in Z")
    try:
        moment = dt.datetime.fromisoformat(text).astimezone(dt.UTC)
    except ValueError as exc:
        raise EncodingError(f"time {text!r} is not RFC 3339") from exc
    if format_time(moment) != text:
        raise EncodingError(f"time {text!r} is not in the form YYYY-MM-DDTHH:MM:SS.mmmZ")
    return moment


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Header:
    """The signed header. ``request_digest`` and ``status`` are set on responses only."""

    kind: Kind
    method: str
    sender: str
    recipient: str
    issued_at: str
    nonce: str
    key_id: str
    body_sha256: str
    agreement: str = ""
    agreement_hash: str = ""
    purpose: str = ""
    request_digest: str = ""
    status: str = ""
    reason: str = ""
    v: str = PROTOCOL

    def encode(self) -> bytes:
        values = self.__dict__
        fields = {k: values[k] for k in _FIELD_NAMES if values[k] != "" or k in _ALWAYS}
        return _CANONICAL.encode(fields).encode()

    @functools.cached_property
    def issued_at_time(self) -> dt.datetime:
        """Parsed once per header: the pipeline reads it for the key, window and audit."""
        return parse_time(self.issued_at)


# Sorted keys, no spaces, UTF-8 as is: the one byte form a header is signed and checked in.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_ALWAYS = frozenset(
    {"v", "kind", "method", "sender", "recipient", "issued_at", "nonce", "key_id", "body_sha256"}
)
_FIELD_NAMES = tuple(Header.__dataclass_fields__)
_ALL = frozenset(_FIELD_NAMES)
_HEX = frozenset("0123456789abcdef")


def _require_hex(name: str, value: str, length: int) -> None:
    if len(value) != length or not set(value) <= _HEX:
        raise EncodingError(f"header field {name} must be {length} lowercase hex digits")


@functools.lru_cache(maxsize=1024)
def decode_header(data: bytes) -> Header:
    """Parse header bytes strictly; raises :class:`EncodingError` naming the problem.

    Cached: the same bytes are parsed several times along one call (client, pipeline,
    audit), the result is immutable, and failures are not cached.
    """
    if len(data) > MAX_HEADER_BYTES:
        raise EncodingError(f"header is {len(data)} bytes; the limit is {MAX_HEADER_BYTES}")
    try:
        raw: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EncodingError("header is not UTF-8 JSON") from exc
    except RecursionError:  # "[[[[…]]]]" within the size limit: anyone can send it
        raise EncodingError("header nests too deeply to be a header") from None
    if not isinstance(raw, dict):
        raise EncodingError("header must be a JSON object")
    unknown = set(raw) - _ALL
    if unknown:
        names = ", ".join(repr(name[:40]) for name in sorted(unknown)[:5])  # escaped: anyone's
        raise EncodingError(f"header has unknown fields: {names}")
    missing = _ALWAYS - set(raw)
    if missing:
        raise EncodingError(f"header lacks fields: {', '.join(sorted(missing))}")
    if not all(isinstance(v, str) for v in raw.values()):
        raise EncodingError("every header field must be a string")
    if raw["v"] != PROTOCOL:
        raise EncodingError(f"protocol {raw['v']!r} is not supported; this node speaks {PROTOCOL}")
    if raw["kind"] not in ("request", "response"):
        raise EncodingError("header kind must be 'request' or 'response'")
    _require_hex("nonce", raw["nonce"], 32)
    _require_hex("body_sha256", raw["body_sha256"], 64)
    if raw.get("request_digest"):
        _require_hex("request_digest", raw["request_digest"], 64)
    header = Header(**raw)
    header.issued_at_time  # noqa: B018 - validates the time form (and keeps the parse)
    try:
        canonical = header.encode()
    except UnicodeEncodeError:  # a "\ud800" escape decodes to a lone surrogate
        raise EncodingError("header text is not valid Unicode (a lone surrogate)") from None
    if canonical != data:
        raise EncodingError("header is not in canonical form")
    return header


@dataclass(frozen=True)
class Sealed:
    """What goes on the wire: header bytes, signature, body bytes."""

    header: bytes
    signature: bytes
    body: bytes

    @property
    def digest(self) -> str:
        return sha256_hex(self.header)


def seal(header: Header, body: bytes, key: SigningKey) -> Sealed:
    """Sign ``header`` (whose ``body_sha256`` must match ``body``) with ``key``."""
    if header.body_sha256 != sha256_hex(body):
        raise ValueError("header.body_sha256 does not match the body")
    if header.key_id != key.key_id:
        raise ValueError("header.key_id does not name the signing key")
    header_bytes = header.encode()
    context = REQUEST_CONTEXT if header.kind == "request" else RESPONSE_CONTEXT
    return Sealed(header_bytes, key.sign(context, header_bytes), body)


def peek_header(sealed: Sealed) -> Header:
    """Parse the header *without* verifying it, to find out which key to verify with."""
    return decode_header(sealed.header)


def open_envelope(sealed: Sealed, public_key: bytes, expected_kind: Kind) -> Header:
    """Verify ``sealed`` under ``public_key``; return its header or raise."""
    try:
        header = decode_header(sealed.header)
    except EncodingError as exc:
        raise VerificationError(f"malformed header: {exc}") from exc
    if header.kind != expected_kind:
        raise VerificationError(f"expected a {expected_kind} header, got {header.kind}")
    context = REQUEST_CONTEXT if expected_kind == "request" else RESPONSE_CONTEXT
    verify(public_key, context, sealed.header, sealed.signature)
    if sha256_hex(sealed.body) != header.body_sha256:
        raise VerificationError("body does not match the signed body digest")
    return header
