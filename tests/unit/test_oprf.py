"""RFC 9497 OPRF/VOPRF (ristretto255-SHA512): conformance vectors, rejection, unlinkability."""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import oprf
from crypto import ristretto as r255
from crypto.errors import (
    CryptoError,
    EncodingError,
    InvalidPointError,
    KeyError_,
    VerificationError,
)
from crypto.oprf import Mode, OprfServerKey

FIELD_PRIME = (1 << 255) - 19
VECTOR_FILE = "rfc9497_ristretto255_sha512_oprf.json"


def _vector_dir() -> Path:
    shared = os.environ.get("ENLACE_SHARED_DIR")
    if shared:
        return Path(shared) / "data" / "vectors"
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "vectors"


def _load_vectors() -> dict[str, Any]:
    path = _vector_dir() / VECTOR_FILE
    if not path.is_file():
        pytest.fail(f"RFC 9497 vectors not found at {path}; set ENLACE_SHARED_DIR", pytrace=False)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


VECTORS = _load_vectors()
VOPRF = VECTORS["other_modes_for_reference"]["VOPRF_mode_0x01"]


def _hexes(field: str) -> list[bytes]:
    return [bytes.fromhex(part) for part in field.split(",")]


def _oprf_key() -> OprfServerKey:
    return OprfServerKey.derive(bytes.fromhex(VECTORS["Seed"]), bytes.fromhex(VECTORS["KeyInfo"]))


def _voprf_key() -> OprfServerKey:
    return OprfServerKey.derive(
        bytes.fromhex(VOPRF["Seed"]), bytes.fromhex(VOPRF["KeyInfo"]), Mode.VOPRF
    )


# --------------------------------------------------------------------------- conformance


def test_context_string_and_dst_match_the_rfc() -> None:
    context = oprf.context_string(Mode.OPRF)
    assert context.hex() == VECTORS["contextString_hex"]
    assert (b"HashToGroup-" + context).hex() == VECTORS["HashToGroup_DST_hex"]
    assert oprf.context_string(Mode.VOPRF) != context


def test_derive_key_pair_oprf() -> None:
    sk, pk = oprf.derive_key_pair(
        bytes.fromhex(VECTORS["Seed"]), bytes.fromhex(VECTORS["KeyInfo"]), Mode.OPRF
    )
    assert sk.hex() == VECTORS["skSm"]
    assert _oprf_key().secret == sk
    assert _oprf_key().public_key == pk


def test_derive_key_pair_voprf() -> None:
    sk, pk = oprf.derive_key_pair(
        bytes.fromhex(VOPRF["Seed"]), bytes.fromhex(VOPRF["KeyInfo"]), Mode.VOPRF
    )
    assert (sk.hex(), pk.hex()) == (VOPRF["skSm"], VOPRF["pkSm"])
    assert _voprf_key().public_key.hex() == VOPRF["pkSm"]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_oprf_vectors(vector: dict[str, Any]) -> None:
    key = _oprf_key()
    inputs, blinds = _hexes(vector["Input"]), _hexes(vector["Blind"])
    state = oprf.blind(inputs, Mode.OPRF, blinds)
    assert [e.hex() for e in state.blinded_elements] == vector["BlindedElement"].split(",")
    evaluated = key.blind_evaluate(state.blinded_elements)
    assert [e.hex() for e in evaluated] == vector["EvaluationElement"].split(",")
    outputs = oprf.finalize(inputs, blinds, evaluated, Mode.OPRF)
    assert [o.hex() for o in outputs] == vector["Output"].split(",")
    assert state.finalize(evaluated) == outputs
    assert key.evaluate_many(inputs) == outputs


@pytest.mark.parametrize("vector", VOPRF["vectors"], ids=lambda v: v["_title"])
def test_voprf_vectors(vector: dict[str, Any]) -> None:
    key = _voprf_key()
    inputs, blinds = _hexes(vector["Input"]), _hexes(vector["Blind"])
    state = oprf.blind(inputs, Mode.VOPRF, blinds)
    assert [e.hex() for e in state.blinded_elements] == vector["BlindedElement"].split(",")
    evaluated, proof = key.blind_evaluate_verifiable(
        state.blinded_elements, proof_random_scalar=bytes.fromhex(vector["ProofRandomScalar"])
    )
    assert [e.hex() for e in evaluated] == vector["EvaluationElement"].split(",")
    assert proof.hex() == vector["Proof"]
    oprf.verify_proof(key.public_key, state.blinded_elements, evaluated, proof)
    outputs = state.finalize_verifiable(evaluated, proof, key.public_key)
    assert [o.hex() for o in outputs] == vector["Output"].split(",")
    assert key.evaluate_many(inputs, Mode.VOPRF) == outputs


