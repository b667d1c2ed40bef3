"""Rotating a node's signing key and TLS certificate through a directory update, with calls
flowing the whole time: no call fails, the overlap accepts both, and afterwards only the new.

Both nodes share one manual clock, so time moves for the federation at once (a skew between
them is a different test); the clock jumps hours at a time, so it moves only between calls
(a call spanning a jump would be refused for skew, as it should be). Key material is real;
servers are real mTLS gRPC on loopback.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import threading
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from crypto.keys import certificate_fingerprint, tls_server_name
from enlace.v1 import node_pb2
from node.clock import ManualClock
from node.errors import PeerError
from node.ops.rotation import (
    apply_due_rotations,
    log_expiry_alarms,
    pending_tls,
    rotate_signing_key,
    rotate_tls,
)
from node.trust.authoring import new_directory, sign_directory
from node.trust.directory import Directory
from node.trust.member import DirectoryFormatError, MemberDescriptor

PING = "/enlace.v1.NodeService/Ping"


def republish(live, version: int) -> Directory:  # type: ignore[no-untyped-def]
    """The administrators' step: next version with every member's current member.json."""
    current = live.federation.directory
    members = [home.member() for home in live.federation.homes.values()]
    now = live.runtimes["PAN"].clock.now()
    candidate = new_directory(
        version=version,
        issued_at=now,
        expires_at=now + dt.timedelta(days=90),
        threshold=current.threshold,
        directory_keys=current.directory_keys,
        members=members,
    )
    for key in live.federation.directory_keys[: current.threshold]:
        candidate = sign_directory(candidate, key)
    for runtime in live.runtimes.values():
        assert runtime.directory.offer(candidate, now)
    return candidate


@pytest.fixture
def pair(live_federation_factory):  # type: ignore[no-untyped-def]
    live = live_federation_factory(("PAN", "CRI"))
    clock = ManualClock(live.runtimes["PAN"].clock.now())
    for runtime in live.runtimes.values():
        runtime.clock = clock
    live.serve("PAN")
    live.serve("CRI")
    live.clock = clock
    live.time_lock = threading.Lock()
    return live


def advance(live, delta: dt.timedelta) -> None:  # type: ignore[no-untyped-def]
    with live.time_lock:
        live.clock.advance(delta)


class Caller:
    """Calls ``callee`` from ``caller`` in a loop (fresh client each time) and counts."""

    def __init__(self, live, caller: str, callee: str) -> None:  # type: ignore[no-untyped-def]
        self.live, self.caller, self.callee = live, caller, callee
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self.live.time_lock:
                try:
                    with self.live.client(self.caller, self.callee) as client:
                        client.call(PING, node_pb2.PingRequest(), node_pb2.PingResponse)
                    self.ok += 1
                except PeerError as exc:
                    self.failures.append(str(exc))

    def __enter__(self) -> Caller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture
def traffic(pair) -> Iterator[list[Caller]]:  # type: ignore[no-untyped-def]
    callers = [Caller(pair, "CRI", "PAN"), Caller(pair, "PAN", "CRI")]
    with callers[0], callers[1]:
        yield callers


def ping(live, caller: str, callee: str, runtime=None):  # type: ignore[no-untyped-def]
    from node.client import PeerClient

    with PeerClient(runtime or live.runtimes[caller], callee, timeout=5) as client:
        return client.call(PING, node_pb2.PingRequest(), node_pb2.PingResponse)


def test_signing_key_rotation_without_a_failed_request(pair, traffic) -> None:  # type: ignore[no-untyped-def]
    pan = pair.runtimes["PAN"]
    old = pan.signing_key
    rotation = rotate_signing_key(
        pan.home,
        pair.clock.now(),
        activate_after=dt.timedelta(hours=1),
        retire_after=dt.timedelta(days=1),
    )
    assert apply_due_rotations(pan) == []  # not listed by any directory yet
    advance(pair, dt.timedelta(hours=2))
    assert apply_due_rotations(pan) == []  # due, but peers could not verify it: keep the old
    assert pan.signing_key == old
    republish(pair, 2)
    assert apply_due_rotations(pan) == [f"signing with key {rotation.new_key_id}"]
    assert pan.signing_key.key_id == rotation.new_key_id
    assert pan.home.keys.load_signing_key().key_id == rotation.new_key_id  # promoted on disk
    assert ping(pair, "CRI", "PAN").header.key_id == rotation.new_key_id
    # Overlap: a request still signed with the old key (a replica that has not switched yet).
    lagging = dataclasses.replace(pan, signing_key=old)
    assert ping(pair, "PAN", "CRI", lagging).message.server_time
    advance(pair, dt.timedelta(days=1, minutes=1))  # past the old key's not_after
    with pytest.raises(PeerError) as refused:
        ping(pair, "PAN", "CRI", lagging)
    assert refused.value.status_name == "UNAUTHENTICATED"
    assert ping(pair, "PAN", "CRI").message.server_time
    for caller in traffic:
        assert caller.failures == [] and caller.ok > 0


def test_a_second_rotation_waits_for_the_first(pair) -> None:  # type: ignore[no-untyped-def]
    home = pair.runtimes["PAN"].home
    rotate_signing_key(home, pair.clock.now())
    with pytest.raises(Exception, match="already waiting to activate"):
        rotate_signing_key(home, pair.clock.now())


def _health(endpoint: str, roots: bytes, client_key: bytes, client_cert: bytes) -> bool:
    credentials = grpc.ssl_channel_credentials(roots, client_key, client_cert)
    options = [("grpc.ssl_target_name_override", tls_server_name("PAN"))]
    with grpc.secure_channel(endpoint, credentials, options=options) as channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
        except grpc.RpcError:
            return False
    return True


def test_tls_rotation_without_a_failed_request(pair, traffic) -> None:  # type: ignore[no-untyped-def]
    pan = pair.runtimes["PAN"]
    keys = pan.home.keys
    old_key, old_cert = keys.load_tls()
    pending = rotate_tls(pan.home, pair.clock.now(), activate_after=dt.timedelta(hours=1))
    new_cert = pending.cert_path.read_bytes()
    new_key = pending.key_path.read_bytes()
    member = pan.home.member()
    assert member.tls_fingerprints == (certificate_fingerprint(old_cert), pending.fingerprint)
    republish(pair, 2)  # both certificates pinned for PAN
    assert apply_due_rotations(pan) == []  # not yet time
    endpoint = pair.federation.endpoint("PAN")
    cri_key, cri_cert = pair.runtimes["CRI"].home.keys.load_tls()
    assert _health(endpoint, old_cert, cri_key, cri_cert)
    assert not _health(endpoint, new_cert, cri_key, cri_cert)

    advance(pair, dt.timedelta(hours=2))
    assert apply_due_rotations(pan) == [f"serving TLS certificate {pending.fingerprint}"]
    assert keys.load_tls() == (new_key, new_cert) and pending_tls(pan.home) is None
    assert _health(endpoint, new_cert, cri_key, cri_cert)  # reloaded without a restart
    assert not _health(endpoint, old_cert, cri_key, cri_cert)
    assert ping(pair, "PAN", "CRI").message.server_time  # CRI accepts PAN's new client cert
    assert pan.home.member().tls_fingerprints == (pending.fingerprint,)

    republish(pair, 3)  # the administrators drop the old certificate
    stale = dataclasses.replace(pan, home=_home_with_tls(pan.home, old_key, old_cert))
    with pytest.raises(PeerError):
        ping(pair, "PAN", "CRI", stale)
    for caller in traffic:
        assert caller.failures == [] and caller.ok > 0


def _home_with_tls(home, key_pem: bytes, cert_pem: bytes):  # type: ignore[no-untyped-def]
    """A copy of the home presenting the old certificate (an attacker with the retired key)."""
    import shutil

    from node.home import NodeHome

    copy = home.root.parent / "pan-old-tls"
    shutil.copytree(home.root, copy)
    (copy / "keys" / "tls.key").write_bytes(key_pem)
    (copy / "tls.crt").write_bytes(cert_pem)
    return NodeHome(copy)


def test_rollover_certificate_in_the_descriptor(pair) -> None:  # type: ignore[no-untyped-def]
    pan = pair.runtimes["PAN"]
    plain = pan.home.member()
    assert "tls_rollover_certificate" not in plain.to_dict()  # old documents keep their bytes
    rotate_tls(pan.home, pair.clock.now())
    data = json.loads(pan.home.member_path.read_text())
    assert (
        MemberDescriptor.from_dict(data).tls_rollover_fingerprint
        == data["tls_rollover_fingerprint"]
    )
    lone = {k: v for k, v in data.items() if k != "tls_rollover_fingerprint"}
    with pytest.raises(DirectoryFormatError, match="tls_rollover_fingerprint"):
        MemberDescriptor.from_dict(lone)
    same = {**data, "tls_rollover_certificate": data["tls_certificate"]}
    same["tls_rollover_fingerprint"] = data["tls_fingerprint"]
    with pytest.raises(DirectoryFormatError, match="main certificate"):
        MemberDescriptor.from_dict(same)
    wrong = {**data, "tls_rollover_fingerprint": data["tls_fingerprint"]}
    with pytest.raises(DirectoryFormatError, match="does not match"):
        MemberDescriptor.from_dict(wrong)


def test_expiry_alarms_warn_well_before(pair, caplog) -> None:  # type: ignore[no-untyped-def]
    pan = pair.runtimes["PAN"]
    assert log_expiry_alarms(pan) == []
    advance(pair, dt.timedelta(days=80))  # directory (90 days) within its 14-day warning
    with caplog.at_level(logging.WARNING, logger="node.rotation"):
        due = log_expiry_alarms(pan)
    assert [(d.kind, d.subject) for d in due] == [("directory", "v1")]
    assert "expires at" in caplog.text
    advance(pair, dt.timedelta(days=260))  # certificates (365 days) within 30 days
    kinds = {d.kind for d in log_expiry_alarms(pan)}
    assert {"tls_certificate", "peer_tls_certificate", "directory"} <= kinds


def test_history_signed_with_retired_keys_verifies_after_two_rotations(
    pair, tmp_path, restore_target
) -> None:  # type: ignore[no-untyped-def]
    """Checkpoints and evidence signed with a key retired two rotations ago still verify: in
    the log, in exported evidence (directory alone) and in a restored backup; the retired key
    itself is refused for anything new."""
    from typer.testing import CliRunner

    from node.cli.audit_cmd import verify_log
    from node.cli.main import app
    from node.ops.backup import backup_node, restore_node
    from node.server.jobs import write_checkpoint

    pan = pair.runtimes["PAN"]
    first = pan.signing_key
    assert ping(pair, "CRI", "PAN").header.key_id == first.key_id  # entry 1, answered with K1
    assert write_checkpoint(pan) == 1
    for version in (2, 3):
        rotate_signing_key(
            pan.home,
            pair.clock.now(),
            activate_after=dt.timedelta(hours=1),
            retire_after=dt.timedelta(days=1),
        )
        republish(pair, version)
        advance(pair, dt.timedelta(hours=2))
        assert apply_due_rotations(pan)
        advance(pair, dt.timedelta(days=2))  # past the previous key's not_after
        ping(pair, "CRI", "PAN")
        write_checkpoint(pan)
    listed = {k.key_id: k for k in pan.directory.peek().member("PAN").signing_keys}
    assert len(listed) == 3 and not listed[first.key_id].valid_at(pair.clock.now())
    assert verify_log(pan) == {**verify_log(pan), "checkpoints": 3, "status": "ok"}

    home, evidence = str(pan.home.root), tmp_path / "evidence.json"
    exported = CliRunner().invoke(app, ["audit", "export", "--home", home, "1", "--out", evidence])
    assert exported.exit_code == 0, exported.output
    directory = str(pan.home.directory_path)
    checked = CliRunner().invoke(
        app, ["audit", "check-evidence", str(evidence), "--directory", directory, "--json"]
    )
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.output)["checkpoint_key_id"] == first.key_id

    archive = tmp_path / "pan.tar.gz"
    manifest = backup_node(pan.home, archive, pair.clock.now())
    url = restore_target(manifest.schema)
    report = restore_node(archive, tmp_path / "restored", database_url=url, clock=pair.clock)
    assert (report.audit_entries, report.checkpoints) == (3, 3)

    lagging = dataclasses.replace(pan, signing_key=first)
    with pytest.raises(PeerError) as refused:
        ping(pair, "PAN", "CRI", lagging)
    assert refused.value.status_name == "UNAUTHENTICATED"


def test_an_agreement_signed_with_a_retiring_key_is_flagged_then_named_not_fatal(pair) -> None:  # type: ignore[no-untyped-def]
    """PAN rotates its signing key. While the old key is still listed, the doctor says which
    agreement must be re-signed; once it retired, that agreement is refused by name with the
    way to re-sign it — the directory's lookup error used to escape the agreement checks and
    stop every agreement, status and decision of the node. Re-signed, it is in force again."""
    from match_support import install, match_agreement

    from node.agreements import AgreementBook
    from node.ops.doctor import FAIL, OK, WARN, run_checks
    from policies.decision import Request
    from policies.errors import Denied
    from policies.signatures import dump_signed_agreement, load_signed_agreement, sign_agreement

    pan, cri = pair.runtimes["PAN"], pair.runtimes["CRI"]
    install(pair.runtimes, match_agreement("PAN", "CRI", pair.clock.now()), pair.clock.now())
    request = Request("CRI", "PAN", "match", "travel_documents", "identity_verification")

    def signatures_check(runtime):  # type: ignore[no-untyped-def]
        checks = {c.name: c for c in run_checks(runtime, peers=False)}
        return checks["agreement-signatures"]

    assert signatures_check(pan).status == OK
    rotation = rotate_signing_key(
        pan.home, pair.clock.now(), activate_after=dt.timedelta(hours=1),
        retire_after=dt.timedelta(days=2),
    )  # fmt: skip
    advance(pair, dt.timedelta(hours=2))
    republish(pair, 2)
    assert apply_due_rotations(pan) == [f"signing with key {rotation.new_key_id}"]
    mine, theirs = signatures_check(pan), signatures_check(cri)
    assert mine.status == WARN and "this node's signature key" in mine.detail
    assert "re-sign with the node's current key" in mine.fix
    assert theirs.status == WARN and "PAN's signature key" in theirs.detail
    assert "ask the other party" in theirs.fix

    advance(pair, dt.timedelta(days=2, hours=1))  # past the old key's not_after
    now = pair.clock.now()
    book = AgreementBook(cri)
    with pytest.raises(Denied) as refused:
        book.decide(request, now)
    assert "no longer verify" in str(refused.value) and "re-sign" in refused.value.hint
    (status,) = book.status(now)
    assert "no longer verify" in status.state
    explained = book.current(now).explain(request, now)  # what `policy explain` prints
    assert not explained.allowed
    assert any("no longer verify" in r.message for r in explained.reasons), explained
    assert signatures_check(cri).status == FAIL

    stored = cri.store.policies.agreements()[0].document
    resigned = sign_agreement(load_signed_agreement(stored), "PAN", pan.signing_key)
    for runtime in (pan, cri):
        AgreementBook(runtime).install_text(dump_signed_agreement(resigned), now)
    assert AgreementBook(cri).decide(request, now).allowed
    assert signatures_check(cri).status == OK
