"""Every refusal the foundation promises, over real gRPC with mutual TLS on loopback.

Each attack is sent as bytes on the wire (via ``PeerClient.send``), so what is tested is the
server's check of exactly what arrives, not a client-side shortcut.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
from concurrent import futures

import grpc
import pytest
from typer.testing import CliRunner

from crypto.envelope import Header, Sealed, decode_header, format_time, seal, sha256_hex
from crypto.signing import SigningKey
from enlace.v1 import envelope_pb2, node_pb2
from node.audit import verify_chain
from node.cli.main import app
from node.client import PeerClient
from node.demo.federation import free_port
from node.errors import PeerError
from node.home import NodeHome
from node.runtime import open_runtime
from node.server.app import NodeServer
from node.trust.authoring import new_directory, sign_directory
from node.trust.directory import Directory, DirectorySignatureError
from node.trust.member import MemberDescriptor

PING = "/enlace.v1.NodeService/Ping"
GET_INFO = "/enlace.v1.NodeService/GetInfo"


def ping_body() -> bytes:
    return node_pb2.PingRequest(payload=b"x").SerializeToString()


def header_for(client: PeerClient, **changes: str) -> Header:
    body = ping_body()
    header = Header(
        kind="request",
        method=PING,
        sender=client.runtime.config.country,
        recipient=client.peer,
        issued_at=format_time(client.runtime.clock.now()),
        nonce=os.urandom(16).hex(),
        key_id=client.runtime.signing_key.key_id,
        body_sha256=sha256_hex(body),
    )
    return dataclasses.replace(header, **changes)


def refused(client: PeerClient, sealed: Sealed, route: str | None = None) -> PeerError:
    with pytest.raises(PeerError) as caught:
        client.send(sealed, node_pb2.PingResponse, route=route)
    return caught.value


def last_inbound(live, country: str):  # type: ignore[no-untyped-def]
    entries = [
        e for e in live.runtimes[country].store.iter_audit() if e.record.direction == "inbound"
    ]
    return entries[-1]


def test_signed_ping_is_answered_and_audited_on_both_sides(live) -> None:  # type: ignore[no-untyped-def]
    with live.client("CRI", "PAN") as client:
        reply = client.call(PING, node_pb2.PingRequest(payload=b"hola"), node_pb2.PingResponse)
    assert reply.message.payload == b"hola"
    assert reply.header.sender == "PAN" and reply.header.recipient == "CRI"
    assert reply.header.request_digest == reply.request_digest
    server_entry = last_inbound(live, "PAN")
    assert server_entry.record.peer == "CRI" and server_entry.record.status == "OK"
    assert server_entry.record.request_digest == reply.request_digest
    client_entries = list(live.runtimes["CRI"].store.iter_audit())
    assert client_entries[-1].record.direction == "outbound"
    assert client_entries[-1].record.response_digest == server_entry.record.response_digest
    verify_chain(live.runtimes["PAN"].store.iter_audit())
    verify_chain(live.runtimes["CRI"].store.iter_audit())


def test_unknown_sender_is_refused(live) -> None:  # type: ignore[no-untyped-def]
    stranger = SigningKey.generate()
    with live.client("CRI", "PAN") as client:
        header = header_for(client, sender="BLZ", key_id=stranger.key_id)
        error = refused(client, seal(header, ping_body(), stranger))
    assert error.status_name == "UNAUTHENTICATED"
    assert "BLZ" in error.message and "not a member" in error.message


def test_signature_by_key_not_in_directory_is_refused(live) -> None:  # type: ignore[no-untyped-def]
    rogue = SigningKey.generate()
    with live.client("CRI", "PAN") as client:
        error = refused(client, seal(header_for(client, key_id=rogue.key_id), ping_body(), rogue))
        assert error.status_name == "UNAUTHENTICATED"
        assert "no signing key" in error.message
        # Same key id as the real key, but signed by another key: the signature fails.
        real_id = client.runtime.signing_key.key_id
        forged = seal(header_for(client, key_id=rogue.key_id), ping_body(), rogue)
        header = decode_header(forged.header)
        relabelled = dataclasses.replace(header, key_id=real_id).encode()
        error = refused(client, Sealed(relabelled, forged.signature, forged.body))
    assert error.status_name == "UNAUTHENTICATED"
    assert "signature" in error.message.lower()


def test_body_changed_after_signing_is_refused(live) -> None:  # type: ignore[no-untyped-def]
    with live.client("CRI", "PAN") as client:
        good = client.seal_request(PING, ping_body())
        tampered = node_pb2.PingRequest(payload=b"y").SerializeToString()
        error = refused(client, Sealed(good.header, good.signature, tampered))
    assert error.status_name == "UNAUTHENTICATED"
    assert "body" in error.message


def test_header_changed_after_signing_is_refused(live) -> None:  # type: ignore[no-untyped-def]
    with live.client("CRI", "PAN") as client:
        good = client.seal_request(PING, ping_body(), purpose="statistics")
        changed = good.header.replace(b'"purpose":"statistics"', b'"purpose":"statistica"')
        assert changed != good.header
        error = refused(client, Sealed(changed, good.signature, good.body))
    assert error.status_name == "UNAUTHENTICATED"


def test_request_addressed_to_another_node_is_refused(live) -> None:  # type: ignore[no-untyped-def]
    with live.client("CRI", "PAN") as client:
        key = client.runtime.signing_key
        error = refused(client, seal(header_for(client, recipient="HND"), ping_body(), key))
    assert error.status_name == "UNAUTHENTICATED"
    assert "addressed to 'HND'" in error.message


def test_request_signed_for_another_method_is_refused(live) -> None:  # type: ignore[no-untyped-def]
    with live.client("CRI", "PAN") as client:
        key = client.runtime.signing_key
        sealed = seal(header_for(client, method=GET_INFO), ping_body(), key)
        error = refused(client, sealed, route=PING)
    assert error.status_name == "UNAUTHENTICATED"


def test_replayed_nonce_is_refused(live) -> None:  # type: ignore[no-untyped-def]
    with live.client("CRI", "PAN") as client:
        sealed = client.seal_request(PING, ping_body())
        client.send(sealed, node_pb2.PingResponse)
        error = refused(client, sealed)
    assert error.status_name == "UNAUTHENTICATED"
    assert "replayed" in error.message


@pytest.mark.parametrize("offset", [-180, 180])
def test_issued_at_outside_window_is_refused(live, offset: int) -> None:  # type: ignore[no-untyped-def]
    live.clocks["CRI"].advance(dt.timedelta(seconds=offset))
    with live.client("CRI", "PAN") as client:
        error = refused(client, client.seal_request(PING, ping_body()))
    assert error.status_name == "UNAUTHENTICATED"
    assert "limit is 120 s" in error.message
    # Within the window the same clocks work.
    live.clocks["CRI"].advance(dt.timedelta(seconds=-offset + (60 if offset > 0 else -60)))
    with live.client("CRI", "PAN") as client:
        client.call(PING, node_pb2.PingRequest(), node_pb2.PingResponse)


def test_window_widened_after_a_purge_does_not_readmit_a_replay(live) -> None:  # type: ignore[no-untyped-def]
    """A nonce outlives any window the node may later be configured with."""
    pan = live.runtimes["PAN"]
    with live.client("CRI", "PAN") as client:
        sealed = client.seal_request(PING, ping_body())
        client.send(sealed, node_pb2.PingResponse)
        live.clocks["PAN"].advance(dt.timedelta(seconds=125))  # past the 120 s window
        pan.store.purge_nonces(pan.clock.now())
        pan.config = dataclasses.replace(pan.config, skew_seconds=300)  # the operator widens it
        error = refused(client, sealed)
    assert error.status_name == "UNAUTHENTICATED"
    assert "replayed" in error.message


def _successor(current: Directory, members: tuple[MemberDescriptor, ...]) -> Directory:
    """The next version of ``current`` with ``members``, not yet signed."""
    return new_directory(
        version=current.version + 1,
        issued_at=current.issued_at,
        expires_at=current.expires_at,
        threshold=current.threshold,
        directory_keys=current.directory_keys,
        members=members,
    )


def _retire_signing_key(live, country: str, at: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    """Every node adopts a directory in which ``country``'s key stops being valid ``at``."""
    current = live.federation.directory
    member = current.member(country)
    (key,) = member.signing_keys
    retired = dataclasses.replace(member, signing_keys=(dataclasses.replace(key, not_after=at),))
    members = tuple(retired if m.country == country else m for m in current.members)
    candidate = _successor(current, members)
    for signer in live.federation.directory_keys[:2]:
        candidate = sign_directory(candidate, signer)
    for runtime in live.runtimes.values():
        assert runtime.directory.offer(candidate, runtime.clock.now())


