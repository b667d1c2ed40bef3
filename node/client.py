"""The one typed client for calling peers.

Every call is sealed (signed header over the exact body bytes), sent over mutual TLS with
the peer's certificate pinned from the directory, and its response is verified: signed by the
peer's directory key, addressed to us, bound to our request digest, for the same method.
Both the exchange and any refusal are appended to our own audit chain.

Invariants:
* Callers never see ``grpc.RpcError``: every failure is a :class:`node.errors.PeerError`
  carrying the gRPC status name, the peer, the peer's reason and a hint.
* A response that does not verify is a failure, even if the transport said OK.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from dataclasses import dataclass
from typing import Generic, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from crypto.envelope import (
    Header,
    Sealed,
    decode_header,
    format_time,
    open_envelope,
    seal,
    sha256_hex,
)
from crypto.errors import CryptoError
from crypto.keys import tls_server_name
from enlace.v1 import envelope_pb2
from node.audit import AuditRecord
from node.errors import EnlaceError, PeerError
from node.peer_checks import citation_problem, printable, shown
from node.runtime import NodeRuntime

M = TypeVar("M", bound=Message)

RESPONSE_TRAILER = "enlace-response-bin"


@dataclass(frozen=True)
class PeerReply(Generic[M]):
    """A verified answer: the decoded body and the peer's signed header (cites the agreement)."""

    message: M
    header: Header
    request_digest: str
    elapsed_ms: float


