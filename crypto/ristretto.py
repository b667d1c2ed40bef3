"""Typed, checked access to the ristretto255 group (RFC 9496) through libsodium.

Why a wrapper: PyNaCl does not expose ristretto255, so the group comes from ``rbcl`` (which
bundles libsodium). ``rbcl`` is untyped and reports failures as ``RuntimeError`` /
``TypeError``; this module gives the rest of :mod:`crypto` plain ``bytes`` in and out, full type
hints, and failures from :mod:`crypto.errors`, so no other module imports ``rbcl``.

Invariants:
* Elements are 32-byte canonical encodings; scalars are 32-byte little-endian integers
  strictly below the group order :data:`ORDER`. Scalar arithmetic is done on Python ``int``
  (``*_int`` helpers) because it is faster there than a round trip through libsodium.
* :func:`check_element` is the one gate for an element received from a peer: it rejects
  non-canonical encodings, points outside the prime-order group and the identity, all with
  :class:`InvalidPointError`.
* The libsodium bundled by ``rbcl`` (1.0.18) ignores bit 255 when it checks that an encoding is
  canonical, so ``s`` and ``s + 2^255`` would both decode to the same element. RFC 9496 requires
  rejecting the latter; :func:`check_element` and :func:`mult` test that bit themselves.
* :func:`mult` also rejects such inputs (libsodium decodes before multiplying and refuses an
  identity result), so a hot loop that multiplies a received element at once may skip
  :func:`check_element` without weakening the check. It raises for a zero scalar; only
  :func:`mult_allow_zero` / :func:`base_mult_allow_zero` accept zero and then return the
  identity encoding, as proof verification needs for adversarial scalars.
"""

from __future__ import annotations

import contextlib
import os
import sys

import rbcl

from crypto.errors import EncodingError, InvalidPointError

# rbcl writes its bundled libsodium to a new temporary file at every import and never deletes
# it (2.8 MB per process: every CLI run and filter worker leaked one). The library stays mapped
# once loaded, so the file can go at once.
with contextlib.suppress(OSError, AttributeError, KeyError):
    os.unlink(sys.modules["rbcl._sodium"].lib_path)

ELEMENT_SIZE = 32
SCALAR_SIZE = 32
UNIFORM_SIZE = 64  # input length of the one-way map (RFC 9496 section 4.3.4)

#: The order of the prime-order ristretto255 group, 2^252 + 27742317777372353535851937790883648493.
ORDER = (1 << 252) + 27742317777372353535851937790883648493

#: The encoding of the identity element (all zeroes); never acceptable from a peer.
IDENTITY = bytes(ELEMENT_SIZE)

_is_valid_point = rbcl.crypto_core_ristretto255_is_valid_point
_from_hash = rbcl.crypto_core_ristretto255_from_hash
_add = rbcl.crypto_core_ristretto255_add
_mult = rbcl.crypto_scalarmult_ristretto255
_base = rbcl.crypto_scalarmult_ristretto255_base
_mult0 = rbcl.crypto_scalarmult_ristretto255_allow_scalar_zero
_base0 = rbcl.crypto_scalarmult_ristretto255_base_allow_scalar_zero
_scalar_random = rbcl.crypto_core_ristretto255_scalar_random


def check_element(encoded: bytes) -> bytes:
    """Return ``encoded`` if it is a canonical, non-identity group element; raise otherwise."""
    if not isinstance(encoded, bytes) or len(encoded) != ELEMENT_SIZE:
        raise InvalidPointError(f"a ristretto255 element is {ELEMENT_SIZE} bytes")
    if encoded == IDENTITY:
        raise InvalidPointError("the identity element is not acceptable")
    if encoded[31] & 0x80 or not _is_valid_point(encoded):
        raise InvalidPointError("not a canonical ristretto255 encoding")
    return encoded


def from_uniform(uniform: bytes) -> bytes:
    """The ristretto255 one-way map of 64 uniform bytes (``hash_to_ristretto255`` core)."""
    if len(uniform) != UNIFORM_SIZE:
        raise EncodingError(f"the one-way map takes {UNIFORM_SIZE} bytes")
    return bytes(_from_hash(uniform))


def add(p: bytes, q: bytes) -> bytes:
    """``p + q`` for two valid encodings (the identity is allowed)."""
    return bytes(_add(p, q))


def mult(scalar: bytes, element: bytes) -> bytes:
    """``scalar * element``; raise :class:`InvalidPointError` for an unusable element.

    libsodium refuses an element that is not a canonical group encoding and a product equal to
    the identity; with a non-zero scalar below :data:`ORDER` the latter happens exactly when the
    element is the identity, so both cases are an invalid element.
    """
    if len(element) != ELEMENT_SIZE:
        raise InvalidPointError(f"a ristretto255 element is {ELEMENT_SIZE} bytes")
    if element[31] & 0x80:
        raise InvalidPointError("not a canonical ristretto255 encoding (bit 255 set)")
    try:
        return bytes(_mult(scalar, element))
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InvalidPointError("not a valid non-identity ristretto255 element") from exc


def mult_allow_zero(scalar: bytes, element: bytes) -> bytes:
    """``scalar * element`` where a zero scalar yields the identity; ``element`` must be valid."""
    return bytes(_mult0(scalar, element))


def base_mult(scalar: bytes) -> bytes:
    """``scalar * G`` for a non-zero scalar below :data:`ORDER`."""
    try:
        return bytes(_base(scalar))
    except RuntimeError as exc:
        raise EncodingError("scalar must be non-zero and below the group order") from exc


def base_mult_allow_zero(scalar: bytes) -> bytes:
    """``scalar * G`` where a zero scalar yields the identity."""
    return bytes(_base0(scalar))


def random_scalar() -> bytes:
    """A uniformly random non-zero scalar from libsodium's CSPRNG."""
    return bytes(_scalar_random())


def scalar_to_int(encoded: bytes) -> int:
    """Decode a canonical scalar; raise :class:`EncodingError` if it is not one."""
    if len(encoded) != SCALAR_SIZE:
        raise EncodingError(f"a ristretto255 scalar is {SCALAR_SIZE} bytes")
    value = int.from_bytes(encoded, "little")
    if value >= ORDER:
        raise EncodingError("scalar is not reduced modulo the group order")
    return value


def int_to_scalar(value: int) -> bytes:
    """Encode ``value mod ORDER`` as a 32-byte little-endian scalar."""
    return (value % ORDER).to_bytes(SCALAR_SIZE, "little")


def batch_invert_int(values: list[int]) -> list[int]:
    """Inverses modulo :data:`ORDER` of non-zero ``values`` with a single modular inversion.

    Montgomery's trick: three multiplications per value and one inversion in total, which is
    several times cheaper than inverting each value on its own.
    """
    count = len(values)
    if count == 0:
        return []
    prefix = [0] * count
    acc = 1
    for i, value in enumerate(values):
        prefix[i] = acc
        acc = acc * value % ORDER
    if acc == 0:
        raise EncodingError("cannot invert a zero scalar")
    inv = pow(acc, -1, ORDER)
    out = [0] * count
    for i in range(count - 1, -1, -1):
        out[i] = inv * prefix[i] % ORDER
        inv = inv * values[i] % ORDER
    return out
