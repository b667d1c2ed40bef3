"""Match filters: membership, false positives, encoding, deltas, streaming, manifest."""

from __future__ import annotations

import math
import os
import random
import struct
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.chunks import (
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    ChunkAssembler,
    iter_chunks,
)
from crypto.errors import CryptoError, EncodingError, VerificationError
from crypto.filter import (
    ENCODINGS,
    MAX_FALSE_POSITIVE_RATE,
    Filter,
    FilterDelta,
    FilterVersionError,
    apply_delta,
    build_filter,
    choose_encoding,
    decode_delta,
    decode_filter,
    diff,
    encode_delta,
    encode_filter,
    encoded_size,
    false_positive_rate,
    read_header,
    truncation_for,
)
from crypto.match_keys import (
    FilterManifest,
    SignedManifest,
    assembler_for,
    describe_filter,
    filter_sha256,
    sign_manifest,
    verify_filter,
    verify_filter_state,
    verify_manifest,
)
from crypto.signing import SigningKey

NOW = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
NORMALISATION = {"keys": "enlace/1", "documents": "icao9303-1", "names": "names-1"}


def _outputs(count: int, seed: int, size: int = 64) -> list[bytes]:
    block = random.Random(seed).randbytes(size * count)
    return [block[i : i + size] for i in range(0, len(block), size)]


# --------------------------------------------------------------------------- membership


def test_every_member_is_found_and_random_non_members_are_not() -> None:
    members = _outputs(20_000, 1)
    filt = build_filter(members)
    assert len(filt) == len(members)
    assert all(filt.contains_many(members))
    assert all(filt.contains(m) for m in members[:500])
    strangers = _outputs(20_000, 2)
    assert not any(filt.contains_many(strangers))
    assert not any(filt.contains(s) for s in strangers[:500])


def test_lookup_uses_only_the_truncated_prefix() -> None:
    member = _outputs(1, 3)[0]
    filt = build_filter([member, *_outputs(100, 4)])
    assert filt.contains(member[:8] + bytes(56))
    assert filt.contains(member[:8])
    with pytest.raises(EncodingError):
        filt.contains(member[:7])


def test_empty_filter_finds_nothing() -> None:
    filt = build_filter([])
    assert len(filt) == 0
    assert not filt.contains(os.urandom(64))
    assert filt.contains_many([os.urandom(64), os.urandom(64)]) == [False, False]


def test_duplicate_outputs_count_once() -> None:
    outputs = _outputs(50, 5)
    assert len(build_filter(outputs + outputs[:20])) == 50


@pytest.mark.parametrize(("truncation", "count"), [(2, 3_000), (3, 60_000)])
def test_false_positive_rate_matches_the_formula(truncation: int, count: int) -> None:
    filt = Filter.from_outputs(_outputs(count, 6, truncation), truncation)
    lookups = 200_000
    hits = sum(filt.contains_many(_outputs(lookups, 7, truncation)))
    rate = false_positive_rate(len(filt), truncation)
    assert rate == filt.false_positive_rate()
    expected = lookups * rate
    sigma = math.sqrt(lookups * rate * (1 - rate))
    assert abs(hits - expected) < 5 * sigma, (hits, expected)


def test_false_positive_rate_is_count_over_the_key_space() -> None:
    assert false_positive_rate(1, 1) == 1 / 256
    assert false_positive_rate(10**6, 8) == 10**6 / 2**64
    with pytest.raises(ValueError):
        false_positive_rate(-1, 8)
    with pytest.raises(ValueError):
        false_positive_rate(10, 17)


@given(st.integers(min_value=0, max_value=10**30), st.integers(min_value=8, max_value=16))
def test_truncation_for_is_the_shortest_width_within_the_bound(count: int, minimum: int) -> None:
    try:
        width = truncation_for(count, minimum=minimum)
    except CryptoError:
        assert false_positive_rate(count, 16) > MAX_FALSE_POSITIVE_RATE
        return
    assert minimum <= width <= 16
    assert false_positive_rate(count, width) <= MAX_FALSE_POSITIVE_RATE
    if width > minimum:
        assert false_positive_rate(count, width - 1) > MAX_FALSE_POSITIVE_RATE


