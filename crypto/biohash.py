"""Biometric template protection: pairwise keys and keyed random projections to binary codes.

Why: a face embedding is fuzzy, so it cannot be OPRF-hashed like a document number (DESIGN
section 8). Instead each node turns its embeddings into *protected codes*: the signs of a keyed
random projection (the BioHashing family). Two captures of one person land at a small Hamming
distance because the probability that a random hyperplane separates two vectors is their angle
over pi; without the key, a code is a string of bits that cannot be compared with anything.
The key is *pairwise*: the querier and the holder derive it from their X25519 keys, both
countries' codes and an epoch, so

* the codes one holder keeps for peer A and for peer B are unlinkable (independent projections);
* rotating the epoch revokes every code of the pair at once (renewability, ISO/IEC 24745).

The holder shares the key and therefore can compare, and approximately invert, what it is sent;
see ``docs/biometrics.md`` for what that means.

Why codes are long (format 2): the Hamming fraction of an n-bit sign code estimates the angle
with a standard deviation of about sqrt(p(1 - p) / n). At 512 bits that noise alone made the
protected matcher reject several times more genuine pairs than the raw cosine on clean
captures; at 4096-8192 bits it costs little. Scanning a million long codes would break the
latency budget, so a code is *nested*: its first :data:`SEARCH_BITS` bits (the first blocks of
the same projection) are the short code a flat index scans for a shortlist, and the full code
re-scores that shortlist (:mod:`node.biometrics.gallery`). Longer codes carry more about the
template: a key holder rebuilds it more faithfully (docs/biometrics.md, threat model).

Scheme (version 2; format 1 was the same with DOMAIN ``.../v1`` and 256-1024-bit codes, whose
codes and keys are refused, never mixed):

1. :func:`pairwise_secret` = HKDF-SHA256(IKM = X25519(mine, peer), salt = :data:`DOMAIN`,
   info = DOMAIN, the two ISO3 codes in sorted order, each followed by that node's X25519
   public key, then the epoch as 8 big-endian bytes) -> 32 bytes. Both nodes compute the same.
2. :meth:`ProjectionKey.from_secret` expands SHAKE-256(DOMAIN, secret, dim, bits, orthonormal)
   into ``bits x dim`` standard normal entries by Box-Muller on 53-bit uniforms, optionally
   orthonormalises them in blocks of ``dim`` rows (Gram-Schmidt in row order, so the result is
   unique: the Q of the QR whose R has a positive diagonal), and sets every threshold to 0.
3. :func:`protect` L2-normalises each embedding, projects it and packs ``projection > 0`` into
   ``bits / 8`` bytes (bit ``i`` is bit ``7 - i % 8`` of byte ``i // 8``, numpy's default).

Invariants:
* Everything is deterministic from the secret and the parameters. The matrix comes from
  SHAKE-256 output, not from numpy's samplers, whose streams numpy does not promise to keep
  across versions; the only platform dependence left is last-place rounding of ``log``, ``cos``
  and the orthonormalisation, which can flip only bits whose projection is within ~1e-15 of zero.
* Codes are nested: bit ``i`` depends only on row ``i`` of the matrix, so the first
  :data:`SEARCH_BITS` bits of a code (:func:`search_prefix`) are a code of their own under the
  same key, comparable by Hamming distance like the whole.
* Keys never appear in ``repr``; :attr:`ProjectionKey.key_id` names a key without revealing it.
* Bad key bytes raise :class:`~crypto.errors.EncodingError` or :class:`~crypto.errors.KeyError_`;
  unusable embeddings or codes raise :class:`TemplateError`; unsupported parameters (code
  length, dimension, epoch, country codes) raise ``ValueError``, they are programming errors.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crypto.errors import CryptoError, EncodingError, KeyError_

DOMAIN = b"crm-enlace/biohash/v2"
FORMAT_VERSION = 2
SUPPORTED_BITS = (2048, 4096, 8192)
LEGACY_BITS = (256, 512, 1024)  # format 1 lengths: refused with a message that says so
DEFAULT_BITS = 4096
SEARCH_BITS = 512  # the prefix of every code that the flat index scans
DEFAULT_DIMENSION = 128
MAX_DIMENSION = 4096
SECRET_SIZE = 32
X25519_KEY_SIZE = 32
MAX_EPOCH = (1 << 63) - 1

Codes = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float64]
_PROJECT_ELEMENTS = 1 << 20  # projections computed at once by protect()
_ISO3 = re.compile(r"^[A-Z]{3}$")
# bits set in each byte value (numpy < 2 has no bitwise_count)
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


class TemplateError(CryptoError):
    """An embedding or a code that cannot be protected or compared (shape, dimension, values)."""


# --------------------------------------------------------------------------- pairwise secret


def _public_bytes(private: x25519.X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def pairwise_secret(
    my_x25519_private: bytes,
    peer_x25519_public: bytes,
    *,
    me: str,
    peer: str,
    epoch: int,
) -> bytes:
    """The 32-byte secret that ``me`` and ``peer`` share for biometric codes in ``epoch``.

    Symmetric by construction: the codes and public keys enter the KDF in the sorted order of
    the ISO3 codes, never in "mine first" order, so both nodes derive the same bytes.
    """
    for name, code in (("me", me), ("peer", peer)):
        if not _ISO3.match(code):
            raise ValueError(f"{name} must be an ISO 3166 alpha-3 code, got {code!r}")
    if me == peer:
        raise ValueError("a pairwise secret needs two different nodes")
    if isinstance(epoch, bool) or not 0 <= epoch <= MAX_EPOCH:
        raise ValueError(f"epoch must be an integer in [0, 2**63), got {epoch!r}")
    if len(my_x25519_private) != X25519_KEY_SIZE:
        raise EncodingError(f"X25519 private key must be 32 bytes, got {len(my_x25519_private)}")
    if len(peer_x25519_public) != X25519_KEY_SIZE:
        raise EncodingError(f"X25519 public key must be 32 bytes, got {len(peer_x25519_public)}")
    private = x25519.X25519PrivateKey.from_private_bytes(my_x25519_private)
    public = x25519.X25519PublicKey.from_public_bytes(peer_x25519_public)
    try:
        shared = private.exchange(public)
    except ValueError as exc:  # all-zero output: a low-order point was offered as the key
        raise KeyError_(f"the X25519 public key of {peer} is a low-order point") from exc
    parties = sorted([(me, _public_bytes(private)), (peer, peer_x25519_public)])
    info = DOMAIN + b"".join(code.encode("ascii") + key for code, key in parties)
    info += struct.pack(">Q", epoch)
    return HKDF(algorithm=hashes.SHA256(), length=SECRET_SIZE, salt=DOMAIN, info=info).derive(
        shared
    )


# --------------------------------------------------------------------------- projection key


def check_bits(bits: int) -> None:
    """Raise ``ValueError`` unless ``bits`` is a code length of this format."""
    if bits in SUPPORTED_BITS:
        return
    if bits in LEGACY_BITS:
        raise ValueError(
            f"code length {bits} belongs to biometric code format 1, which is no longer "
            f"accepted; format {FORMAT_VERSION} codes have {SUPPORTED_BITS} bits"
        )
    raise ValueError(f"code length must be one of {SUPPORTED_BITS}, got {bits}")


def _gaussians(seed_material: bytes, count: int) -> Floats:
    """``count`` standard normal values from SHAKE-256 (Box-Muller on 53-bit uniforms)."""
    pairs = (count + 1) // 2
    stream = hashlib.shake_256(seed_material).digest(16 * pairs)
    words = np.frombuffer(stream, dtype=">u8").astype(np.uint64).reshape(pairs, 2)
    uniforms = ((words >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53  # in (0, 1)
    radius = np.sqrt(-2.0 * np.log(uniforms[:, 0]))
    angle = 2.0 * math.pi * uniforms[:, 1]
    out = np.empty((pairs, 2), dtype=np.float64)
    out[:, 0] = radius * np.cos(angle)
    out[:, 1] = radius * np.sin(angle)
    return out.ravel()[:count]


def _orthonormal_blocks(gaussian: Floats, dim: int) -> Floats:
    """Rows made orthonormal within each block of ``dim`` rows (a random rotation per block).

    Classical Gram-Schmidt applied twice per row: the same rows as a QR with a positive
    diagonal, without LAPACK, whose threaded QR stalls on a busy machine for such small blocks.
    """
    out = np.empty_like(gaussian)
    for start in range(0, gaussian.shape[0], dim):
        stop = min(start + dim, gaussian.shape[0])
        for row in range(start, stop):
            vector = gaussian[row]
            done = out[start:row]
            for _ in range(2):
                vector = vector - (done @ vector) @ done
            out[row] = vector / np.linalg.norm(vector)
    return out


@dataclass(frozen=True, eq=False, repr=False)
class ProjectionKey:
    """A keyed projection ``bits x dim`` with its thresholds; build with :meth:`from_secret`."""

    dim: int
    bits: int
    orthonormal: bool
    key_id: str
    matrix: Floats = field(compare=False)
    thresholds: Floats = field(compare=False)

    @classmethod
    def from_secret(
        cls,
        secret: bytes,
        dim: int = DEFAULT_DIMENSION,
        bits: int = DEFAULT_BITS,
        *,
        orthonormal: bool = True,
    ) -> ProjectionKey:
        """Expand ``secret`` deterministically; different ``dim``/``bits`` give unrelated keys."""
        if len(secret) != SECRET_SIZE:
            raise KeyError_(f"projection secret must be {SECRET_SIZE} bytes, got {len(secret)}")
        check_bits(bits)
        if not 2 <= dim <= MAX_DIMENSION:
            raise ValueError(f"embedding dimension must be in [2, {MAX_DIMENSION}], got {dim}")
        params = struct.pack(">IIB", dim, bits, int(orthonormal))
        material = DOMAIN + b"\x00matrix\x00" + secret + params
        matrix = _gaussians(material, bits * dim).reshape(bits, dim)
        if orthonormal:
            matrix = _orthonormal_blocks(matrix, dim)
        matrix.setflags(write=False)
        thresholds = np.zeros(bits, dtype=np.float64)
        thresholds.setflags(write=False)
        key_id = hashlib.sha256(DOMAIN + b"\x00key-id\x00" + secret + params).hexdigest()[:16]
        return cls(dim, bits, orthonormal, key_id, matrix, thresholds)

    @property
    def code_bytes(self) -> int:
        return self.bits // 8

    def __repr__(self) -> str:  # never print key material
        return (
            f"ProjectionKey(key_id={self.key_id!r}, dim={self.dim}, bits={self.bits}, "
            f"orthonormal={self.orthonormal})"
        )


# --------------------------------------------------------------------------- protection


def normalise(embeddings: npt.ArrayLike, dim: int) -> Floats:
    """Embeddings as a float64 ``(n, dim)`` array of unit rows; raises on unusable input."""
    array: npt.NDArray[Any] = np.asarray(embeddings)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != dim:
        raise TemplateError(f"embeddings must have shape (n, {dim}), got {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise TemplateError(f"embeddings must be real numbers, got dtype {array.dtype}")
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        raise TemplateError("embeddings contain NaN or infinite values")
    with np.errstate(over="ignore"):
        norms = np.linalg.norm(values, axis=1, keepdims=True)
    if (norms == 0.0).any():
        raise TemplateError("an embedding is the zero vector")
    if not np.isfinite(norms).all():  # values near 1e200: the unit row would be all zeros
        raise TemplateError("an embedding's values are too large (its norm overflows)")
    normalised: Floats = values / norms
    return normalised


def protect(embeddings: npt.ArrayLike, key: ProjectionKey) -> Codes:
    """Packed codes ``(n, bits/8)`` uint8 for a batch (a single vector gives one row)."""
    unit = normalise(embeddings, key.dim)
    codes: Codes = np.empty((unit.shape[0], key.code_bytes), dtype=np.uint8)
    step = max(1, _PROJECT_ELEMENTS // key.bits)  # bounded temporaries for long codes
    for start in range(0, unit.shape[0], step):
        signs = (unit[start : start + step] @ key.matrix.T) > key.thresholds
        codes[start : start + step] = np.packbits(signs, axis=1)
    return codes


def as_codes(codes: npt.ArrayLike, bits: int) -> Codes:
    """``codes`` as a C-contiguous uint8 ``(n, bits/8)`` array (bytes give one row)."""
    raw = np.frombuffer(codes, dtype=np.uint8) if isinstance(codes, bytes) else codes
    array: npt.NDArray[Any] = np.asarray(raw)
    if array.ndim == 1:
        array = array[None, :]
    if array.dtype != np.uint8 or array.ndim != 2 or array.shape[1] != bits // 8:
        raise TemplateError(
            f"codes must be uint8 of shape (n, {bits // 8}), got {array.dtype} {array.shape}"
        )
    contiguous: Codes = np.ascontiguousarray(array)
    return contiguous


def search_prefix(codes: npt.ArrayLike, bits: int) -> Codes:
    """The first :data:`SEARCH_BITS` bits of each code: the short code of the first stage."""
    full = as_codes(codes, bits)
    prefix: Codes = np.ascontiguousarray(full[:, : SEARCH_BITS // 8])
    return prefix


def hamming_distances(a: npt.ArrayLike, b: npt.ArrayLike, bits: int) -> npt.NDArray[np.int64]:
    """All pairwise Hamming distances ``(len(a), len(b))`` between packed codes (pure numpy)."""
    left, right = as_codes(a, bits), as_codes(b, bits)
    out = np.empty((left.shape[0], right.shape[0]), dtype=np.int64)
    step = max(1, (1 << 22) // max(1, right.shape[0] * right.shape[1]))
    for start in range(0, left.shape[0], step):
        chunk = left[start : start + step, None, :] ^ right[None, :, :]
        out[start : start + step] = _POPCOUNT[chunk].sum(axis=2, dtype=np.int64)
    return out


def paired_hamming(a: npt.ArrayLike, b: npt.ArrayLike, bits: int) -> npt.NDArray[np.int64]:
    """Hamming distance between row ``i`` of ``a`` and row ``i`` of ``b``."""
    left, right = as_codes(a, bits), as_codes(b, bits)
    if left.shape != right.shape:
        raise TemplateError(f"paired codes differ in shape: {left.shape} and {right.shape}")
    distances: npt.NDArray[np.int64] = _POPCOUNT[left ^ right].sum(axis=1, dtype=np.int64)
    return distances
