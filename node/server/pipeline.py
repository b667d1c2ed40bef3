"""The request path every service goes through, in one place.

::

    peer ──mTLS──▶ envelope check (signature, recipient, window, nonce)
         ──▶ agreement decision (policies, pure) ──▶ service handler
         ──▶ audit append ──▶ signed response bound to the request digest ──▶ peer

Invariants:
* No handler runs unless :meth:`Pipeline._authenticate` and the authoriser both succeeded;
  the handler table is only reachable through :meth:`Pipeline.handle`.
* Every call, allowed or refused, is answered with a response header signed by this node
  and bound to the request digest (refusals travel in the ``enlace-response-bin`` trailer),
  and is appended to the audit chain before the answer leaves the node.
* Checks happen in a fixed order so that an unauthenticated caller learns nothing about
  agreements or data: header parse → kind and method → recipient → directory freshness →
  sender key → signature and body digest → TLS binding → time window → replay → body parse
  (no NUL in any text field) → agreement (and quota) → handler.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from google.protobuf.message import DecodeError, Message

from crypto.envelope import (
    MAX_HEADER_BYTES,
    Header,
    Sealed,
    decode_header,
    format_time,
    open_envelope,
    peek_header,
    seal,
    sha256_hex,
)
from crypto.errors import CryptoError
from crypto.keys import certificate_fingerprint
from node.audit import AuditRecord
from node.config import MAX_SKEW_SECONDS
from node.errors import (
    AuthenticationError,
    EnlaceError,
    InternalError,
    InvalidArgumentError,
    from_policy,
)
from node.ops.logging_json import CURRENT_CALL
from node.peer_checks import shown
from node.runtime import NodeRuntime
from node.trust.member import MemberDescriptor
from policies.decision import Decision
from policies.errors import PolicyError

log = logging.getLogger("node.server")

# Audit entries of requests whose sender cannot even be read name this user-assigned code.
UNIDENTIFIED = "ZZZ"
_ISO3 = re.compile(r"[A-Z]{3}")


# Sees every handled call: (method, status, claimed sender, seconds, request digest).
CallObserver = Callable[[str, str, str, float, str], None]


@dataclass(frozen=True)
class Permit:
    """What the authoriser allowed: cited in the response and in the audit log.

    ``decision`` is the agreement decision (its grant carries the disclosure profile and the
    attributes a handler may release); ``None`` for membership-level calls.
    """

    agreement_id: str
    agreement_hash: str
    rule: str
    decision: Decision | None = None


@dataclass(frozen=True)
class Ask:
    """What a request asks for, in the terms agreements grant (read from the parsed body)."""

    dataset: str = ""
    dimensions: frozenset[str] = frozenset()
    attributes: frozenset[str] = frozenset()
    units: int = 1


class Authorizer(Protocol):
    def authorize(
        self, service: str, header: Header, ask: Ask, peer: MemberDescriptor, now: dt.datetime
    ) -> Permit: ...


@dataclass(frozen=True)
class CallContext:
    """What a handler sees: the verified header, the peer, the permit and the time."""

    header: Header
    peer: MemberDescriptor
    permit: Permit
    now: dt.datetime
    runtime: NodeRuntime
    audit_extra: dict[str, str | int]


Handler = Callable[[CallContext, Any], Message | Iterable[Message]]


def _no_ask(_request: Any) -> Ask:
    return Ask()


@dataclass(frozen=True)
class MethodSpec:
    """One method. ``streaming``: the handler returns an iterable of messages, each sent as its
    own signed response bound to the request (server streaming); checks and audit run once."""

    full_name: str
    service: str
    request_type: type[Message]
    handler: Handler
    describe: Callable[[Any], Ask] = _no_ask
    streaming: bool = False


@dataclass
class Outcome:
    """A handled call: the signed response and, on refusal, the error to raise at the edge.

    ``responses`` holds every signed message of a streaming call (``response`` is the first).
    """

    response: Sealed
    error: EnlaceError | None = None
    responses: list[Sealed] | None = None


class Pipeline:
    def __init__(
        self, runtime: NodeRuntime, authorizer: Authorizer, *, require_tls: bool = True
    ) -> None:
        self.runtime = runtime
        self.authorizer = authorizer
        self.require_tls = require_tls
        self.observers: list[CallObserver] = []

    def handle(self, spec: MethodSpec, sealed: Sealed, tls_peer_pem: bytes | None) -> Outcome:
        """:meth:`_handle`, timed and reported to the ``observers`` (metrics, access log)."""
        if not self.observers:
            return self._handle(spec, sealed, tls_peer_pem)
        started = time.perf_counter()
        token = CURRENT_CALL.set((sealed.digest, spec.full_name))
        try:
            outcome = self._handle(spec, sealed, tls_peer_pem)
        finally:
            CURRENT_CALL.reset(token)
        status = outcome.error.status_name if outcome.error else "OK"
        peer = peek_header(outcome.response).recipient
        for observe in self.observers:
            observe(spec.full_name, status, peer, time.perf_counter() - started, sealed.digest)
        return outcome

    def _handle(self, spec: MethodSpec, sealed: Sealed, tls_peer_pem: bytes | None) -> Outcome:
        now = self.runtime.clock.now()
        header: Header | None = None
        permit = Permit("", "", "")
        extra: dict[str, str | int] = {}
        try:
            header = self._parse(sealed)
            peer = self._authenticate(spec, sealed, header, tls_peer_pem, now)
            try:
                request = spec.request_type.FromString(sealed.body)
            except DecodeError as exc:
                raise InvalidArgumentError(
                    f"body is not a valid {spec.request_type.DESCRIPTOR.full_name}",
                    field="body",
                ) from exc
            nul = _nul_field(request)
            if nul:  # no text field carries NUL; PostgreSQL could not even store it
                raise InvalidArgumentError("text must not contain NUL characters", field=nul)
            ask = spec.describe(request)
            permit = self.authorizer.authorize(spec.service, header, ask, peer, now)
            context = CallContext(header, peer, permit, now, self.runtime, extra)
            answer: Any = spec.handler(context, request)  # a message, or messages if streaming
            if not spec.streaming:
                body = answer.SerializeToString()
                response = self._respond(spec, sealed, header, body, "OK", "", permit)
                self._audit(spec, sealed, header, response, "allowed", "OK", "", permit, extra, now)
                return Outcome(response)
            # Every message is produced (and so every refusal raised) before the first is sent.
            responses = [
                self._respond(spec, sealed, header, m.SerializeToString(), "OK", "", permit)
                for m in answer
            ]
            if not responses:
                raise InvalidArgumentError("the request produced no answer", field="body")
            extra["messages"] = len(responses)
            self._audit(spec, sealed, header, responses[0], "allowed", "OK", "", permit, extra, now)
            return Outcome(responses[0], responses=responses)
        except EnlaceError as exc:
            if exc.status_name == "INTERNAL":  # e.g. StoreError: its text names the database
                log.error("%s failed: %s", spec.full_name, exc)
                exc = _internal()
            return self._refuse(spec, sealed, header, exc, permit, extra, now)
        except CryptoError as exc:
            error = AuthenticationError(str(exc), hint="sign the exact bytes you send")
            return self._refuse(spec, sealed, header, error, permit, extra, now)
        except PolicyError as exc:
            return self._refuse(spec, sealed, header, from_policy(exc), permit, extra, now)
        except Exception:  # fail closed: a bug answers INTERNAL, signed and audited
            log.exception("%s failed", spec.full_name)
            return self._refuse(spec, sealed, header, _internal(), permit, extra, now)

    # -- checks, in order ------------------------------------------------------------------
    def _parse(self, sealed: Sealed) -> Header:
        try:
            return decode_header(sealed.header)
        except CryptoError as exc:
            raise InvalidArgumentError(str(exc), field="header") from exc

    def _authenticate(
        self,
        spec: MethodSpec,
        sealed: Sealed,
        header: Header,
        tls_peer_pem: bytes | None,
        now: dt.datetime,
    ) -> MemberDescriptor:
        me = self.runtime.config.country
        if header.kind != "request":
            raise AuthenticationError("a response header was sent as a request")
        if header.method != spec.full_name:
            raise AuthenticationError(
                f"request was signed for {header.method[:120]!r}, but called {spec.full_name}",
                hint="sign the header for the method you call",
            )
        if header.recipient != me:
            raise AuthenticationError(
                f"request is addressed to {shown(header.recipient)}, this node is {me}",
                hint="address the request to the node you are calling",
            )
        directory = self.runtime.directory.current(now)
        public_key = directory.live_signing_key(
            header.sender, header.key_id, header.issued_at_time, now
        )
        peer = directory.member(header.sender)
        open_envelope(sealed, public_key, "request")
        if self.require_tls:
            if tls_peer_pem is None:
                raise AuthenticationError(
                    "no TLS client certificate", hint="connect with mutual TLS"
                )
            presented = certificate_fingerprint(tls_peer_pem)
            if presented not in peer.tls_fingerprints:
                raise AuthenticationError(
                    f"TLS client certificate {presented} is not the one the directory pins "
                    f"for {peer.country}",
                    hint="connect with the node's own certificate listed in the directory",
                )
        skew = abs((now - header.issued_at_time).total_seconds())
        window = self.runtime.config.skew_seconds
        if skew > window:
            raise AuthenticationError(
                f"request issued at {header.issued_at}, node time is {format_time(now)}: "
                f"{skew:.0f} s apart, the limit is {window} s",
                hint="synchronise the clock (NTP) and send a fresh request",
            )
        # Kept for the widest window any configuration allows, not this one: an operator who
        # widens the window must not readmit a request whose nonce a purge already dropped.
        kept = max(window, MAX_SKEW_SECONDS)
        expires = header.issued_at_time + dt.timedelta(seconds=kept + 1)
        self.runtime.store.remember_nonce(header.sender, header.nonce, expires)
        return peer

    # -- answers ---------------------------------------------------------------------------
    def _respond(
        self,
        spec: MethodSpec,
        request: Sealed,
        header: Header | None,
        body: bytes,
        status: str,
        reason: str,
        permit: Permit,
    ) -> Sealed:
        key = self.runtime.signing_key
        response = Header(
            kind="response",
            method=spec.full_name,
            sender=self.runtime.config.country,
            recipient=header.sender if header else "",
            issued_at=format_time(self.runtime.clock.now()),
            nonce=os.urandom(16).hex(),
            key_id=key.key_id,
            body_sha256=sha256_hex(body),
            agreement=permit.agreement_id,
            agreement_hash=permit.agreement_hash,
            request_digest=request.digest,
            status=status,
            reason=reason[:1000],
        )
        return seal(response, body, key)

    def _refuse(
        self,
        spec: MethodSpec,
        sealed: Sealed,
        header: Header | None,
        error: EnlaceError,
        permit: Permit,
        extra: dict[str, str | int],
        now: dt.datetime,
    ) -> Outcome:
        reason = str(error)
        response = self._respond(spec, sealed, header, b"", error.status_name, reason, permit)
        decision = "denied"
        log.info("refused %s from %s: %s", spec.full_name, header.sender if header else "?", reason)
        self._audit(
            spec, sealed, header, response, decision, error.status_name, reason, permit, extra, now
        )
        return Outcome(response, error)

    def _audit(
        self,
        spec: MethodSpec,
        sealed: Sealed,
        header: Header | None,
        response: Sealed,
        decision: str,
        status: str,
        reason: str,
        permit: Permit,
        extra: dict[str, str | int],
        now: dt.datetime,
    ) -> None:
        stored_header = sealed.header[:MAX_HEADER_BYTES]
        sender = header.sender if header and _ISO3.fullmatch(header.sender) else UNIDENTIFIED
        self.runtime.store.append_audit(
            AuditRecord(
                at=now,
                direction="inbound",
                peer=sender,
                method=spec.full_name,
                request_header=stored_header,
                request_signature=sealed.signature[:64],
                request_digest=sha256_hex(stored_header),
                decision=decision,
                status=status,
                reason=reason.replace("\x00", "\ufffd")[:1000],  # PostgreSQL text holds no NUL
                agreement_id=permit.agreement_id,
                agreement_hash=permit.agreement_hash,
                response_header=response.header,
                response_signature=response.signature,
                response_digest=response.digest,
                extra=extra,
            )
        )


def _internal() -> InternalError:
    """What a peer is told of a failure at this node: never its details (they are logged)."""
    return InternalError(
        "the node could not answer this request; the failure is in its log",
        hint="retry later, or ask the node's operator",
    )


def _nul_field(message: Message, prefix: str = "") -> str:
    """The first string field (dotted path) of ``message`` holding a NUL character, or ""."""
    for field, value in message.ListFields():
        name = prefix + field.name
        if field.type == field.TYPE_STRING:
            if any("\x00" in text for text in (value if field.is_repeated else [value])):
                return name
        elif field.type == field.TYPE_MESSAGE:
            for child in value if field.is_repeated else [value]:
                found = _nul_field(child, name + ".")
                if found:
                    return found
    return ""