def test_builder_refuses_widths_outside_8_to_16_and_short_outputs() -> None:
    for width in (7, 17):
        with pytest.raises(EncodingError):
            build_filter(_outputs(3, 8), truncation=width)
    with pytest.raises(EncodingError):
        build_filter([b"\x01" * 15])
    assert build_filter(_outputs(10, 8), truncation=12).truncation == 12


def test_filter_is_immutable_and_rejects_unsorted_entries() -> None:
    filt = build_filter(_outputs(10, 9))
    with pytest.raises(ValueError):
        filt.values[0] = b"\x00" * 8
    backwards = np.array(sorted(o[:8] for o in _outputs(5, 9))[::-1], dtype="S8")
    with pytest.raises(EncodingError):
        Filter(backwards, 8)
    repeated = np.array([b"\x01" * 8, b"\x01" * 8], dtype="S8")
    with pytest.raises(EncodingError):
        Filter(repeated, 8)


# --------------------------------------------------------------------------- encoding


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("truncation", [8, 11, 16])
@pytest.mark.parametrize("count", [0, 1, 2, 1000])
def test_encoding_round_trip(encoding: str, truncation: int, count: int) -> None:
    filt = Filter.from_outputs(_outputs(count, count + truncation), truncation, version=7)
    encoded = encode_filter(filt, encoding)  # type: ignore[arg-type]
    assert len(encoded) == encoded_size(filt, encoding)  # type: ignore[arg-type]
    back = decode_filter(encoded)
    assert back == filt
    assert back.version == 7
    assert encode_filter(back, encoding) == encoded  # type: ignore[arg-type]
    header = read_header(encoded)
    assert (header.encoding, header.truncation, header.count) == (encoding, truncation, count)


@given(
    st.integers(min_value=8, max_value=16).flatmap(
        lambda width: st.tuples(
            st.just(width), st.lists(st.binary(min_size=width, max_size=width), max_size=200)
        )
    ),
    st.sampled_from(ENCODINGS),
)
def test_any_set_round_trips_canonically(case: tuple[int, list[bytes]], encoding: str) -> None:
    width, entries = case
    filt = Filter.from_truncated(b"".join(entries), width)
    assert filt.raw() == b"".join(sorted(set(entries)))
    encoded = encode_filter(filt, encoding)  # type: ignore[arg-type]
    assert decode_filter(encoded) == filt
    assert encode_filter(decode_filter(encoded), encoding) == encoded  # type: ignore[arg-type]


def test_automatic_encoding_is_the_smaller_one() -> None:
    dense = build_filter(_outputs(50_000, 10))
    assert choose_encoding(dense) == "delta-varint"
    assert encoded_size(dense, "delta-varint") < encoded_size(dense, "raw")
    sparse = build_filter(_outputs(20, 10))  # gaps of ~2^60 need 9-byte varints
    assert choose_encoding(sparse) == "raw"
    assert encode_filter(dense) == encode_filter(dense, "delta-varint")
    assert encode_filter(sparse) == encode_filter(sparse, "raw")


def _header(encoding: int, width: int, count: int, version: int = 0) -> bytes:
    return struct.pack(">4sBBBBQQ", b"ENLF", 1, encoding, width, 0, version, count)


def test_decoder_refuses_non_canonical_or_damaged_bytes() -> None:
    filt = build_filter(_outputs(100, 11))
    raw = encode_filter(filt, "raw")
    packed = encode_filter(filt, "delta-varint")
    one, two = b"\x00" * 7 + b"\x01", b"\x00" * 7 + b"\x02"
    cases = [
        b"ENLX" + raw[4:],  # magic
        raw[:4] + b"\x02" + raw[5:],  # format
        raw[:7] + b"\x01" + raw[8:],  # reserved byte
        raw[:5] + b"\x07" + raw[6:],  # unknown encoding
        raw[:-1],  # short body
        raw + b"\x00",  # trailing byte
        packed[:-1],
        packed + b"\x00",
        raw[:10],  # short header
        _header(0, 8, 2) + two + one,  # unsorted
        _header(0, 8, 2) + one + one,  # repeated
        _header(0, 0, 0),  # zero width
        _header(1, 8, 1) + b"\x81\x00",  # non-minimal varint
        _header(1, 8, 1) + b"\xff" * 9 + b"\x02",  # varint above 2^64
        _header(1, 8, 2) + b"\x01\x00",  # zero delta: repeated entry
        _header(1, 8, 2) + b"\x01",  # fewer varints than announced
        _header(1, 8, 1) + b"\x81",  # unterminated varint
        _header(1, 8, 2) + b"\xff" * 9 + b"\x01" + b"\x01",  # wraps around 2^64
    ]
    for bad in cases:
        with pytest.raises(EncodingError):
            decode_filter(bad)