def test_retired_key_is_refused_even_with_a_backdated_issued_at(live) -> None:  # type: ignore[no-untyped-def]
    start = live.clocks["PAN"].now()
    _retire_signing_key(live, "CRI", start + dt.timedelta(seconds=30))
    for clock in live.clocks.values():
        clock.set(start + dt.timedelta(seconds=90))  # retired 60 s ago, inside the window
    backdated = format_time(start + dt.timedelta(seconds=29))  # when the key was still valid
    with live.client("CRI", "PAN") as client:
        body = ping_body()
        made = header_for(client, issued_at=backdated)
        error = refused(client, seal(made, body, client.runtime.signing_key))
    assert error.status_name == "UNAUTHENTICATED"
    assert f"not at {start + dt.timedelta(seconds=90):%Y-%m-%dT%H:%M:%S}" in error.message


def test_answer_signed_with_a_retired_key_is_refused(live) -> None:  # type: ignore[no-untyped-def]
    """The querier checks the responder's key at its own time, not at the claimed one."""
    start = live.clocks["CRI"].now()
    _retire_signing_key(live, "PAN", start + dt.timedelta(seconds=30))
    live.clocks["PAN"].set(start + dt.timedelta(seconds=29))  # PAN still signs with it
    live.clocks["CRI"].set(start + dt.timedelta(seconds=90))
    before = live.runtimes["CRI"].store.audit_count()
    with live.client("CRI", "PAN") as client:
        error = refused(client, client.seal_request(PING, ping_body()))
    assert error.status_name == "UNAUTHENTICATED"
    assert "does not verify" in error.message
    assert live.runtimes["CRI"].store.audit_count() == before + 1