@pytest.mark.parametrize(
    ("msg", "length", "expected"),
    [  # RFC 9380 appendix K.3, expand_message_xmd(SHA-512)
        (b"", 32, "6b9a7312411d92f921c6f68ca0b6380730a1a4d982c507211a90964c394179ba"),
        (b"abc", 32, "0da749f12fbe5483eb066a5f595055679b976e93abe9be6f0f6318bce7aca8dc"),
        (
            b"abc",
            128,
            "7f1dddd13c08b543f2e2037b14cefb255b44c83cc397c1786d975653e36a6b11"
            "bdd7732d8b38adb4a0edc26a0cef4bb45217135456e58fbca1703cd6032cb134"
            "7ee720b87972d63fbf232587043ed2901bce7f22610c0419751c065922b48843"
            "1851041310ad659e4b23520e1772ab29dcdeb2002222a363f0c2b1c972b3efe1",
        ),
    ],
)
def test_expand_message_xmd_rfc9380(msg: bytes, length: int, expected: str) -> None:
    dst = b"QUUX-V01-CS02-with-expander-SHA512-256"
    assert oprf.expand_message_xmd(msg, dst, length).hex() == expected


def test_expand_message_xmd_rejects_bad_lengths() -> None:
    for length in (0, 255 * 64 + 1):
        with pytest.raises(EncodingError):
            oprf.expand_message_xmd(b"x", b"dst", length)
    with pytest.raises(EncodingError):
        oprf.expand_message_xmd(b"x", b"", 64)


# --------------------------------------------------------------------------- behaviour


def test_two_blindings_are_unlinkable_but_agree() -> None:
    key = OprfServerKey.generate()
    record = b"P<HTI|AB1234567"
    first = oprf.blind([record])
    second = oprf.blind([record])
    assert first.blinds != second.blinds
    assert first.blinded_elements != second.blinded_elements
    out1 = first.finalize(key.blind_evaluate(first.blinded_elements))
    out2 = second.finalize(key.blind_evaluate(second.blinded_elements))
    assert out1 == out2 == [key.evaluate(record)]
    assert len(out1[0]) == oprf.OUTPUT_SIZE


def test_outputs_depend_on_key_input_and_mode() -> None:
    key, other = OprfServerKey.generate(), OprfServerKey.generate()
    assert key.evaluate(b"a") != key.evaluate(b"b")
    assert key.evaluate(b"a") != other.evaluate(b"a")
    assert key.evaluate(b"a", Mode.OPRF) != key.evaluate(b"a", Mode.VOPRF)


@settings(max_examples=8, deadline=None)
@given(st.lists(st.binary(max_size=80), min_size=1, max_size=3))
def test_evaluate_equals_blinded_round_trip(inputs: list[bytes]) -> None:
    key = OprfServerKey.generate()
    for mode in Mode:
        state = oprf.blind(inputs, mode)
        if mode is Mode.VOPRF:
            evaluated, proof = key.blind_evaluate_verifiable(state.blinded_elements)
            outputs = state.finalize_verifiable(evaluated, proof, key.public_key)
        else:
            outputs = state.finalize(key.blind_evaluate(state.blinded_elements))
        assert outputs == key.evaluate_many(inputs, mode)


def test_empty_batch_without_proof_is_empty() -> None:
    assert OprfServerKey.generate().blind_evaluate([]) == []
    assert oprf.finalize([], [], []) == []


def test_batch_invert_matches_single_inversions() -> None:
    rng = random.Random(9497)
    values = [rng.randrange(1, r255.ORDER) for _ in range(17)]
    assert r255.batch_invert_int(values) == [pow(v, -1, r255.ORDER) for v in values]
    with pytest.raises(EncodingError):
        r255.batch_invert_int([3, 0, 5])