# --------------------------------------------------------------------------- deltas


def test_delta_round_trip() -> None:
    base = _outputs(2_000, 12)
    old = build_filter(base, version=3)
    new = build_filter(base[300:] + _outputs(150, 13), version=4)
    delta = diff(old, new)
    assert (len(delta.added), len(delta.removed)) == (150, 300)
    assert apply_delta(old, delta) == new
    assert decode_delta(encode_delta(delta)) == delta
    assert apply_delta(old, decode_delta(encode_delta(delta))) == new


def test_delta_must_fit_the_local_state() -> None:
    base = _outputs(200, 14)
    old = build_filter(base, version=1)
    new = build_filter(base[10:] + _outputs(5, 15), version=2)
    delta = diff(old, new)
    with pytest.raises(FilterVersionError):
        apply_delta(new, delta)
    with pytest.raises(FilterVersionError):
        apply_delta(build_filter(base, version=0), delta)
    grown = build_filter([*base, *_outputs(5, 15)], version=1)
    with pytest.raises(VerificationError):
        apply_delta(grown, delta)  # would add what the filter already holds
    shrunk = build_filter(base[5:], version=1)
    with pytest.raises(VerificationError):
        apply_delta(shrunk, delta)  # would remove what the filter does not hold


def test_malformed_deltas_are_refused() -> None:
    entries = Filter.from_outputs(_outputs(3, 16), 8)
    empty = Filter.from_outputs([], 8)
    with pytest.raises(EncodingError):
        FilterDelta(5, 5, entries, empty)
    with pytest.raises(EncodingError):
        FilterDelta(5, 4, entries, empty)
    with pytest.raises(EncodingError):
        FilterDelta(1, 2, entries, entries)
    with pytest.raises(EncodingError):
        FilterDelta(1, 2, entries, Filter.from_outputs([], 9))
    with pytest.raises(EncodingError):
        diff(entries, Filter.from_outputs([], 9, version=1))
    encoded = encode_delta(FilterDelta(1, 2, entries, empty))
    for bad in (encoded[:-1], encoded + b"\x00", b"ENLF" + encoded[4:], encoded[:20]):
        with pytest.raises(EncodingError):
            decode_delta(bad)


@settings(max_examples=60)
@given(
    st.sets(st.binary(min_size=8, max_size=8), max_size=60),
    st.sets(st.binary(min_size=8, max_size=8), max_size=60),
)
def test_apply_diff_gives_the_new_filter(before: set[bytes], after: set[bytes]) -> None:
    old = Filter.from_truncated(b"".join(before), 8, version=1)
    new = Filter.from_truncated(b"".join(after), 8, version=9)
    delta = decode_delta(encode_delta(diff(old, new)))
    assert apply_delta(old, delta) == new
    assert len(delta.added) == len(after - before)
    assert len(delta.removed) == len(before - after)


# --------------------------------------------------------------------------- streaming


def test_chunks_cover_the_encoding_and_the_assembler_checks_it() -> None:
    encoded = encode_filter(build_filter(_outputs(20_000, 17)))
    chunks = list(iter_chunks(encoded))
    assert b"".join(chunks) == encoded
    assert all(len(c) == DEFAULT_CHUNK_SIZE for c in chunks[:-1])
    assert 0 < len(chunks[-1]) <= DEFAULT_CHUNK_SIZE
    assembler = ChunkAssembler(len(encoded), filter_sha256(encoded))
    for chunk in chunks:
        assembler.add(chunk)
    assert assembler.received == len(encoded)
    assert assembler.finish() == encoded


