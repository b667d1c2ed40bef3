"""Template protection: pairwise secrets, deterministic projection keys, codes and unlinkability."""

from __future__ import annotations

import hashlib
import math
import struct

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from crypto import biohash
from crypto.biohash import (
    SUPPORTED_BITS,
    ProjectionKey,
    TemplateError,
    hamming_distances,
    normalise,
    paired_hamming,
    pairwise_secret,
    protect,
    search_prefix,
)
from crypto.errors import EncodingError, KeyError_
from node.biometrics import synthetic as syn


def node_key() -> tuple[bytes, bytes]:
    private = x25519.X25519PrivateKey.generate()
    return private.private_bytes_raw(), private.public_key().public_bytes_raw()


@pytest.fixture(scope="module")
def nodes() -> dict[str, tuple[bytes, bytes]]:
    return {country: node_key() for country in ("PAN", "CRI", "HND")}


def secret(nodes: dict[str, tuple[bytes, bytes]], me: str, peer: str, epoch: int) -> bytes:
    return pairwise_secret(nodes[me][0], nodes[peer][1], me=me, peer=peer, epoch=epoch)


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    people = syn.population(150, family_size=1)
    vectors, _ = syn.captures(people, 2, seed=7)
    return vectors


# --------------------------------------------------------------------------- pairwise secret


def test_both_sides_derive_the_same_secret(nodes: dict[str, tuple[bytes, bytes]]) -> None:
    ours = secret(nodes, "PAN", "CRI", 3)
    theirs = secret(nodes, "CRI", "PAN", 3)
    assert ours == theirs
    assert len(ours) == 32


def test_epochs_and_peers_give_different_secrets(nodes: dict[str, tuple[bytes, bytes]]) -> None:
    derived = {
        secret(nodes, "PAN", "CRI", 3),
        secret(nodes, "PAN", "CRI", 4),
        secret(nodes, "PAN", "HND", 3),
        secret(nodes, "CRI", "HND", 3),
        # same key material, other country labels: the codes are bound into the KDF
        pairwise_secret(nodes["PAN"][0], nodes["CRI"][1], me="PAN", peer="GTM", epoch=3),
    }
    assert len(derived) == 5


def test_secret_depends_on_both_private_keys(nodes: dict[str, tuple[bytes, bytes]]) -> None:
    outsider, _ = node_key()
    forged = pairwise_secret(outsider, nodes["CRI"][1], me="PAN", peer="CRI", epoch=3)
    assert forged != secret(nodes, "PAN", "CRI", 3)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"me": "pan"}, ValueError),
        ({"peer": "CR"}, ValueError),
        ({"peer": "PAN"}, ValueError),
        ({"epoch": -1}, ValueError),
        ({"epoch": True}, ValueError),
        ({"epoch": 1 << 63}, ValueError),
        ({"private": b"\x01" * 31}, EncodingError),
        ({"public": b"\x01" * 33}, EncodingError),
        ({"public": bytes(32)}, KeyError_),  # low-order point: all-zero shared secret
    ],
)
def test_pairwise_secret_refuses_bad_input(
    nodes: dict[str, tuple[bytes, bytes]], kwargs: dict[str, object], error: type[Exception]
) -> None:
    args: dict[str, object] = {
        "private": nodes["PAN"][0],
        "public": nodes["CRI"][1],
        "me": "PAN",
        "peer": "CRI",
        "epoch": 1,
    } | kwargs
    with pytest.raises(error):
        pairwise_secret(
            args.pop("private"),  # type: ignore[arg-type]
            args.pop("public"),  # type: ignore[arg-type]
            **args,  # type: ignore[arg-type]
        )


# --------------------------------------------------------------------------- projection key


def test_projection_key_is_deterministic_and_parameter_bound() -> None:
    s = hashlib.sha256(b"fixed").digest()
    a, b = ProjectionKey.from_secret(s, 128, 4096), ProjectionKey.from_secret(s, 128, 4096)
    assert np.array_equal(a.matrix, b.matrix) and a.key_id == b.key_id
    other = ProjectionKey.from_secret(hashlib.sha256(b"other").digest(), 128, 4096)
    assert other.key_id != a.key_id and not np.allclose(other.matrix[:4], a.matrix[:4])
    shorter = ProjectionKey.from_secret(s, 128, 2048)
    assert shorter.key_id != a.key_id and not np.allclose(shorter.matrix, a.matrix[:2048])
    plain = ProjectionKey.from_secret(s, 128, 4096, orthonormal=False)
    assert plain.key_id != a.key_id
    assert not a.matrix.flags.writeable
    assert s.hex() not in repr(a) and a.key_id in repr(a)