def test_expired_directory_fails_precondition_after_grace(live) -> None:  # type: ignore[no-untyped-def]
    expires = live.federation.directory.expires_at
    for country in ("PAN", "CRI"):
        live.clocks[country].set(expires + dt.timedelta(days=1))
    with live.client("CRI", "PAN") as client:  # within grace: still served, with a warning
        client.call(PING, node_pb2.PingRequest(), node_pb2.PingResponse)
    live.clocks["PAN"].set(expires + dt.timedelta(days=8))
    live.clocks["CRI"].set(expires + dt.timedelta(days=1))
    with live.client("CRI", "PAN") as client:
        error = refused(client, client.seal_request(PING, ping_body()))
    assert error.status_name == "FAILED_PRECONDITION"
    assert "grace period ended" in error.message


def test_directory_below_threshold_is_not_adopted(live) -> None:  # type: ignore[no-untyped-def]
    runtime = live.runtimes["PAN"]
    current = live.federation.directory
    candidate = _successor(current, current.members)
    candidate = sign_directory(candidate, live.federation.directory_keys[0])  # 1 of 2
    with pytest.raises(DirectorySignatureError):
        runtime.directory.offer(candidate, runtime.clock.now())
    assert runtime.directory.peek().version == current.version
    on_disk = json.loads(runtime.home.directory_path.read_text())
    assert on_disk["version"] == current.version
    # With the threshold met it is adopted and persisted.
    candidate = sign_directory(candidate, live.federation.directory_keys[1])
    assert runtime.directory.offer(candidate, runtime.clock.now())
    assert json.loads(runtime.home.directory_path.read_text())["version"] == current.version + 1