def test_assembler_refuses_altered_short_or_oversized_transfers() -> None:
    encoded = encode_filter(build_filter(_outputs(5_000, 18)))
    chunks = list(iter_chunks(encoded, MIN_CHUNK_SIZE))
    altered = ChunkAssembler(len(encoded), filter_sha256(encoded))
    for index, chunk in enumerate(chunks):
        altered.add(chunk if index else bytes([chunk[0] ^ 1]) + chunk[1:])
    with pytest.raises(VerificationError):
        altered.finish()
    short = ChunkAssembler(len(encoded), filter_sha256(encoded))
    for chunk in chunks[:-1]:
        short.add(chunk)
    with pytest.raises(VerificationError):
        short.finish()
    too_long = ChunkAssembler(len(encoded), filter_sha256(encoded))
    for chunk in chunks:
        too_long.add(chunk)
    with pytest.raises(EncodingError):
        too_long.add(b"\x00")
    with pytest.raises(EncodingError):
        ChunkAssembler(10**9, filter_sha256(encoded)).add(bytes(MAX_CHUNK_SIZE + 1))
    for size in (MIN_CHUNK_SIZE - 1, MAX_CHUNK_SIZE + 1):
        with pytest.raises(ValueError):
            list(iter_chunks(encoded, size))


# --------------------------------------------------------------------------- manifest


def _published(count: int = 1_000, **changes: object) -> tuple[FilterManifest, bytes]:
    encoded = encode_filter(build_filter(_outputs(count, 19), version=5))
    fields: dict[str, object] = {
        "holder": "PAN",
        "dataset": "document_alerts",
        "epoch": 2,
        "created_at": NOW,
        "normalisation": NORMALISATION,
        **changes,
    }
    return describe_filter(encoded, **fields), encoded  # type: ignore[arg-type]


def test_manifest_describes_the_filter_and_round_trips_canonically() -> None:
    manifest, encoded = _published()
    assert (manifest.count, manifest.version, manifest.truncation_bytes) == (1_000, 5, 8)
    assert manifest.size == len(encoded)
    assert manifest.sha256 == filter_sha256(encoded)
    body = manifest.to_json()
    assert FilterManifest.from_json(body) == manifest
    assert body == FilterManifest.from_json(body).to_json()
    assert b", " not in body and b": " not in body
    assert verify_filter(manifest, encoded) == decode_filter(encoded)


def test_signed_manifest_verifies_and_names_holder_and_dataset() -> None:
    key = SigningKey.generate()
    manifest, _ = _published()
    signed = sign_manifest(manifest, key)
    assert verify_manifest(signed, key.public_key, holder="PAN", dataset="document_alerts") == (
        manifest
    )
    with pytest.raises(VerificationError):
        verify_manifest(signed, key.public_key, holder="CRI")
    with pytest.raises(VerificationError):
        verify_manifest(signed, key.public_key, dataset="travel_documents")
    other = SigningKey.generate()
    with pytest.raises(VerificationError):
        verify_manifest(signed, other.public_key)
    forged = SignedManifest(signed.body, signed.signature, other.key_id)
    with pytest.raises(VerificationError):
        verify_manifest(forged, other.public_key)


def test_tampered_manifest_is_detected() -> None:
    key = SigningKey.generate()
    manifest, _ = _published()
    signed = sign_manifest(manifest, key)
    tampered = signed.body.replace(b'"count":1000', b'"count":1001')
    assert tampered != signed.body
    with pytest.raises(VerificationError):
        verify_manifest(SignedManifest(tampered, signed.signature, signed.key_id), key.public_key)
    # Equivalent but non-canonical JSON is refused even when validly signed.
    spaced = signed.body.replace(b",", b", ")
    resigned = SignedManifest(spaced, key.sign(b"enlace/1 filter-manifest", spaced), key.key_id)
    with pytest.raises(EncodingError):
        verify_manifest(resigned, key.public_key)


def test_tampered_or_mismatched_filter_is_detected() -> None:
    manifest, encoded = _published()
    flipped = bytearray(encoded)
    flipped[-3] ^= 0x10
    with pytest.raises(VerificationError):
        verify_filter(manifest, bytes(flipped))
    with pytest.raises(VerificationError):
        verify_filter(manifest, encoded + b"\x00")
    _, other = _published(count=999)
    with pytest.raises(VerificationError):
        verify_filter(manifest, other)
    lying = FilterManifest(**{**manifest.__dict__, "count": 999})
    with pytest.raises(VerificationError):
        verify_filter(lying, encoded)