# --------------------------------------------------------------------------- rejection


def _bad_elements() -> list[bytes]:
    valid = oprf.hash_to_group(b"some record")
    s = int.from_bytes(valid, "little")
    return [
        r255.IDENTITY,
        FIELD_PRIME.to_bytes(32, "little"),  # the identity, encoded non-canonically (s = p)
        (FIELD_PRIME - s).to_bytes(32, "little"),  # the "negative" s of a valid encoding
        (s | (1 << 255)).to_bytes(32, "little"),  # top bit set
        b"\xff" * 32,
        valid[:31],
        valid + b"\x00",
        b"",
    ]


@pytest.mark.parametrize("bad", _bad_elements(), ids=lambda b: b[:4].hex() + f"/{len(b)}")
def test_invalid_elements_are_rejected_everywhere(bad: bytes) -> None:
    key = _voprf_key()
    with pytest.raises(InvalidPointError):
        r255.check_element(bad)
    with pytest.raises(InvalidPointError):
        key.blind_evaluate([oprf.hash_to_group(b"ok"), bad])
    state = oprf.blind([b"x", b"y"], Mode.VOPRF)
    good = key.blind_evaluate(state.blinded_elements)
    with pytest.raises(InvalidPointError):
        state.finalize([good[0], bad])
    evaluated, proof = key.blind_evaluate_verifiable(state.blinded_elements)
    with pytest.raises(InvalidPointError):
        state.finalize_verifiable([evaluated[0], bad], proof, key.public_key)
    with pytest.raises(InvalidPointError):
        state.finalize_verifiable(evaluated, proof, bad)


def test_random_garbage_is_rejected_consistently() -> None:
    rng = random.Random(20240601)
    key = OprfServerKey.generate()
    rejected = 0
    for _ in range(200):
        garbage = rng.randbytes(32)
        try:
            r255.check_element(garbage)
        except InvalidPointError:
            rejected += 1
            with pytest.raises(InvalidPointError):
                key.blind_evaluate([garbage])
        else:  # the few random strings that do encode a group element must work
            assert len(key.blind_evaluate([garbage])[0]) == 32
    assert rejected > 150


@pytest.mark.parametrize(
    "secret",
    [bytes(32), r255.ORDER.to_bytes(32, "little"), b"\xff" * 32, b"\x01" * 31],
    ids=["zero", "order", "unreduced", "short"],
)
def test_bad_secret_keys_are_refused(secret: bytes) -> None:
    with pytest.raises(KeyError_):
        OprfServerKey(secret)


def test_key_repr_hides_the_secret() -> None:
    key = OprfServerKey.generate()
    assert key.secret.hex() not in repr(key)
    assert key.public_key.hex()[:16] in repr(key)


def test_bad_blinds_seed_inputs_and_modes_are_refused() -> None:
    with pytest.raises(EncodingError):
        oprf.blind([b"x"], Mode.OPRF, [bytes(32)])
    with pytest.raises(EncodingError):
        oprf.blind([b"x"], Mode.OPRF, [r255.ORDER.to_bytes(32, "little")])
    with pytest.raises(EncodingError):
        oprf.blind([b"x", b"y"], Mode.OPRF, [r255.random_scalar()])
    with pytest.raises(EncodingError):
        oprf.blind([bytes(oprf.MAX_INPUT_SIZE + 1)])
    with pytest.raises(KeyError_):
        oprf.derive_key_pair(b"short seed", b"info")
    with pytest.raises(CryptoError):
        oprf.blind([b"x"], 2)
    state = oprf.blind([b"x", b"y"])
    evaluated = OprfServerKey.generate().blind_evaluate(state.blinded_elements)
    with pytest.raises(EncodingError):
        state.finalize(evaluated[:1])
    with pytest.raises(CryptoError):
        state.finalize_verifiable(evaluated, bytes(64), evaluated[0])


# --------------------------------------------------------------------------- proofs


def _proof_setup() -> tuple[OprfServerKey, oprf.BlindState, list[bytes], bytes]:
    key = _voprf_key()
    state = oprf.blind([b"doc-1", b"doc-2", b"doc-3"], Mode.VOPRF)
    evaluated, proof = key.blind_evaluate_verifiable(state.blinded_elements)
    return key, state, evaluated, proof


