"""Ed25519 signing: RFC 8032 conformance, domain separation, and every way verification fails.

Why: every signature in crm-enlace (envelopes, directories, agreements, checkpoints) goes
through :mod:`crypto.signing`. These tests pin the primitive to the RFC's published vectors
(read from the shared data, not retyped), then check the wrapper's own promises: a context
separates purposes, verification raises instead of returning, and key ids are stable.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from crypto.errors import CryptoError, EncodingError, VerificationError
from crypto.signing import (
    PUBLIC_KEY_SIZE,
    SEED_SIZE,
    SIGNATURE_SIZE,
    SigningKey,
    key_id,
    verify,
    verify_raw,
)

VECTOR_FILE = "data/vectors/rfc8032_ed25519_vectors_1-3.json"
CONTEXT = b"enlace/1 test-purpose"
OTHER_CONTEXT = b"enlace/1 other-purpose"


def load_vectors(shared_dir: Path) -> list[dict[str, Any]]:
    data = json.loads((shared_dir / VECTOR_FILE).read_text(encoding="utf-8"))
    vectors: list[dict[str, Any]] = data["vectors"]
    return vectors


@pytest.fixture(scope="module")
def vectors(shared_dir: Path) -> list[dict[str, Any]]:
    found = load_vectors(shared_dir)
    assert [v["name"] for v in found] == ["TEST 1", "TEST 2", "TEST 3"]
    return found


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey(hashlib.sha256(b"signing test key").digest())


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]


# --- RFC 8032 section 7.1 ----------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1, 2], ids=["TEST1", "TEST2", "TEST3"])
def test_rfc8032_public_key_and_signature(vectors: list[dict[str, Any]], index: int) -> None:
    vector = vectors[index]
    signer = SigningKey(bytes.fromhex(vector["SECRET_KEY"]))
    message = bytes.fromhex(vector["MESSAGE"])

    assert signer.public_key.hex() == vector["PUBLIC_KEY"]
    assert signer.sign_raw(message).hex() == vector["SIGNATURE"]
    verify_raw(bytes.fromhex(vector["PUBLIC_KEY"]), message, bytes.fromhex(vector["SIGNATURE"]))


@pytest.mark.parametrize("index", [0, 1, 2], ids=["TEST1", "TEST2", "TEST3"])
def test_rfc8032_signature_rejected_for_other_message(
    vectors: list[dict[str, Any]], index: int
) -> None:
    vector = vectors[index]
    public = bytes.fromhex(vector["PUBLIC_KEY"])
    signature = bytes.fromhex(vector["SIGNATURE"])
    with pytest.raises(VerificationError):
        verify_raw(public, bytes.fromhex(vector["MESSAGE"]) + b"\x00", signature)


def test_rfc8032_signature_rejected_under_other_vector_key(
    vectors: list[dict[str, Any]],
) -> None:
    first, second = vectors[0], vectors[1]
    with pytest.raises(VerificationError):
        verify_raw(
            bytes.fromhex(second["PUBLIC_KEY"]),
            bytes.fromhex(first["MESSAGE"]),
            bytes.fromhex(first["SIGNATURE"]),
        )


def test_sign_is_not_raw_signature_over_message(vectors: list[dict[str, Any]]) -> None:
    """A contextual signature is over ``context || \\n || message``, never the bare message."""
    vector = vectors[2]
    signer = SigningKey(bytes.fromhex(vector["SECRET_KEY"]))
    message = bytes.fromhex(vector["MESSAGE"])
    signature = signer.sign(CONTEXT, message)
    assert signature.hex() != vector["SIGNATURE"]
    assert signature == signer.sign_raw(CONTEXT + b"\n" + message)
    with pytest.raises(VerificationError):
        verify_raw(signer.public_key, message, signature)


# --- domain separation ---------------------------------------------------------------------


def test_round_trip_with_context(key: SigningKey) -> None:
    message = b"a header as sent"
    verify(key.public_key, CONTEXT, message, key.sign(CONTEXT, message))


def test_signature_for_one_context_fails_under_another(key: SigningKey) -> None:
    message = b"the same bytes"
    signature = key.sign(CONTEXT, message)
    with pytest.raises(VerificationError):
        verify(key.public_key, OTHER_CONTEXT, message, signature)


def test_context_boundary_cannot_be_shifted(key: SigningKey) -> None:
    """Moving bytes between context and message changes what is signed."""
    signature = key.sign(b"enlace/1 a", b"bc")
    with pytest.raises(VerificationError):
        verify(key.public_key, b"enlace/1 ab", b"c", signature)


@pytest.mark.parametrize("context", [b"", b"two\nlines"])
def test_bad_context_refused(key: SigningKey, context: bytes) -> None:
    with pytest.raises(ValueError, match="context"):
        key.sign(context, b"m")
    with pytest.raises(ValueError, match="context"):
        verify(key.public_key, context, b"m", bytes(SIGNATURE_SIZE))


# --- verification failures raise ------------------------------------------------------------


def test_wrong_key_raises(key: SigningKey) -> None:
    other = SigningKey(hashlib.sha256(b"another key").digest())
    signature = key.sign(CONTEXT, b"message")
    with pytest.raises(VerificationError):
        verify(other.public_key, CONTEXT, b"message", signature)


@pytest.mark.parametrize("index", [0, 31, 32, 63])
def test_flipped_signature_bit_raises(key: SigningKey, index: int) -> None:
    signature = key.sign(CONTEXT, b"message")
    with pytest.raises(VerificationError):
        verify(key.public_key, CONTEXT, b"message", flip(signature, index))


@pytest.mark.parametrize("mask", [0x01, 0x80])
def test_flipped_message_bit_raises(key: SigningKey, mask: int) -> None:
    message = b"message of some length"
    signature = key.sign(CONTEXT, message)
    for index in range(len(message)):
        with pytest.raises(VerificationError):
            verify(key.public_key, CONTEXT, flip(message, index, mask), signature)


def test_flipped_public_key_bit_raises(key: SigningKey) -> None:
    signature = key.sign(CONTEXT, b"message")
    with pytest.raises(VerificationError):
        verify(flip(key.public_key, 5), CONTEXT, b"message", signature)


@pytest.mark.parametrize("length", [0, 63, 65, 128])
def test_wrong_signature_length_raises(key: SigningKey, length: int) -> None:
    signature = key.sign(CONTEXT, b"message")
    wrong = (signature * 2)[:length]
    with pytest.raises(VerificationError, match="64 bytes"):
        verify(key.public_key, CONTEXT, b"message", wrong)


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_wrong_public_key_length_raises(key: SigningKey, length: int) -> None:
    signature = key.sign(CONTEXT, b"message")
    wrong = (key.public_key * 2)[:length]
    with pytest.raises(VerificationError, match="32 bytes"):
        verify(wrong, CONTEXT, b"message", signature)


def test_verification_error_is_a_crypto_error() -> None:
    assert issubclass(VerificationError, CryptoError)


def test_verify_returns_none_on_success(key: SigningKey) -> None:
    signature = key.sign(CONTEXT, b"m")
    result = verify(key.public_key, CONTEXT, b"m", signature)  # type: ignore[func-returns-value]
    assert result is None


# --- keys and key ids ---------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_seed_length_checked(length: int) -> None:
    with pytest.raises(EncodingError):
        SigningKey(bytes(length))


def test_key_id_is_16_lowercase_hex_and_stable(key: SigningKey) -> None:
    kid = key.key_id
    assert len(kid) == 16
    assert set(kid) <= set("0123456789abcdef")
    assert kid == key_id(key.public_key)
    assert kid == SigningKey(key.seed).key_id
    assert kid == hashlib.sha256(key.public_key).hexdigest()[:16]


def test_key_id_of_rfc_vector_is_fixed(vectors: list[dict[str, Any]]) -> None:
    public = bytes.fromhex(vectors[0]["PUBLIC_KEY"])
    assert key_id(public) == hashlib.sha256(public).hexdigest()[:16]
    assert key_id(public) != key_id(bytes.fromhex(vectors[1]["PUBLIC_KEY"]))


@pytest.mark.parametrize("length", [0, 31, 33])
def test_key_id_refuses_wrong_length(length: int) -> None:
    with pytest.raises(EncodingError):
        key_id(bytes(length))


def test_generated_keys_are_distinct_and_sized() -> None:
    first, second = SigningKey.generate(), SigningKey.generate()
    assert len(first.seed) == SEED_SIZE
    assert len(first.public_key) == PUBLIC_KEY_SIZE
    assert first.seed != second.seed
    assert first.key_id != second.key_id


def test_repr_hides_seed(key: SigningKey) -> None:
    text = repr(key)
    assert key.seed.hex() not in text
    assert key.key_id in text
