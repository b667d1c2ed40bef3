"""Evidence for one exchange, checked as a third party would: with directory keys only."""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crypto.envelope import Header, format_time, seal
from crypto.signing import SigningKey
from node.audit import (
    AuditEntry,
    AuditRecord,
    Checkpoint,
    build_evidence,
    chain_next,
    covering_checkpoint,
    make_checkpoint,
    record_digest,
    verify_evidence,
)
from node.errors import AuditIntegrityError

COUNTRIES = ("GTM", "MEX", "HND")
KEYS = {c: SigningKey(hashlib.sha256(b"evidence key " + c.encode()).digest()) for c in COUNTRIES}
T0 = datetime(2025, 6, 2, 9, 30, tzinfo=UTC)
METHOD = "/enlace.v1.Match/Evaluate"


@dataclasses.dataclass(frozen=True)
class Exchange:
    requester: str
    responder: str
    request: bytes
    request_signature: bytes
    response: bytes = b""
    response_signature: bytes = b""
    status: str = "OK"


def header_bytes(fields: dict[str, object]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def exchange(
    i: int, requester: str, responder: str, *, status: str = "OK", answers: bytes | None = None
) -> Exchange:
    """A real signed exchange; ``answers`` lets a response bind some other request's bytes."""
    at = T0 + timedelta(minutes=i)
    request = header_bytes(
        {
            "v": "enlace/1",
            "kind": "request",
            "method": METHOD,
            "sender": requester,
            "recipient": responder,
            "issued_at": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "nonce": f"{i:032x}",
            "agreement": f"{requester}-{responder}-7",
            "agreement_hash": hashlib.sha256(b"agreement").hexdigest(),
            "purpose": "identity check",
            "key_id": KEYS[requester].key_id,
            "body_sha256": hashlib.sha256(f"blinded elements {i}".encode()).hexdigest(),
        }
    )
    response = header_bytes(
        {
            "v": "enlace/1",
            "kind": "response",
            "method": METHOD,
            "sender": responder,
            "recipient": requester,
            "issued_at": (at + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.250Z"),
            "nonce": f"{i + 10_000:032x}",
            "key_id": KEYS[responder].key_id,
            "body_sha256": hashlib.sha256(f"evaluated {i}".encode()).hexdigest(),
            "request_digest": hashlib.sha256(answers or request).hexdigest(),
            "status": status,
        }
    )
    return Exchange(
        requester,
        responder,
        request,
        KEYS[requester].sign(b"enlace/1 request", request),
        response,
        KEYS[responder].sign(b"enlace/1 response", response),
        status,
    )


def record(node: str, x: Exchange, i: int, **override: Any) -> AuditRecord:
    """What ``node`` (one of the two parties) logs for exchange ``x``."""
    inbound = node == x.responder
    fields: dict[str, Any] = {
        "at": T0 + timedelta(minutes=i, seconds=2),
        "direction": "inbound" if inbound else "outbound",
        "peer": x.requester if inbound else x.responder,
        "method": METHOD,
        "request_header": x.request,
        "request_signature": x.request_signature,
        "request_digest": hashlib.sha256(x.request).hexdigest(),
        "decision": "allowed" if x.status == "OK" else "denied",
        "status": x.status,
        "reason": "" if x.status == "OK" else "not granted",
        "agreement_id": f"{x.requester}-{x.responder}-7",
        "agreement_hash": hashlib.sha256(b"agreement").hexdigest(),
        "response_header": x.response,
        "response_signature": x.response_signature,
        "response_digest": hashlib.sha256(x.response).hexdigest() if x.response else "",
        "extra": {"elements": 16 + i},
    }
    fields.update(override)
    return AuditRecord(**fields)


def append(entries: list[AuditEntry], rec: AuditRecord) -> AuditEntry:
    entries.append(chain_next(entries[-1] if entries else None, rec))
    return entries[-1]


def gtm_log(n: int = 30) -> tuple[list[AuditEntry], list[Checkpoint], list[Exchange]]:
    """GTM's log of ``n`` exchanges with MEX and HND, checkpointed every 10 entries."""
    entries: list[AuditEntry] = []
    exchanges: list[Exchange] = []
    for i in range(1, n + 1):
        peer = "MEX" if i % 3 else "HND"
        pair = ("GTM", peer) if i % 2 else (peer, "GTM")
        x = exchange(i, *pair, status="PERMISSION_DENIED" if i % 5 == 0 else "OK")
        exchanges.append(x)
        append(entries, record("GTM", x, i))
    cps = [
        make_checkpoint(e, "GTM", KEYS["GTM"], T0 + timedelta(minutes=e.seq, seconds=30))
        for e in entries
        if e.seq % 10 == 0
    ]
    return entries, cps, exchanges


def evidence_for(entries: list[AuditEntry], cps: list[Checkpoint], seq: int) -> dict[str, Any]:
    cp = covering_checkpoint(cps, seq)
    assert cp is not None
    return build_evidence(entries[seq - 1], entries[seq - 1 : cp.seq], cp)


def directory(
    *, keys: dict[str, SigningKey] = KEYS, valid_until: datetime | None = None
) -> Callable[[str, str, datetime], bytes]:
    """A third party's key resolver over directory entries (country, key, validity)."""

    def resolve(country: str, kid: str, at: datetime) -> bytes:
        key = keys.get(country)
        if key is None or key.key_id != kid:
            raise LookupError(f"no key {kid} for {country}")
        if valid_until is not None and at >= valid_until:
            raise LookupError(f"key {kid} of {country} expired")
        return key.public_key

    return resolve


@pytest.fixture(scope="module")
def log() -> tuple[list[AuditEntry], list[Checkpoint], list[Exchange]]:
    return gtm_log()


# --------------------------------------------------------------------------- genuine evidence


def test_evidence_of_every_entry_verifies(log: tuple[Any, ...]) -> None:
    entries, cps, exchanges = log
    for e, x in zip(entries, exchanges, strict=True):
        evidence = json.loads(json.dumps(evidence_for(entries, cps, e.seq)))
        report = verify_evidence(evidence, directory())
        assert (report.seq, report.entry_hash, report.auditing_node) == (e.seq, e.entry_hash, "GTM")
        assert (report.requester, report.responder) == (x.requester, x.responder)
        assert report.request_digest == hashlib.sha256(x.request).hexdigest()
        assert report.response_digest == hashlib.sha256(x.response).hexdigest()
        assert report.response_key_id == KEYS[x.responder].key_id
        assert (report.decision, report.status) == (e.record.decision, x.status)
        assert report.checkpoint_seq == -(-e.seq // 10) * 10
        assert report.links == report.checkpoint_seq - e.seq


def test_evidence_discloses_no_other_exchange(log: tuple[Any, ...]) -> None:
    entries, cps, _ = log
    evidence = evidence_for(entries, cps, 11)
    text = json.dumps(evidence)
    for other in entries:
        if other.seq != 11:
            assert base64.b64encode(other.record.request_header).decode() not in text
    assert [set(link) for link in evidence["links"]] == [{"seq", "record_sha256", "entry_hash"}] * 9
    assert evidence["links"][0]["record_sha256"] == record_digest(entries[11].record)


def test_both_sides_hold_verifiable_evidence_of_the_same_exchange() -> None:
    x = exchange(1, "MEX", "GTM")
    gtm: list[AuditEntry] = []
    mex: list[AuditEntry] = []
    g = append(gtm, record("GTM", x, 1))
    m = append(mex, record("MEX", x, 1))
    for node, e in (("GTM", g), ("MEX", m)):
        cp = make_checkpoint(e, node, KEYS[node], T0 + timedelta(hours=1))
        report = verify_evidence(build_evidence(e, [e], cp), directory())
        assert (report.auditing_node, report.links) == (node, 0)
        assert report.direction == ("inbound" if node == "GTM" else "outbound")
        assert report.request_digest == hashlib.sha256(x.request).hexdigest()


def test_evidence_of_envelopes_sealed_by_the_protocol_code() -> None:
    """Headers made by :mod:`crypto.envelope`, as the node sends them, verify as evidence."""
    body, answer = b"blinded elements", b"evaluated elements"
    request = seal(
        Header(
            kind="request",
            method=METHOD,
            sender="HND",
            recipient="GTM",
            issued_at=format_time(T0),
            nonce="ab" * 16,
            key_id=KEYS["HND"].key_id,
            body_sha256=hashlib.sha256(body).hexdigest(),
            agreement="GTM-HND-2",
            purpose="identity check",
        ),
        body,
        KEYS["HND"],
    )
    response = seal(
        Header(
            kind="response",
            method=METHOD,
            sender="GTM",
            recipient="HND",
            issued_at=format_time(T0 + timedelta(milliseconds=80)),
            nonce="cd" * 16,
            key_id=KEYS["GTM"].key_id,
            body_sha256=hashlib.sha256(answer).hexdigest(),
            request_digest=request.digest,
            status="OK",
        ),
        answer,
        KEYS["GTM"],
    )
    x = Exchange(
        "HND", "GTM", request.header, request.signature, response.header, response.signature
    )
    e = append([], record("GTM", x, 0))
    report = verify_evidence(
        build_evidence(e, [e], make_checkpoint(e, "GTM", KEYS["GTM"], T0)), directory()
    )
    assert (report.requester, report.responder, report.request_digest) == (
        "HND",
        "GTM",
        request.digest,
    )
    assert report.response_issued_at == T0 + timedelta(milliseconds=80)


def test_unanswered_exchange_verifies_on_the_request_alone() -> None:
    x = exchange(3, "GTM", "HND")
    e = append(
        [],
        record(
            "GTM",
            x,
            3,
            status="UNAVAILABLE",
            decision="allowed",
            response_header=b"",
            response_signature=b"",
            response_digest="",
        ),
    )
    report = verify_evidence(
        build_evidence(e, [e], make_checkpoint(e, "GTM", KEYS["GTM"], T0)), directory()
    )
    assert (report.response_digest, report.response_key_id, report.response_issued_at) == (
        "",
        "",
        None,
    )
    assert report.status == "UNAVAILABLE"


# --------------------------------------------------------------------------- tampering


def flip_b64(text: str, index: int = 10) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def set_header(ev: dict[str, Any], which: str, header_b64: str) -> None:
    rec = ev["entry"]["record"]
    rec[f"{which}_header"] = header_b64
    rec[f"{which}_digest"] = hashlib.sha256(base64.b64decode(header_b64)).hexdigest()


def _flip_request_byte(ev: dict[str, Any]) -> None:
    rec = ev["entry"]["record"]
    rec["request_header"] = flip_b64(rec["request_header"])


def _swap_signatures(ev: dict[str, Any]) -> None:
    rec = ev["entry"]["record"]
    rec["request_signature"], rec["response_signature"] = (
        rec["response_signature"],
        rec["request_signature"],
    )


TAMPERING: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("request byte", _flip_request_byte, "request_digest"),
    (
        "request byte, digest redone",
        lambda ev: set_header(ev, "request", flip_b64(ev["entry"]["record"]["request_header"], 60)),
        "request signature does not verify",
    ),
    (
        "response byte, digest redone",
        lambda ev: set_header(
            ev, "response", flip_b64(ev["entry"]["record"]["response_header"], 40)
        ),
        "response signature does not verify",
    ),
    ("signatures swapped", _swap_signatures, "request signature does not verify"),
    ("decision", lambda ev: ev["entry"]["record"].update(decision="denied"), "edited"),
    ("extra", lambda ev: ev["entry"]["record"]["extra"].update(elements=0), "edited"),
    ("reason", lambda ev: ev["entry"]["record"].update(reason="x"), "edited"),
    ("seq", lambda ev: ev["entry"].update(seq=ev["entry"]["seq"] + 1), "edited"),
    ("peer", lambda ev: ev["entry"]["record"].update(peer="HND"), "does not match"),
    ("direction", lambda ev: ev["entry"]["record"].update(direction="inbound"), "does not match"),
    ("link digest", lambda ev: ev["links"][2].update(record_sha256="0" * 64), "link 14"),
    ("link removed", lambda ev: ev["links"].pop(3), "link 15 is missing"),
    ("last link removed", lambda ev: ev["links"].pop(), "links end at entry 19"),
    (
        "checkpoint signature",
        lambda ev: ev["checkpoint"].update(signature=flip_b64(ev["checkpoint"]["signature"], 5)),
        "checkpoint of GTM at entry 20 does not verify",
    ),
    ("checkpoint hash", lambda ev: ev["checkpoint"].update(entry_hash="1" * 64), "links end"),
    ("format", lambda ev: ev.update(format="enlace-audit-evidence/0"), "not an enlace"),
]


@pytest.mark.parametrize(
    ("tamper", "expected"), [(t[1], t[2]) for t in TAMPERING], ids=[t[0] for t in TAMPERING]
)
def test_tampered_evidence_is_refused(
    log: tuple[Any, ...], tamper: Callable[[dict[str, Any]], None], expected: str
) -> None:
    entries, cps, exchanges = log
    assert exchanges[10].requester == "GTM" and exchanges[10].status == "OK"  # seq 11
    evidence = evidence_for(entries, cps, 11)
    verify_evidence(copy.deepcopy(evidence), directory())
    tamper(evidence)
    with pytest.raises(AuditIntegrityError, match=expected) as info:
        verify_evidence(evidence, directory())
    assert info.value.position == (0 if expected == "not an enlace" else evidence["entry"]["seq"])


def test_wrong_or_expired_keys_are_refused(log: tuple[Any, ...]) -> None:
    entries, cps, _ = log
    evidence = evidence_for(entries, cps, 11)  # GTM asked MEX
    impostor = SigningKey(hashlib.sha256(b"impostor").digest())
    with pytest.raises(AuditIntegrityError, match="response signature has no valid key"):
        verify_evidence(evidence, directory(keys={**KEYS, "MEX": impostor}))
    with pytest.raises(AuditIntegrityError, match="request signature has no valid key"):
        verify_evidence(evidence, directory(keys={**KEYS, "GTM": impostor}))
    with pytest.raises(AuditIntegrityError, match="request signature has no valid key"):
        verify_evidence(evidence, directory(valid_until=T0))

    def lying_directory(country: str, kid: str, at: datetime) -> bytes:
        return KEYS["HND"].public_key  # the right key_id, but another country's key

    with pytest.raises(AuditIntegrityError, match="request signature does not verify"):
        verify_evidence(evidence, lying_directory)


def test_checkpoint_by_a_key_outside_the_directory_is_refused(log: tuple[Any, ...]) -> None:
    entries, cps, _ = log
    rogue = SigningKey(hashlib.sha256(b"rogue GTM key").digest())
    forged = make_checkpoint(entries[19], "GTM", rogue, cps[1].at)
    evidence = build_evidence(entries[11], entries[11:20], forged)
    with pytest.raises(AuditIntegrityError, match="checkpoint of GTM at entry 20 does not verify"):
        verify_evidence(evidence, directory())
    stranger = make_checkpoint(entries[19], "HND", KEYS["HND"], cps[1].at)  # not a party's log
    with pytest.raises(AuditIntegrityError, match="logged by HND does not match"):
        verify_evidence(build_evidence(entries[11], entries[11:20], stranger), directory())


def test_response_to_another_request_is_refused() -> None:
    asked = exchange(1, "GTM", "MEX")
    other = exchange(2, "GTM", "MEX")
    spliced = exchange(1, "GTM", "MEX", answers=other.request)  # MEX signed, for another request
    e = append(
        [],
        record(
            "GTM",
            asked,
            1,
            response_header=spliced.response,
            response_signature=spliced.response_signature,
            response_digest=hashlib.sha256(spliced.response).hexdigest(),
        ),
    )
    cp = make_checkpoint(e, "GTM", KEYS["GTM"], T0)
    with pytest.raises(AuditIntegrityError, match="does not answer this request"):
        verify_evidence(build_evidence(e, [e], cp), directory())


def test_recorded_status_must_match_the_signed_response() -> None:
    x = exchange(4, "MEX", "GTM", status="PERMISSION_DENIED")
    e = append([], record("GTM", x, 4, status="OK", decision="allowed", reason=""))
    cp = make_checkpoint(e, "GTM", KEYS["GTM"], T0)
    with pytest.raises(AuditIntegrityError, match="record says OK but the response says"):
        verify_evidence(build_evidence(e, [e], cp), directory())


def test_request_with_a_bad_signature_is_logged_but_proves_nothing() -> None:
    x = exchange(5, "HND", "GTM", status="UNAUTHENTICATED")
    e = append([], record("GTM", x, 5, request_signature=b"\x00" * 64))
    cp = make_checkpoint(e, "GTM", KEYS["GTM"], T0)
    with pytest.raises(AuditIntegrityError, match="request signature does not verify"):
        verify_evidence(build_evidence(e, [e], cp), directory())


# --------------------------------------------------------------------------- export


def test_build_evidence_refuses_what_cannot_verify(log: tuple[Any, ...]) -> None:
    entries, cps, _ = log
    e, cp = entries[11], cps[1]
    with pytest.raises(AuditIntegrityError, match="start with the entry"):
        build_evidence(e, entries[12:20], cp)
    with pytest.raises(AuditIntegrityError, match="ends at entry 19"):
        build_evidence(e, entries[11:19], cp)
    with pytest.raises(AuditIntegrityError, match="audit entry 14: missing"):
        build_evidence(e, entries[11:13] + entries[14:20], cp)


def test_covering_checkpoint(log: tuple[Any, ...]) -> None:
    _, cps, _ = log
    assert [covering_checkpoint(cps, s).seq for s in (1, 10, 11, 30)] == [10, 10, 20, 30]  # type: ignore[union-attr]
    assert covering_checkpoint(cps, 31) is None