class PeerClient:
    """Calls one peer. Thread-safe; reuse it for many calls."""

    def __init__(
        self, runtime: NodeRuntime, peer: str, *, timeout: float = 10.0, endpoint: str = ""
    ) -> None:
        self.runtime = runtime
        self.peer = peer
        self.timeout = timeout
        member = runtime.directory.current(runtime.clock.now()).member(peer)
        key_pem, cert_pem = runtime.home.keys.load_tls()
        credentials = grpc.ssl_channel_credentials(
            root_certificates=member.tls_certificates_pem,
            private_key=key_pem,
            certificate_chain=cert_pem,
        )
        limit = runtime.config.max_message_bytes
        # ``endpoint`` reaches one replica of the peer directly (replicas share its keys).
        self.endpoint = endpoint or member.endpoint
        self.channel = grpc.secure_channel(
            self.endpoint,
            credentials,
            options=[
                ("grpc.ssl_target_name_override", tls_server_name(peer)),
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
            ],
        )
        self._stubs: dict[
            str, grpc.UnaryUnaryMultiCallable[envelope_pb2.Envelope, envelope_pb2.Envelope]
        ] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> PeerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stub(
        self, method: str
    ) -> grpc.UnaryUnaryMultiCallable[envelope_pb2.Envelope, envelope_pb2.Envelope]:
        with self._lock:
            stub = self._stubs.get(method)
            if stub is None:
                stub = self.channel.unary_unary(
                    method,
                    request_serializer=envelope_pb2.Envelope.SerializeToString,
                    response_deserializer=envelope_pb2.Envelope.FromString,
                )
                self._stubs[method] = stub
            return stub

    def seal_request(
        self, method: str, body: bytes, *, agreement: str = "", purpose: str = ""
    ) -> Sealed:
        key = self.runtime.signing_key
        header = Header(
            kind="request",
            method=method,
            sender=self.runtime.config.country,
            recipient=self.peer,
            issued_at=format_time(self.runtime.clock.now()),
            nonce=os.urandom(16).hex(),
            key_id=key.key_id,
            body_sha256=sha256_hex(body),
            agreement=agreement,
            purpose=purpose,
        )
        return seal(header, body, key)

    def call(
        self,
        method: str,
        request: Message,
        response_type: type[M],
        *,
        agreement: str = "",
        purpose: str = "",
        timeout: float | None = None,
    ) -> PeerReply[M]:
        sealed = self.seal_request(
            method, request.SerializeToString(), agreement=agreement, purpose=purpose
        )
        # The route is the method just sealed: no need to parse our own header back.
        return self.send(sealed, response_type, timeout=timeout, route=method)

    def send(
        self,
        sealed: Sealed,
        response_type: type[M],
        *,
        timeout: float | None = None,
        route: str | None = None,
    ) -> PeerReply[M]:
        """Send pre-sealed bytes to the header's method (or ``route``, to test mismatches)."""
        try:
            method = route or decode_header(sealed.header).method
        except CryptoError as exc:
            raise PeerError(
                f"refusing to send a malformed request header: {exc}",
                peer=self.peer,
                status_name="INVALID_ARGUMENT",
            ) from None
        wire = envelope_pb2.Envelope(
            header=sealed.header, signature=sealed.signature, body=sealed.body
        )
        started = self.runtime.clock.now()
        try:
            answer = self._stub(method)(wire, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            error = self._translate(exc)
            refusal = self._signed_refusal(exc, sealed)
            self._audit(method, sealed, refusal, error.status_name, error.message, started)
            raise error from None
        response = Sealed(bytes(answer.header), bytes(answer.signature), bytes(answer.body))
        try:
            header = self._verify(response, sealed, method)
            message = response_type.FromString(response.body)
        except (EnlaceError, CryptoError, DecodeError) as exc:
            error = PeerError(
                f"response from {self.peer} does not verify: {exc}",
                peer=self.peer,
                status_name="UNAUTHENTICATED",
                hint="the peer or something between us altered the answer; check the directory",
            )
            self._audit(method, sealed, response, error.status_name, error.message, started)
            raise error from None
        cited = citation_problem(header)
        if cited:  # it verified, but what it cites cannot be recorded (nor trusted)
            error = PeerError(
                f"{self.peer}'s answer cannot be used: {cited}",
                peer=self.peer,
                status_name="INVALID_ARGUMENT",
                hint=f"{self.peer}'s node answered outside the protocol; ask its operator",
            )
            self._audit(method, sealed, response, error.status_name, error.message, started)
            raise error from None
        self._audit(method, sealed, response, "OK", "", started)
        elapsed = (self.runtime.clock.now() - started).total_seconds() * 1000
        return PeerReply(message, header, sealed.digest, elapsed)

    def _verify(self, response: Sealed, request: Sealed, method: str) -> Header:
        claimed = decode_header(response.header)
        directory = self.runtime.directory.current(self.runtime.clock.now())
        if claimed.sender != self.peer:
            raise PeerError(
                f"response signed by {shown(claimed.sender)}", peer=self.peer, status_name=""
            )
        public_key = directory.live_signing_key(
            self.peer, claimed.key_id, claimed.issued_at_time, self.runtime.clock.now()
        )
        header = open_envelope(response, public_key, "response")
        if header.recipient != self.runtime.config.country:
            raise PeerError("response addressed to another node", peer=self.peer, status_name="")
        if header.request_digest != request.digest or header.method != method:
            raise PeerError("response is not bound to this request", peer=self.peer, status_name="")
        if header.status != "OK":
            raise PeerError(
                f"response status {shown(header.status)}", peer=self.peer, status_name=""
            )
        return header

    def _signed_refusal(self, exc: grpc.RpcError, request: Sealed) -> Sealed | None:
        """The peer's signed refusal from the trailer, kept only if it verifies and binds."""
        if not isinstance(exc, grpc.Call):
            return None
        for key, value in exc.trailing_metadata() or ():
            if key != RESPONSE_TRAILER or not isinstance(value, bytes):
                continue
            try:
                wire = envelope_pb2.Envelope.FromString(value)
                sealed = Sealed(bytes(wire.header), bytes(wire.signature), bytes(wire.body))
                claimed = decode_header(sealed.header)
                directory = self.runtime.directory.current(self.runtime.clock.now())
                public_key = directory.live_signing_key(
                    self.peer, claimed.key_id, claimed.issued_at_time, self.runtime.clock.now()
                )
                header = open_envelope(sealed, public_key, "response")
            except (EnlaceError, CryptoError, DecodeError):
                return None
            if header.sender == self.peer and header.request_digest == request.digest:
                return sealed
        return None

    def _translate(self, exc: grpc.RpcError) -> PeerError:
        code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
        # The peer's own words, unsigned: printed and audited, so never a control sequence.
        details = printable((exc.details() if isinstance(exc, grpc.Call) else None) or "")
        hint = ""
        if code == grpc.StatusCode.UNAVAILABLE:
            hint = (
                f"{self.peer} at {self.endpoint} is unreachable, or its TLS certificate does not "
                "match the one pinned in the directory"
            )
        elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
            hint = f"{self.peer} did not answer in time"
        return PeerError(
            f"{self.peer}: {details or code.name}",
            peer=self.peer,
            status_name=code.name,
            hint=hint,
        )

    def _audit(
        self,
        method: str,
        request: Sealed,
        response: Sealed | None,
        status: str,
        reason: str,
        at: dt.datetime,
    ) -> None:
        header = None
        if response is not None:
            try:
                header = decode_header(response.header)
            except CryptoError:  # a malformed answer is audited too, without its citations
                header = None
            if header is not None and citation_problem(header):
                header = None  # citations the audit columns cannot hold: kept in the bytes only
        self.runtime.store.append_audit(
            AuditRecord(
                at=at,
                direction="outbound",
                peer=self.peer,
                method=method,
                request_header=request.header,
                request_signature=request.signature,
                request_digest=request.digest,
                decision="allowed" if status == "OK" else "denied",
                status=status,
                reason=reason.replace("\x00", "\ufffd")[:1000],  # PostgreSQL text holds no NUL
                agreement_id=header.agreement if header else "",
                agreement_hash=header.agreement_hash if header else "",
                response_header=response.header if response else b"",
                response_signature=response.signature if response else b"",
                response_digest=response.digest if response else "",
                extra={},
            )
        )
