"""The audit chain and its checkpoints: a real chain of signed exchanges, then every attack."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto.errors import VerificationError
from crypto.signing import SigningKey, verify
from node.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditRecord,
    Checkpoint,
    chain_next,
    checkpoint_due,
    checkpoint_from_dict,
    checkpoint_to_dict,
    compute_entry_hash,
    entry_from_bytes,
    entry_to_bytes,
    make_checkpoint,
    record_from_dict,
    record_to_dict,
    verify_chain,
    verify_chain_with_checkpoints,
    verify_checkpoint,
)
from node.errors import AuditIntegrityError, InvalidArgumentError

NODE = "GTM"
PEERS = ("MEX", "HND", "SLV")
KEYS = {c: SigningKey(hashlib.sha256(b"test key " + c.encode()).digest()) for c in (NODE, *PEERS)}
T0 = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)
N = 50


def rfc3339_ms(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def exchange_record(i: int) -> AuditRecord:
    """Exchange ``i`` seen by GTM: inbound and outbound in turn, some denied, some unanswered."""
    peer = PEERS[i % len(PEERS)]
    direction = "inbound" if i % 2 else "outbound"
    requester, responder = (peer, NODE) if direction == "inbound" else (NODE, peer)
    at = T0 + timedelta(seconds=37 * i, microseconds=123_457 * i)
    method = "/enlace.v1.Stats/Query" if i % 3 else "/enlace.v1.Match/Evaluate"
    request = canonical(
        {
            "v": "enlace/1",
            "kind": "request",
            "method": method,
            "sender": requester,
            "recipient": responder,
            "issued_at": rfc3339_ms(at),
            "nonce": hashlib.sha256(f"nonce {i}".encode()).hexdigest()[:32],
            "agreement": f"GTM-{peer}-2025",
            "agreement_hash": hashlib.sha256(peer.encode()).hexdigest(),
            "purpose": "statistics",
            "key_id": KEYS[requester].key_id,
            "body_sha256": hashlib.sha256(f"body {i}".encode()).hexdigest(),
        }
    )
    request_sig = KEYS[requester].sign(b"enlace/1 request", request)
    digest = hashlib.sha256(request).hexdigest()
    denied = i % 7 == 0
    status = "PERMISSION_DENIED" if denied else "OK"
    common = {
        "at": at + timedelta(milliseconds=40),
        "direction": direction,
        "peer": peer,
        "method": method,
        "request_header": request,
        "request_signature": request_sig,
        "request_digest": digest,
        "decision": "denied" if denied else "allowed",
        "reason": "no grant for dataset encounters" if denied else "",
        "agreement_id": f"GTM-{peer}-2025",
        "agreement_hash": hashlib.sha256(peer.encode()).hexdigest(),
        "extra": {"elements": i * 3, "dataset": "encounters"},
    }
    if i % 11 == 5:  # transport failure: nothing signed came back
        return AuditRecord(status="UNAVAILABLE", **common)  # type: ignore[arg-type]
    response = canonical(
        {
            "v": "enlace/1",
            "kind": "response",
            "method": method,
            "sender": responder,
            "recipient": requester,
            "issued_at": rfc3339_ms(at + timedelta(milliseconds=30)),
            "nonce": hashlib.sha256(f"rnonce {i}".encode()).hexdigest()[:32],
            "key_id": KEYS[responder].key_id,
            "body_sha256": hashlib.sha256(f"answer {i}".encode()).hexdigest(),
            "request_digest": digest,
            "status": status,
        }
    )
    return AuditRecord(
        status=status,
        response_header=response,
        response_signature=KEYS[responder].sign(b"enlace/1 response", response),
        response_digest=hashlib.sha256(response).hexdigest(),
        **common,  # type: ignore[arg-type]
    )


def build_chain(n: int = N) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    for i in range(1, n + 1):
        entries.append(chain_next(entries[-1] if entries else None, exchange_record(i)))
    return entries


def resolve_key(country: str, kid: str, at: datetime) -> bytes:
    key = KEYS.get(country)
    if key is None or key.key_id != kid:
        raise LookupError(f"{country} has no key {kid}")
    return key.public_key


def checkpoints_every(entries: list[AuditEntry], step: int) -> list[Checkpoint]:
    return [
        make_checkpoint(e, NODE, KEYS[NODE], e.record.at + timedelta(seconds=1))
        for e in entries
        if e.seq % step == 0
    ]


def rechain(entries: list[AuditEntry], start: int) -> list[AuditEntry]:
    """What an insider with write access does: recompute every hash from index ``start`` on."""
    out = entries[:start]
    for e in entries[start:]:
        out.append(chain_next(out[-1] if out else None, e.record))
    return out


@pytest.fixture(scope="module")
def chain() -> list[AuditEntry]:
    return build_chain()


# --------------------------------------------------------------------------- valid chains


def test_real_chain_verifies(chain: list[AuditEntry]) -> None:
    summary = verify_chain(chain)
    assert (summary.count, summary.first_seq, summary.last_seq) == (N, 1, N)
    assert summary.head_hash == chain[-1].entry_hash
    assert chain[0].prev_hash == GENESIS_HASH
    assert [e.seq for e in chain] == list(range(1, N + 1))
    assert len({e.entry_hash for e in chain}) == N
    for e in chain:  # the log holds the signed bytes themselves, still verifiable
        requester = e.record.peer if e.record.direction == "inbound" else NODE
        public_key = KEYS[requester].public_key
        verify(public_key, b"enlace/1 request", e.record.request_header, e.record.request_signature)


def test_verification_streams_from_a_generator(chain: list[AuditEntry]) -> None:
    assert verify_chain(e for e in chain).count == N


def test_empty_chain_and_segments(chain: list[AuditEntry]) -> None:
    empty = verify_chain([])
    assert (empty.count, empty.head_hash) == (0, GENESIS_HASH)
    segment = verify_chain(chain[20:35], start_prev_hash=chain[19].entry_hash, start_seq=21)
    assert (segment.first_seq, segment.last_seq, segment.head_hash) == (
        21,
        35,
        chain[34].entry_hash,
    )
    with pytest.raises(AuditIntegrityError, match="broken link") as info:
        verify_chain(chain[20:35], start_prev_hash=chain[18].entry_hash, start_seq=21)
    assert info.value.position == 21


def test_entry_hash_covers_every_field(chain: list[AuditEntry]) -> None:
    e = chain[3]
    assert compute_entry_hash(e.seq, e.prev_hash, e.record) == e.entry_hash
    assert compute_entry_hash(e.seq + 1, e.prev_hash, e.record) != e.entry_hash
    assert compute_entry_hash(e.seq, GENESIS_HASH, e.record) != e.entry_hash
    other_time = dataclasses.replace(e.record, at=e.record.at + timedelta(microseconds=1))
    assert compute_entry_hash(e.seq, e.prev_hash, other_time) != e.entry_hash


def test_serialisation_round_trips(chain: list[AuditEntry]) -> None:
    for e in chain:
        assert entry_from_bytes(entry_to_bytes(e)) == e
        assert record_from_dict(json.loads(json.dumps(record_to_dict(e.record)))) == e.record
    assert b"answer" not in b"".join(entry_to_bytes(e) for e in chain)  # bodies never logged


def test_same_instant_in_another_zone_is_the_same_record(chain: list[AuditEntry]) -> None:
    r = chain[0].record
    elsewhere = dataclasses.replace(r, at=r.at.astimezone(timezone(timedelta(hours=-6))))
    assert elsewhere == r and compute_entry_hash(1, GENESIS_HASH, elsewhere) == chain[0].entry_hash


# --------------------------------------------------------------------------- record validation


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"direction": "sideways"}, "direction"),
        ({"peer": "Mex"}, "peer"),
        ({"method": "Query"}, "method"),
        ({"decision": "maybe"}, "decision"),
        ({"status": "ok"}, "status"),
        ({"at": datetime(2025, 1, 1)}, "at"),  # naive: refused
        ({"request_digest": "0" * 64}, "request_digest"),
        ({"response_digest": "0" * 64}, "response_digest"),
        ({"extra": {"n": True}}, "extra.n"),
        ({"extra": {"n": 1.5}}, "extra.n"),
        ({"extra": {"n": 2**60}}, "extra.n"),
        ({"extra": {"": 1}}, "extra"),
        ({"reason": "\ud800"}, "reason"),
    ],
)
def test_record_rejects_malformed_fields(
    chain: list[AuditEntry], change: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        dataclasses.replace(chain[1].record, **change)  # type: ignore[arg-type]
    assert info.value.field == field


def test_unanswered_record_has_no_response_fields(chain: list[AuditEntry]) -> None:
    unanswered = chain[4].record  # exchange 5: transport failure
    assert unanswered.response_header == b"" and unanswered.response_digest == ""
    with pytest.raises(InvalidArgumentError):
        dataclasses.replace(unanswered, response_signature=b"x" * 64)


def test_extra_is_frozen(chain: list[AuditEntry]) -> None:
    with pytest.raises(TypeError):
        chain[0].record.extra["elements"] = 0  # type: ignore[index]


# --------------------------------------------------------------------------- attacks on the chain


@pytest.mark.parametrize("k", [1, 17, N])
@pytest.mark.parametrize(
    "change",
    [
        {"decision": "allowed", "status": "OK", "reason": ""},
        {"peer": "BLZ"},
        {"extra": {"elements": 10_000, "dataset": "encounters"}},
        {"at": T0 - timedelta(days=1)},
    ],
)
def test_edited_entry_is_found(chain: list[AuditEntry], k: int, change: dict[str, object]) -> None:
    edited = list(chain)
    record = dataclasses.replace(chain[k - 1].record, **change)  # type: ignore[arg-type]
    if record == chain[k - 1].record:
        record = dataclasses.replace(record, reason="rewritten")
    edited[k - 1] = dataclasses.replace(chain[k - 1], record=record)
    with pytest.raises(AuditIntegrityError, match=f"audit entry {k}: edited") as info:
        verify_chain(edited)
    assert info.value.position == k


def test_edited_seq_is_found_where_it_stands(chain: list[AuditEntry]) -> None:
    edited = list(chain)
    edited[9] = dataclasses.replace(chain[9], seq=99)
    with pytest.raises(AuditIntegrityError, match=r"edited.*claims seq 99") as info:
        verify_chain(edited)
    assert info.value.position == 10


def test_edit_with_recomputed_hash_breaks_the_next_link(chain: list[AuditEntry]) -> None:
    edited = list(chain)
    record = dataclasses.replace(chain[11].record, reason="approved by the duty officer")
    assert record != chain[11].record
    edited[11] = chain_next(chain[10], record)
    with pytest.raises(AuditIntegrityError, match="audit entry 13: broken link") as info:
        verify_chain(edited)
    assert info.value.position == 13


@pytest.mark.parametrize("k", [1, 2, 17, N - 1])
def test_deleted_entry_is_found(chain: list[AuditEntry], k: int) -> None:
    remaining = chain[: k - 1] + chain[k:]
    with pytest.raises(AuditIntegrityError, match=f"audit entry {k}: missing") as info:
        verify_chain(remaining)
    assert info.value.position == k


def test_deleted_range_is_measured(chain: list[AuditEntry]) -> None:
    with pytest.raises(AuditIntegrityError, match=r"entries 10\.\.12 deleted \(3 in all\)") as info:
        verify_chain(chain[:9] + chain[12:])
    assert info.value.position == 10


@pytest.mark.parametrize(("i", "j"), [(3, 4), (5, 30), (1, N), (N - 1, N)])
def test_swapped_entries_are_found(chain: list[AuditEntry], i: int, j: int) -> None:
    swapped = list(chain)
    swapped[i - 1], swapped[j - 1] = chain[j - 1], chain[i - 1]
    with pytest.raises(AuditIntegrityError, match=f"audit entry {i}: out of order") as info:
        verify_chain(swapped)
    assert info.value.position == i


def test_entry_moved_to_the_end_is_reordering_not_deletion(chain: list[AuditEntry]) -> None:
    moved = chain[:7] + chain[8:] + [chain[7]]
    with pytest.raises(AuditIntegrityError, match="audit entry 8: out of order") as info:
        verify_chain(iter(moved))
    assert info.value.position == 8


def test_duplicated_entry_is_found(chain: list[AuditEntry]) -> None:
    with pytest.raises(AuditIntegrityError, match=r"audit entry 21: out of order.*again") as info:
        verify_chain([*chain[:20], chain[19], *chain[20:]])
    assert info.value.position == 21


def test_renumbered_chain_after_deletion_breaks_links(chain: list[AuditEntry]) -> None:
    renumbered = chain[:14] + [
        dataclasses.replace(
            e, seq=e.seq - 1, entry_hash=compute_entry_hash(e.seq - 1, e.prev_hash, e.record)
        )
        for e in chain[15:]
    ]
    with pytest.raises(AuditIntegrityError, match="audit entry 15: broken link") as info:
        verify_chain(renumbered)
    assert info.value.position == 15


def test_chain_not_from_genesis(chain: list[AuditEntry]) -> None:
    with pytest.raises(AuditIntegrityError, match="does not follow genesis") as info:
        verify_chain(
            dataclasses.replace(
                e, seq=e.seq - 5, entry_hash=compute_entry_hash(e.seq - 5, e.prev_hash, e.record)
            )
            for e in chain[5:8]
        )
    assert info.value.position == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_single_byte_change_is_detected(chain: list[AuditEntry], data: st.DataObject) -> None:
    k = data.draw(st.integers(1, N), label="entry")
    raw = entry_to_bytes(chain[k - 1])
    offset = data.draw(st.integers(0, len(raw) - 1), label="offset")
    value = data.draw(st.integers(0, 255).filter(lambda v: v != raw[offset]), label="byte")
    mutated = raw[:offset] + bytes([value]) + raw[offset + 1 :]
    with pytest.raises(AuditIntegrityError) as info:
        tampered = entry_from_bytes(mutated, position=k)
        verify_chain([*chain[: k - 1], tampered, *chain[k:]])
    assert info.value.position == k


# --------------------------------------------------------------------------- checkpoints


def test_chain_with_checkpoints_verifies(chain: list[AuditEntry]) -> None:
    cps = checkpoints_every(chain, 10)
    summary = verify_chain_with_checkpoints(chain, reversed(cps), resolve_key, node=NODE)
    assert (summary.count, summary.checkpoints) == (N, 5)
    later = verify_chain_with_checkpoints(
        chain[20:], cps, resolve_key, start_prev_hash=chain[19].entry_hash, start_seq=21
    )
    assert (later.count, later.checkpoints) == (N - 20, 4)  # 20 checked against the start hash


def test_checkpoint_round_trip_and_signature(chain: list[AuditEntry]) -> None:
    cp = checkpoints_every(chain, 25)[0]
    assert checkpoint_from_dict(json.loads(json.dumps(checkpoint_to_dict(cp)))) == cp
    verify_checkpoint(cp, KEYS[NODE].public_key)
    with pytest.raises(VerificationError):
        verify_checkpoint(cp, KEYS["MEX"].public_key)


@pytest.mark.parametrize(
    "forge",
    [
        lambda cp: dataclasses.replace(
            cp, signature=bytes([cp.signature[0] ^ 1]) + cp.signature[1:]
        ),
        lambda cp: dataclasses.replace(cp, entry_hash="ab" * 32),
        lambda cp: dataclasses.replace(cp, seq=cp.seq + 1),
        lambda cp: dataclasses.replace(cp, at=cp.at + timedelta(days=1)),
        lambda cp: dataclasses.replace(cp, node="MEX"),
    ],
)
def test_forged_checkpoint_is_refused(chain: list[AuditEntry], forge: object) -> None:
    cps = checkpoints_every(chain, 10)
    forged = forge(cps[1])  # type: ignore[operator]
    with pytest.raises(VerificationError):
        verify_checkpoint(forged, resolve_key(NODE, forged.key_id, forged.at))
    with pytest.raises(AuditIntegrityError, match="bad checkpoint") as info:
        verify_chain_with_checkpoints(chain, [cps[0], forged, *cps[2:]], resolve_key)
    assert info.value.position == forged.seq


def test_checkpoint_signed_by_another_node_key(chain: list[AuditEntry]) -> None:
    impostor = make_checkpoint(chain[9], NODE, KEYS["MEX"], T0)  # MEX key claiming to be GTM
    with pytest.raises(AuditIntegrityError, match=r"bad checkpoint.*not valid") as info:
        verify_chain_with_checkpoints(chain, [impostor], resolve_key)
    assert info.value.position == 10
    with pytest.raises(AuditIntegrityError, match="made by MEX"):
        verify_chain_with_checkpoints(
            chain, [make_checkpoint(chain[9], "MEX", KEYS["MEX"], T0)], resolve_key, node=NODE
        )


@pytest.mark.parametrize("keep", [0, 33, 39])
def test_truncation_before_a_checkpoint_is_found(chain: list[AuditEntry], keep: int) -> None:
    cps = checkpoints_every(chain, 10)
    with pytest.raises(AuditIntegrityError, match=f"audit entry {keep + 1}: truncated") as info:
        verify_chain_with_checkpoints(chain[:keep], cps[:4], resolve_key)
    assert info.value.position == keep + 1
    assert verify_chain(chain[:keep]).count == keep  # the bare chain cannot tell


def test_truncation_after_the_last_checkpoint_goes_unseen(chain: list[AuditEntry]) -> None:
    """The documented limit: entries newer than the last checkpoint held elsewhere can vanish."""
    summary = verify_chain_with_checkpoints(
        chain[:45], checkpoints_every(chain, 10)[:4], resolve_key
    )
    assert (summary.last_seq, summary.checkpoints) == (45, 4)


def test_rewritten_history_is_caught_only_by_a_checkpoint(chain: list[AuditEntry]) -> None:
    cps = checkpoints_every(chain, 10)
    history = list(chain)
    original = chain[20].record  # exchange 21 was denied; the insider makes it look allowed
    assert original.decision == "denied"
    forged = dataclasses.replace(original, decision="allowed", status="OK", reason="")
    history[20] = dataclasses.replace(chain[20], record=forged)
    rewritten = rechain(history, 20)
    assert verify_chain(rewritten).count == N  # internally consistent
    with pytest.raises(AuditIntegrityError, match="audit entry 30: checkpoint mismatch") as info:
        verify_chain_with_checkpoints(rewritten, cps, resolve_key)
    assert info.value.position == 30
    # a segment is held to the checkpoint just before its start as well
    with pytest.raises(AuditIntegrityError, match="audit entry 20: checkpoint mismatch"):
        verify_chain_with_checkpoints(
            chain[20:], cps, resolve_key, start_prev_hash=chain[18].entry_hash, start_seq=21
        )


def test_checkpoint_due() -> None:
    chain = build_chain(12)
    first = make_checkpoint(chain[4], NODE, KEYS[NODE], T0)
    assert checkpoint_due(None, chain[0], T0)
    assert not checkpoint_due(None, None, T0)
    assert not checkpoint_due(first, chain[4], T0 + timedelta(days=9))  # nothing new
    assert not checkpoint_due(first, chain[11], T0 + timedelta(minutes=5), every_entries=10)
    assert checkpoint_due(first, chain[11], T0 + timedelta(minutes=5), every_entries=7)
    assert checkpoint_due(first, chain[5], T0 + timedelta(hours=1))


def test_checkpoint_rejects_malformed_fields(chain: list[AuditEntry]) -> None:
    cp = make_checkpoint(chain[0], NODE, KEYS[NODE], T0)
    for change, field in [
        ({"seq": 0}, "seq"),
        ({"node": "gt"}, "node"),
        ({"entry_hash": "x"}, "entry_hash"),
        ({"at": datetime(2025, 1, 1)}, "at"),
    ]:
        with pytest.raises(InvalidArgumentError) as info:
            dataclasses.replace(cp, **change)  # type: ignore[arg-type]
        assert info.value.field == field