def test_manifest_refuses_a_filter_too_dense_for_its_width() -> None:
    manifest, encoded = _published()
    with pytest.raises(VerificationError):
        verify_filter(manifest, encoded, max_false_positive_rate=1e-20)


def test_verify_filter_state_after_a_delta() -> None:
    base = _outputs(500, 20)
    old = build_filter(base, version=1)
    new = build_filter(base[50:] + _outputs(40, 21), version=2)
    new_manifest = describe_filter(
        encode_filter(new),
        holder="MEX",
        dataset="travel_documents",
        epoch=0,
        created_at=NOW,
        normalisation=NORMALISATION,
    )
    updated = apply_delta(old, diff(old, new))
    verify_filter_state(new_manifest, updated)
    with pytest.raises(VerificationError):
        verify_filter_state(new_manifest, old)
    swapped = Filter.from_truncated(updated.raw()[8:] + b"\x00" * 8, 8, version=2)
    with pytest.raises(VerificationError):
        verify_filter_state(new_manifest, swapped)
    assembler = assembler_for(new_manifest)
    for chunk in iter_chunks(encode_filter(new)):
        assembler.add(chunk)
    assert verify_filter(new_manifest, assembler.finish()) == updated


def test_manifest_fields_are_validated() -> None:
    manifest, _ = _published()
    base = manifest.__dict__
    bad_changes: list[dict[str, object]] = [
        {"holder": "pa"},
        {"dataset": "Travel Documents"},
        {"epoch": -1},
        {"version": True},
        {"truncation_bytes": 7},
        {"encoding": "zip"},
        {"sha256": "AB" * 32},
        {"created_at": datetime(2026, 1, 1)},  # naive on purpose
        {"normalisation": {}},
        {"normalisation": {"keys": "has space"}},
        {"mode": "voprf"},
        {"mode": "oprf", "oprf_public_key": "00" * 32},
        {"mode": "poprf"},
    ]
    for change in bad_changes:
        with pytest.raises(EncodingError):
            FilterManifest(**{**base, **change})
    shifted = FilterManifest(
        **{**base, "created_at": NOW.astimezone(timezone(timedelta(hours=-5)))}
    )
    assert shifted.to_json() == manifest.to_json()


def test_manifest_json_must_be_exact() -> None:
    manifest, _ = _published()
    body = manifest.to_json()
    for bad in (
        body.replace(b'"epoch":2', b'"epoch":2.0'),
        body.replace(b'"epoch":2', b'"epoch":2,"epoch":2'),
        body.replace(b'"format":"enlace/1 filter-manifest"', b'"format":"other"'),
        body.replace(b'"mode":"oprf",', b""),
        body.replace(b"Z", b"+00:00"),
        body.replace(b"2026-03-02T", b"2026-02-30T"),
        body.replace(b"14:30:00Z", b"14:30:00.000000Z"),
        body[:-1],
        b"\xff" + body,
    ):
        with pytest.raises(EncodingError):
            FilterManifest.from_json(bad)


def test_voprf_manifest_carries_the_public_key() -> None:
    public = bytes(range(32))
    manifest, _ = _published(oprf_public_key=public)
    assert manifest.mode == "voprf"
    assert manifest.public_key_bytes == public
    assert FilterManifest.from_json(manifest.to_json()).public_key_bytes == public


def _leb128_reference(data: bytes) -> list[int]:
    """Plain LEB128, one byte at a time: what the vectorised decoder must agree with."""
    out, value, shift = [], 0, 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            out.append(value)
            value, shift = 0, 0
    return out


@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), min_size=1, max_size=300))
def test_varint_decoding_agrees_with_a_byte_by_byte_reference(numbers: list[int]) -> None:
    from crypto.filter import _decode_varints, _encode_varints

    encoded = _encode_varints(np.array(numbers, dtype=np.uint64))
    assert _leb128_reference(encoded) == numbers
    assert _decode_varints(encoded, len(numbers)).tolist() == numbers