def test_proof_binds_key_elements_and_order() -> None:
    key, state, evaluated, proof = _proof_setup()
    other = OprfServerKey.generate()
    with pytest.raises(VerificationError):
        oprf.verify_proof(other.public_key, state.blinded_elements, evaluated, proof)
    tampered = list(evaluated)
    tampered[1] = other.blind_evaluate([state.blinded_elements[1]])[0]  # one query, other key
    with pytest.raises(VerificationError):
        state.finalize_verifiable(tampered, proof, key.public_key)
    swapped = [evaluated[1], evaluated[0], evaluated[2]]
    with pytest.raises(VerificationError):
        oprf.verify_proof(key.public_key, state.blinded_elements, swapped, proof)
    with pytest.raises(VerificationError):
        oprf.verify_proof(key.public_key, state.blinded_elements[:2], evaluated[:2], proof)


def test_tampered_or_malformed_proofs_fail() -> None:
    key, state, evaluated, proof = _proof_setup()
    for position in (0, 40):
        flipped = bytearray(proof)
        flipped[position] ^= 0x01
        with pytest.raises(CryptoError):
            oprf.verify_proof(key.public_key, state.blinded_elements, evaluated, bytes(flipped))
    with pytest.raises(VerificationError):
        oprf.verify_proof(key.public_key, state.blinded_elements, evaluated, bytes(64))
    unreduced = proof[:32] + r255.ORDER.to_bytes(32, "little")
    with pytest.raises(EncodingError):
        oprf.verify_proof(key.public_key, state.blinded_elements, evaluated, unreduced)
    with pytest.raises(EncodingError):
        oprf.verify_proof(key.public_key, state.blinded_elements, evaluated, proof[:63])
    with pytest.raises(EncodingError):
        oprf.verify_proof(key.public_key, [], [], proof)
    with pytest.raises(EncodingError):
        oprf.verify_proof(key.public_key, state.blinded_elements, evaluated[:2], proof)


def test_proof_nonce_is_fresh_and_checked() -> None:
    key, state, _, proof = _proof_setup()
    _, again = key.blind_evaluate_verifiable(state.blinded_elements)
    assert again != proof
    with pytest.raises(EncodingError):
        key.blind_evaluate_verifiable(state.blinded_elements, proof_random_scalar=bytes(32))


def test_hash_to_scalar_is_reduced_and_domain_separated() -> None:
    value = oprf.hash_to_scalar(b"m", Mode.OPRF)
    assert int.from_bytes(value, "little") < r255.ORDER
    assert value != oprf.hash_to_scalar(b"m", Mode.VOPRF)
    digest = hashlib.sha512(b"m").digest()
    assert value != r255.int_to_scalar(int.from_bytes(digest, "little"))


def test_inputs_hashed_once_blind_freshly_and_finalise_to_the_same_outputs() -> None:
    # One fan-out hashes a batch once for every holder; each holder still sees its own blinds.
    inputs = [b"PAN|A1234567", b"HTI|R0099881", b"CUB|K5550001"]
    hashed = oprf.hash_inputs(inputs, Mode.OPRF)
    holders = [OprfServerKey.generate() for _ in range(2)]
    states = [oprf.blind(inputs, Mode.OPRF, points=hashed) for _ in holders]
    assert not set(states[0].blinded_elements) & set(states[1].blinded_elements)
    for key, state in zip(holders, states, strict=True):
        outputs = state.finalize(key.blind_evaluate(state.blinded_elements))
        plain = oprf.blind(inputs, Mode.OPRF)
        assert outputs == plain.finalize(key.blind_evaluate(plain.blinded_elements))


def test_hashed_points_of_other_inputs_or_mode_are_refused() -> None:
    hashed = oprf.hash_inputs([b"a", b"b"], Mode.OPRF)
    with pytest.raises(EncodingError):
        oprf.blind([b"a", b"c"], Mode.OPRF, points=hashed)
    with pytest.raises(EncodingError):
        oprf.blind([b"a", b"b"], Mode.VOPRF, points=hashed)