def test_matrix_entries_are_box_muller_on_the_shake_stream() -> None:
    """Recompute the first two entries by hand: the expansion must not depend on numpy."""
    s = bytes(range(32))
    key = ProjectionKey.from_secret(s, 64, 2048, orthonormal=False)
    params = struct.pack(">IIB", 64, 2048, 0)
    stream = hashlib.shake_256(biohash.DOMAIN + b"\x00matrix\x00" + s + params).digest(16)
    u1, u2 = (((int.from_bytes(stream[i : i + 8], "big") >> 11) + 0.5) / 2**53 for i in (0, 8))
    radius = math.sqrt(-2.0 * math.log(u1))
    assert key.matrix[0, 0] == pytest.approx(radius * math.cos(2 * math.pi * u2), abs=1e-12)
    assert key.matrix[0, 1] == pytest.approx(radius * math.sin(2 * math.pi * u2), abs=1e-12)
    entries = key.matrix.ravel()
    assert abs(entries.mean()) < 0.02 and abs(entries.std() - 1.0) < 0.02


@pytest.mark.parametrize("bits", SUPPORTED_BITS)
def test_orthonormal_blocks(bits: int) -> None:
    key = ProjectionKey.from_secret(hashlib.sha256(b"o").digest(), 128, bits)
    for start in range(0, bits, 128):
        block = key.matrix[start : start + 128]
        assert np.allclose(block @ block.T, np.eye(128), atol=1e-12)
    assert abs(float(key.matrix[0] @ key.matrix[128])) < 0.5  # blocks are independent


def test_key_parameters_are_checked() -> None:
    s = bytes(32)
    with pytest.raises(ValueError, match="code length"):
        ProjectionKey.from_secret(s, 128, 384)
    for legacy in (256, 512, 1024):  # format 1 lengths: refused, and the message says why
        with pytest.raises(ValueError, match="format 1"):
            ProjectionKey.from_secret(s, 128, legacy)
    with pytest.raises(ValueError, match="dimension"):
        ProjectionKey.from_secret(s, 1, 2048)
    with pytest.raises(KeyError_):
        ProjectionKey.from_secret(b"short", 128, 2048)


def test_format_2_keys_are_not_format_1_keys() -> None:
    """The domain carries the format: the same secret gives another matrix and key id."""
    assert biohash.DOMAIN.endswith(b"/v2") and biohash.FORMAT_VERSION == 2
    s = hashlib.sha256(b"formats").digest()
    key = ProjectionKey.from_secret(s, 128, 2048, orthonormal=False)
    params = struct.pack(">IIB", 128, 2048, 0)
    old_material = b"crm-enlace/biohash/v1\x00matrix\x00" + s + params
    old_first = biohash._gaussians(old_material, 4)
    assert not np.allclose(key.matrix.ravel()[:4], old_first)
    old_id = hashlib.sha256(b"crm-enlace/biohash/v1\x00key-id\x00" + s + params).hexdigest()
    assert key.key_id != old_id[:16]


# --------------------------------------------------------------------------- codes


def test_protect_shapes_and_normalisation(faces: np.ndarray) -> None:
    key = ProjectionKey.from_secret(bytes(32), 128, 2048)
    codes = protect(faces, key)
    assert codes.shape == (len(faces), 256) and codes.dtype == np.uint8
    assert np.array_equal(protect(faces * 7.5, key), codes)  # scale does not matter
    assert np.array_equal(protect(faces[3], key), codes[3:4])
    assert np.array_equal(protect(faces.astype(np.float32).tolist()[:5], key)[0], codes[0])
    # bits are the signs of the projection, packed most significant bit first
    signs = (faces[0] / np.linalg.norm(faces[0])) @ key.matrix.T > 0
    assert np.array_equal(np.unpackbits(codes[0]).astype(bool), signs)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((2, 128)), np.ones((2, 127)), np.full((1, 128), np.nan), np.ones((2, 2, 128)),
     np.full((1, 128), 1e200)],  # the last one's norm overflows: its unit row would be zeros
)  # fmt: skip
def test_protect_refuses_unusable_embeddings(bad: np.ndarray) -> None:
    key = ProjectionKey.from_secret(bytes(32), 128, 2048)
    with pytest.raises(TemplateError):
        protect(bad, key)
    with pytest.raises(TemplateError):
        protect(np.array([["a"] * 128]), key)