def test_server_certificate_not_matching_pin_is_refused(live, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An impostor at HND's endpoint with another node's certificate: the handshake fails."""
    impostor_root = tmp_path / "impostor"
    shutil.copytree(live.federation.homes["HND"].root, impostor_root)
    pan = live.federation.homes["PAN"].root
    shutil.copy(pan / "tls.crt", impostor_root / "tls.crt")
    shutil.copy(pan / "keys" / "tls.key", impostor_root / "keys" / "tls.key")
    runtime = open_runtime(NodeHome(impostor_root), live.clocks["HND"])
    server = NodeServer(runtime)
    server.start()
    try:
        with live.client("CRI", "HND", timeout=3.0) as client:
            error = refused(client, client.seal_request(PING, ping_body()))
        assert error.status_name == "UNAVAILABLE"
        assert "pinned" in error.hint
    finally:
        server.stop(grace=0.1)
        runtime.close()


def test_client_certificate_not_matching_sender_is_refused(live, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """CRI signs correctly but connects with HND's TLS certificate: TLS binding fails."""
    borrowed = tmp_path / "cri-with-hnd-tls"
    shutil.copytree(live.federation.homes["CRI"].root, borrowed)
    hnd = live.federation.homes["HND"].root
    shutil.copy(hnd / "tls.crt", borrowed / "tls.crt")
    shutil.copy(hnd / "keys" / "tls.key", borrowed / "keys" / "tls.key")
    runtime = open_runtime(NodeHome(borrowed), live.clocks["CRI"])
    try:
        with PeerClient(runtime, "PAN") as client:
            error = refused(client, client.seal_request(PING, ping_body()))
        assert error.status_name == "UNAUTHENTICATED"
        assert "TLS client certificate" in error.message
    finally:
        runtime.close()


def test_refusals_are_audited_and_signed(live) -> None:  # type: ignore[no-untyped-def]
    with live.client("CRI", "PAN") as client:
        sealed = client.seal_request(PING, ping_body())
        client.send(sealed, node_pb2.PingResponse)
        refused(client, sealed)
    entry = last_inbound(live, "PAN")
    assert entry.record.decision == "denied" and entry.record.status == "UNAUTHENTICATED"
    assert "replayed" in entry.record.reason
    response = decode_header(entry.record.response_header)
    assert response.status == "UNAUTHENTICATED" and response.request_digest == sealed.digest
    # The caller kept the peer's signed refusal in its own log.
    outbound = list(live.runtimes["CRI"].store.iter_audit())[-1]
    assert outbound.record.status == "UNAUTHENTICATED"
    assert outbound.record.response_digest == entry.record.response_digest


def test_a_refusal_signed_with_a_retired_key_is_not_kept_as_evidence(live) -> None:  # type: ignore[no-untyped-def]
    start = live.clocks["CRI"].now()
    _retire_signing_key(live, "PAN", start + dt.timedelta(seconds=30))
    live.clocks["PAN"].set(start + dt.timedelta(seconds=29))  # PAN still signs with it
    live.clocks["CRI"].set(start + dt.timedelta(seconds=90))
    with live.client("CRI", "PAN") as client:
        error = refused(client, client.seal_request(PING, ping_body()), route=GET_INFO)
    assert error.status_name == "UNAUTHENTICATED"
    assert last_inbound(live, "PAN").record.response_header  # PAN did sign its refusal
    outbound = list(live.runtimes["CRI"].store.iter_audit())[-1]
    assert (outbound.record.direction, outbound.record.response_header) == ("outbound", b"")


def test_a_garbage_request_in_the_log_does_not_stop_audit_show(live) -> None:  # type: ignore[no-untyped-def]
    """Refusals are logged as they arrived; listing the log must survive any of them."""
    with live.client("CRI", "PAN") as client:
        client.call(PING, node_pb2.PingRequest(), node_pb2.PingResponse)
        refused(client, Sealed(b"hello", b"", b""), route=PING)
    home = str(live.federation.homes["PAN"].root)
    shown = CliRunner().invoke(app, ["audit", "show", "--home", home, "--json"])
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.output)
    assert [r["header_parses"] for r in rows[-2:]] == [True, False]
    assert rows[-1]["status"] == "INVALID_ARGUMENT"
    last = CliRunner().invoke(app, ["audit", "show", "--home", home, "--json", "--limit", "1"])
    assert [r["seq"] for r in json.loads(last.output)] == [rows[-1]["seq"]]


def well_formed_answer_header() -> bytes:
    """A well-formed response header from PAN to CRI (its values need not verify)."""
    return Header(
        kind="response",
        method=PING,
        sender="PAN",
        recipient="CRI",
        issued_at="2026-11-29T12:00:00.000Z",
        nonce="00" * 16,
        key_id="0" * 16,
        body_sha256=sha256_hex(b""),
        status="OK",
    ).encode()


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"[" * 2000 + b"]" * 2000, id="deep-nesting"),
        pytest.param(
            json.dumps(
                {**json.loads(well_formed_answer_header()), "purpose": "\ud800"},
                sort_keys=True,
                separators=(",", ":"),
            ).encode(),
            id="lone-surrogate",
        ),
        pytest.param(b"\xff\xfe", id="not-utf8"),
    ],
)
def test_a_malformed_answer_is_a_peer_error_and_audited(live, header: bytes) -> None:  # type: ignore[no-untyped-def]
    """An impostor holding PAN's TLS key answers with a header that does not parse."""

    def answer(request: bytes, context: grpc.ServicerContext) -> bytes:
        return envelope_pb2.Envelope(header=header, signature=b"\x00" * 64).SerializeToString()

    keys = live.federation.homes["PAN"].keys
    credentials = grpc.ssl_server_credentials(
        [(keys.tls_key.read_bytes(), keys.tls_certificate.read_bytes())],
        root_certificates=live.federation.homes["CRI"].keys.tls_certificate.read_bytes(),
        require_client_auth=True,
    )
    impostor = grpc.server(futures.ThreadPoolExecutor(2))
    impostor.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "enlace.v1.NodeService", {"Ping": grpc.unary_unary_rpc_method_handler(answer)}
            ),
        )
    )
    port = free_port()
    impostor.add_secure_port(f"127.0.0.1:{port}", credentials)
    impostor.start()
    cri = live.runtimes["CRI"]
    before = cri.store.audit_count()
    try:
        with PeerClient(cri, "PAN", endpoint=f"127.0.0.1:{port}") as client:
            error = refused(client, client.seal_request(PING, ping_body()))
    finally:
        impostor.stop(grace=None)
    assert error.status_name == "UNAUTHENTICATED"
    assert "does not verify" in error.message
    assert cri.store.audit_count() == before + 1
    entry = list(cri.store.iter_audit())[-1]
    assert (entry.record.direction, entry.record.status) == ("outbound", "UNAUTHENTICATED")