def test_hamming_fraction_estimates_the_angle(faces: np.ndarray) -> None:
    """The scheme's premise: P(bit differs) = angle / pi, so distances track cosines."""
    key = ProjectionKey.from_secret(hashlib.sha256(b"angle").digest(), 128, 8192)
    first, second = faces[0::2], faces[1::2]
    fraction = paired_hamming(protect(first, key), protect(second, key), 8192) / 8192
    angle = np.arccos(np.clip(np.einsum("ij,ij->i", first, second), -1, 1)) / np.pi
    assert abs(float(fraction.mean() - angle.mean())) < 0.005
    assert float(np.abs(fraction - angle).max()) < 0.03  # about 5 standard deviations
    # the prefix is a code of its own: the same estimate, four times noisier than 8192 bits
    short = paired_hamming(
        search_prefix(protect(first, key), 8192), search_prefix(protect(second, key), 8192), 512
    )
    assert float(np.abs(short / 512 - angle).max()) < 0.11
    assert float(np.abs(short / 512 - angle).std()) > 1.5 * float(np.abs(fraction - angle).std())


def test_codes_are_nested_the_prefix_is_the_first_blocks(faces: np.ndarray) -> None:
    key = ProjectionKey.from_secret(hashlib.sha256(b"nested").digest(), 128, 4096)
    codes = protect(faces, key)
    prefix = search_prefix(codes, 4096)
    assert prefix.shape == (len(faces), biohash.SEARCH_BITS // 8) and prefix.flags.c_contiguous
    signs = normalise(faces, 128) @ key.matrix[: biohash.SEARCH_BITS].T > 0
    assert np.array_equal(np.unpackbits(prefix, axis=1).astype(bool), signs)
    with pytest.raises(TemplateError):
        search_prefix(codes[:, :100], 4096)


def test_hamming_helpers_agree_with_unpacked_bits() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (7, 32), dtype=np.uint8)
    b = rng.integers(0, 256, (5, 32), dtype=np.uint8)
    by_hand = np.array([[int((np.unpackbits(x) != np.unpackbits(y)).sum()) for y in b] for x in a])
    assert np.array_equal(hamming_distances(a, b, 256), by_hand)
    assert np.array_equal(paired_hamming(a[:5], b, 256), np.diag(by_hand[:5]))
    assert hamming_distances(a[0].tobytes(), a, 256)[0, 0] == 0
    with pytest.raises(TemplateError):
        hamming_distances(a, b[:, :16], 256)
    with pytest.raises(TemplateError):
        paired_hamming(a, b, 256)


# --------------------------------------------------------------------------- unlinkability


def test_codes_under_different_pairwise_keys_disagree_on_half_their_bits(
    nodes: dict[str, tuple[bytes, bytes]], faces: np.ndarray
) -> None:
    for_cri = ProjectionKey.from_secret(secret(nodes, "PAN", "CRI", 1), 128, 2048)
    for_hnd = ProjectionKey.from_secret(secret(nodes, "PAN", "HND", 1), 128, 2048)
    next_epoch = ProjectionKey.from_secret(secret(nodes, "PAN", "CRI", 2), 128, 2048)
    codes = protect(faces, for_cri)
    for other in (for_hnd, next_epoch):
        fraction = paired_hamming(codes, protect(faces, other), 2048) / 2048
        assert 0.45 <= float(fraction.mean()) <= 0.55
        assert float(((fraction >= 0.45) & (fraction <= 0.55)).mean()) > 0.9
    # the same person under the same key stays close: that is what makes matching work
    mates = paired_hamming(codes[0::2], codes[1::2], 2048) / 2048
    assert float(mates.mean()) < 0.3
