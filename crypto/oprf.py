"""RFC 9497 (V)OPRF over ristretto255 with SHA-512, modes 0x00 (OPRF) and 0x01 (VOPRF).

Why: identity matching (DESIGN section 7) must let a querier learn ``PRF(k, key)`` for its own
document keys without the holder learning the keys, and without the querier learning ``k``.
The holder builds its filter with :meth:`OprfServerKey.evaluate` (no blinding needed for its
own records); a querier runs :func:`blind` -> holder :meth:`OprfServerKey.blind_evaluate` ->
:func:`finalize`, and both arrive at the same 64-byte output. In VOPRF mode the holder also
proves, with one batched DLEQ proof, that every evaluation used the key behind its published
public key, so it cannot single out a query with a different key.

The API is batched-first and speaks only ``bytes``: elements and scalars are their 32-byte
encodings (see :mod:`crypto.ristretto`), outputs are 64 bytes, proofs are ``c || s`` (64 bytes).

Invariants:
* Every element received from the other party (blinded elements at the server; evaluated
  elements and the public key at the client) is rejected with
  :class:`~crypto.errors.InvalidPointError` if it is the identity or not a canonical encoding.
* Secret keys and blinds are canonical, non-zero scalars; :class:`OprfServerKey` refuses any
  other secret with :class:`~crypto.errors.KeyError_`.
* A proof that does not verify raises :class:`~crypto.errors.VerificationError`; a malformed one
  raises :class:`~crypto.errors.EncodingError`. Nothing here returns a boolean verdict.
* Inputs are at most 65535 bytes (their length is framed on two bytes), batches with a proof at
  most 65535 elements (the composite index is framed on two bytes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property

from crypto import ristretto as r255
from crypto.errors import (
    CryptoError,
    EncodingError,
    InvalidPointError,
    KeyError_,
    VerificationError,
)

SUITE_ID = b"ristretto255-SHA512"
OUTPUT_SIZE = 64
PROOF_SIZE = 2 * r255.SCALAR_SIZE
SEED_SIZE = 32
MAX_INPUT_SIZE = 0xFFFF
MAX_PROOF_BATCH = 0xFFFF

_HASH_BLOCK = 128  # SHA-512 input block size (s_in_bytes in RFC 9380)
_HASH_SIZE = 64  # SHA-512 output size (b_in_bytes in RFC 9380)
_ZERO_PAD_STATE = hashlib.sha512(bytes(_HASH_BLOCK))  # absorbed Z_pad, copied per call
_ELEMENT_LEN = r255.ELEMENT_SIZE.to_bytes(2, "big")


class Mode(IntEnum):
    """Protocol variants of RFC 9497 implemented here (POPRF, 0x02, is not)."""

    OPRF = 0x00
    VOPRF = 0x01


def context_string(mode: int) -> bytes:
    """``"OPRFV1-" || I2OSP(mode, 1) || "-" || identifier`` (RFC 9497 section 3.1)."""
    return b"OPRFV1-" + bytes([_mode(mode)]) + b"-" + SUITE_ID


def expand_message_xmd(msg: bytes, dst: bytes, length: int) -> bytes:
    """expand_message_xmd of RFC 9380 section 5.3.1 instantiated with SHA-512."""
    if not dst:
        raise EncodingError("expand_message_xmd needs a non-empty domain separation tag")
    if len(dst) > 255:
        dst = hashlib.sha512(b"H2C-OVERSIZE-DST-" + dst).digest()
    ell = -(-length // _HASH_SIZE)
    if length <= 0 or ell > 255 or length > 0xFFFF:
        raise EncodingError(f"expand_message_xmd cannot produce {length} bytes")
    dst_prime = dst + bytes([len(dst)])
    state = _ZERO_PAD_STATE.copy()
    state.update(msg + length.to_bytes(2, "big") + b"\x00" + dst_prime)
    b_0 = state.digest()
    b_i = hashlib.sha512(b_0 + b"\x01" + dst_prime).digest()
    blocks = [b_i]
    b_0_int = int.from_bytes(b_0, "big")
    for i in range(2, ell + 1):
        mixed = (b_0_int ^ int.from_bytes(b_i, "big")).to_bytes(_HASH_SIZE, "big")
        b_i = hashlib.sha512(mixed + bytes([i]) + dst_prime).digest()
        blocks.append(b_i)
    return b"".join(blocks)[:length]


class _Expander:
    """expand_message_xmd for one DST and exactly 64 output bytes (one block), precomputed."""

    __slots__ = ("_first_tail", "_second_tail")

    def __init__(self, dst: bytes) -> None:
        if not 0 < len(dst) <= 255:
            raise ValueError("the suite DSTs are short")
        dst_prime = dst + bytes([len(dst)])
        self._first_tail = _HASH_SIZE.to_bytes(2, "big") + b"\x00" + dst_prime
        self._second_tail = b"\x01" + dst_prime

    def expand64(self, msg: bytes) -> bytes:
        state = _ZERO_PAD_STATE.copy()
        state.update(msg)
        state.update(self._first_tail)
        return hashlib.sha512(state.digest() + self._second_tail).digest()

    def scalar(self, msg: bytes) -> int:
        """HashToScalar: 64 uniform bytes read little-endian and reduced modulo the order."""
        return int.from_bytes(self.expand64(msg), "little") % r255.ORDER


class _Suite:
    """The per-mode constants of ristretto255-SHA512: context string and derived DSTs."""

    __slots__ = ("context", "derive_key", "seed_dst", "to_group", "to_scalar")

    def __init__(self, mode: Mode) -> None:
        self.context = b"OPRFV1-" + bytes([mode]) + b"-" + SUITE_ID
        self.to_group = _Expander(b"HashToGroup-" + self.context)
        self.to_scalar = _Expander(b"HashToScalar-" + self.context)
        self.derive_key = _Expander(b"DeriveKeyPair" + self.context)
        self.seed_dst = b"Seed-" + self.context

    def hash_to_group(self, msg: bytes) -> bytes:
        element = r255.from_uniform(self.to_group.expand64(msg))
        if element == r255.IDENTITY:  # probability ~2^-252, but the RFC requires the check
            raise InvalidPointError("input hashes to the identity element")
        return element


_SUITES = {mode: _Suite(mode) for mode in Mode}


def _mode(mode: int) -> Mode:
    try:
        return Mode(mode)
    except ValueError:
        raise CryptoError(f"unsupported OPRF mode {mode!r}; only 0 and 1 exist here") from None


def _suite(mode: int) -> _Suite:
    return _SUITES[_mode(mode)]


def hash_to_group(msg: bytes, mode: int = Mode.OPRF) -> bytes:
    """HashToGroup of the suite: an element whose discrete log nobody knows."""
    return _suite(mode).hash_to_group(msg)


def hash_to_scalar(msg: bytes, mode: int = Mode.OPRF) -> bytes:
    """HashToScalar of the suite with its default ``"HashToScalar-"`` DST."""
    return r255.int_to_scalar(_suite(mode).to_scalar.scalar(msg))


def _check_input(data: bytes) -> None:
    if len(data) > MAX_INPUT_SIZE:
        raise EncodingError(f"OPRF input is {len(data)} bytes; at most {MAX_INPUT_SIZE} allowed")


def _finalize_hash(data: bytes, element: bytes) -> bytes:
    """``Hash(I2OSP(len(input), 2) || input || I2OSP(32, 2) || element || "Finalize")``."""
    return hashlib.sha512(
        len(data).to_bytes(2, "big") + data + _ELEMENT_LEN + element + b"Finalize"
    ).digest()


def _nonzero_scalar(encoded: bytes, what: str) -> int:
    value = r255.scalar_to_int(encoded)
    if value == 0:
        raise EncodingError(f"{what} must not be the zero scalar")
    return value


def derive_key_pair(seed: bytes, info: bytes, mode: int = Mode.OPRF) -> tuple[bytes, bytes]:
    """DeriveKeyPair (RFC 9497 section 3.2.1): ``(secret scalar, public element)``.

    Deterministic in ``(seed, info, mode)``, so a holder can re-create the key of a dataset and
    epoch from one stored seed; ``info`` names the dataset and epoch.
    """
    suite = _suite(mode)
    if len(seed) != SEED_SIZE:
        raise KeyError_(f"DeriveKeyPair seed must be {SEED_SIZE} bytes, got {len(seed)}")
    if len(info) > 0xFFFF:
        raise KeyError_("DeriveKeyPair info is longer than 65535 bytes")
    derive_input = seed + len(info).to_bytes(2, "big") + info
    for counter in range(256):
        secret = suite.derive_key.scalar(derive_input + bytes([counter]))
        if secret != 0:
            encoded = r255.int_to_scalar(secret)
            return encoded, r255.base_mult(encoded)
    raise KeyError_("DeriveKeyPair found no non-zero scalar")  # pragma: no cover - 2^-2000


# --------------------------------------------------------------------------- DLEQ proofs


def _composite_weights(
    suite: _Suite, public_key: bytes, blinded: Sequence[bytes], evaluated: Sequence[bytes]
) -> list[bytes]:
    """The scalars ``d_i`` of ComputeComposites: hashes binding each pair to its position."""
    seed = hashlib.sha512(
        _ELEMENT_LEN + public_key + len(suite.seed_dst).to_bytes(2, "big") + suite.seed_dst
    ).digest()
    prefix = _HASH_SIZE.to_bytes(2, "big") + seed
    scalar = suite.to_scalar.scalar
    return [
        r255.int_to_scalar(
            scalar(
                prefix
                + i.to_bytes(2, "big")
                + _ELEMENT_LEN
                + c_i
                + _ELEMENT_LEN
                + d_i
                + b"Composite"
            )
        )
        for i, (c_i, d_i) in enumerate(zip(blinded, evaluated, strict=True))
    ]


def _weighted_sum(weights: Sequence[bytes], elements: Sequence[bytes]) -> bytes:
    """``sum(w_i * E_i)`` over already validated elements (a zero weight contributes nothing)."""
    total = r255.IDENTITY
    for weight, element in zip(weights, elements, strict=True):
        total = r255.add(total, r255.mult_allow_zero(weight, element))
    return total


def _challenge(suite: _Suite, *elements: bytes) -> int:
    """The Fiat-Shamir challenge over ``B, M, Z, t2, t3`` (each length-framed)."""
    transcript = b"".join(_ELEMENT_LEN + part for part in elements)
    return suite.to_scalar.scalar(transcript + b"Challenge")


def _check_batch(blinded: Sequence[bytes], evaluated: Sequence[bytes]) -> None:
    if len(blinded) != len(evaluated):
        raise EncodingError(f"{len(blinded)} blinded but {len(evaluated)} evaluated elements")
    if not 0 < len(blinded) <= MAX_PROOF_BATCH:
        raise EncodingError(f"a proof covers 1..{MAX_PROOF_BATCH} elements, not {len(blinded)}")


def verify_proof(
    public_key: bytes, blinded: Sequence[bytes], evaluated: Sequence[bytes], proof: bytes
) -> None:
    """VerifyProof for VOPRF: ``log_G(public_key) == log_{C_i}(D_i)`` for every ``i``.

    Raises :class:`VerificationError` when the proof does not hold, :class:`EncodingError`
    (or its :class:`InvalidPointError`) when anything received is malformed.
    """
    suite = _SUITES[Mode.VOPRF]
    _check_batch(blinded, evaluated)
    r255.check_element(public_key)
    for element in blinded:
        r255.check_element(element)
    for element in evaluated:
        r255.check_element(element)
    if len(proof) != PROOF_SIZE:
        raise EncodingError(f"a proof is {PROOF_SIZE} bytes, got {len(proof)}")
    c_bytes, s_bytes = proof[: r255.SCALAR_SIZE], proof[r255.SCALAR_SIZE :]
    c = r255.scalar_to_int(c_bytes)
    r255.scalar_to_int(s_bytes)
    weights = _composite_weights(suite, public_key, blinded, evaluated)
    m = _weighted_sum(weights, blinded)
    z = _weighted_sum(weights, evaluated)
    t2 = r255.add(r255.base_mult_allow_zero(s_bytes), r255.mult_allow_zero(c_bytes, public_key))
    t3 = r255.add(r255.mult_allow_zero(s_bytes, m), r255.mult_allow_zero(c_bytes, z))
    if _challenge(suite, public_key, m, z, t2, t3) != c:
        raise VerificationError("VOPRF proof does not verify for this public key and batch")


def _generate_proof(
    secret: int,
    public_key: bytes,
    blinded: Sequence[bytes],
    evaluated: Sequence[bytes],
    nonce: bytes,
) -> bytes:
    """GenerateProof with ComputeCompositesFast (the prover knows ``k``, so ``Z = k * M``)."""
    suite = _SUITES[Mode.VOPRF]
    _check_batch(blinded, evaluated)
    r = _nonzero_scalar(nonce, "proof random scalar")
    m = _weighted_sum(_composite_weights(suite, public_key, blinded, evaluated), blinded)
    z = r255.mult(r255.int_to_scalar(secret), m)
    t2 = r255.base_mult(nonce)
    t3 = r255.mult(nonce, m)
    c = _challenge(suite, public_key, m, z, t2, t3)
    return r255.int_to_scalar(c) + r255.int_to_scalar(r - c * secret)


# --------------------------------------------------------------------------- server side


@dataclass(frozen=True, repr=False)
class OprfServerKey:
    """The holder's OPRF key for one dataset and epoch (a non-zero scalar, 32 bytes LE)."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != r255.SCALAR_SIZE:
            raise KeyError_(f"OPRF secret key must be {r255.SCALAR_SIZE} bytes")
        value = int.from_bytes(self.secret, "little")
        if value == 0 or value >= r255.ORDER:
            raise KeyError_("OPRF secret key must be a non-zero scalar below the group order")

    @classmethod
    def generate(cls) -> OprfServerKey:
        """A fresh random key (for keys that need not be re-derivable)."""
        return cls(r255.random_scalar())

    @classmethod
    def derive(cls, seed: bytes, info: bytes, mode: int = Mode.OPRF) -> OprfServerKey:
        """The key DeriveKeyPair gives for ``(seed, info, mode)``."""
        return cls(derive_key_pair(seed, info, mode)[0])

    @cached_property
    def public_key(self) -> bytes:
        """``k * G``; what a VOPRF client verifies proofs against."""
        return r255.base_mult(self.secret)

    @cached_property
    def _scalar(self) -> int:
        return int.from_bytes(self.secret, "little")

    def __repr__(self) -> str:  # never print key material
        return f"OprfServerKey(public_key={self.public_key.hex()[:16]}…)"

    def blind_evaluate(self, blinded_elements: Sequence[bytes]) -> list[bytes]:
        """BlindEvaluate for a batch: ``k * C_i``; each ``C_i`` is checked before use."""
        secret, mult, identity = self.secret, r255.mult, r255.IDENTITY
        out: list[bytes] = []
        for element in blinded_elements:
            if element == identity:
                raise InvalidPointError("blinded element is the identity")
            out.append(mult(secret, element))  # mult rejects non-canonical encodings
        return out

    def blind_evaluate_verifiable(
        self, blinded_elements: Sequence[bytes], *, proof_random_scalar: bytes | None = None
    ) -> tuple[list[bytes], bytes]:
        """VOPRF BlindEvaluate: the evaluations and one DLEQ proof covering the whole batch.

        ``proof_random_scalar`` exists for the RFC test vectors only; leave it ``None``.
        """
        evaluated = self.blind_evaluate(blinded_elements)
        nonce = r255.random_scalar() if proof_random_scalar is None else proof_random_scalar
        proof = _generate_proof(self._scalar, self.public_key, blinded_elements, evaluated, nonce)
        return evaluated, proof

    def evaluate(self, value: bytes, mode: int = Mode.OPRF) -> bytes:
        """The PRF output for one of the holder's own inputs, without a blinding round trip."""
        return self.evaluate_many([value], mode)[0]

    def evaluate_many(self, values: Sequence[bytes], mode: int = Mode.OPRF) -> list[bytes]:
        """Evaluate (RFC 9497 section 3.3.1) over a batch; what the holder's filter is built of."""
        suite = _suite(mode)
        secret, mult, to_group = self.secret, r255.mult, suite.hash_to_group
        out: list[bytes] = []
        for value in values:
            _check_input(value)
            out.append(_finalize_hash(value, mult(secret, to_group(value))))
        return out


# --------------------------------------------------------------------------- client side


@dataclass(frozen=True)
class BlindState:
    """What a client keeps between :func:`blind` and finalisation (the blinds are secret)."""

    inputs: tuple[bytes, ...]
    blinds: tuple[bytes, ...] = field(repr=False)
    blinded_elements: tuple[bytes, ...]
    mode: Mode

    def finalize(self, evaluated_elements: Sequence[bytes]) -> list[bytes]:
        """:func:`finalize` for this batch (OPRF mode, or VOPRF without checking a proof)."""
        return finalize(self.inputs, self.blinds, evaluated_elements, self.mode)

    def finalize_verifiable(
        self, evaluated_elements: Sequence[bytes], proof: bytes, public_key: bytes
    ) -> list[bytes]:
        """:func:`finalize_verifiable` for this batch."""
        if self.mode is not Mode.VOPRF:
            raise CryptoError("this batch was blinded for OPRF mode; proofs need VOPRF mode")
        return finalize_verifiable(
            self.inputs,
            self.blinds,
            self.blinded_elements,
            evaluated_elements,
            proof=proof,
            public_key=public_key,
        )


def blind(
    inputs: Sequence[bytes],
    mode: int = Mode.OPRF,
    blinds: Sequence[bytes] | None = None,
    *,
    points: HashedInputs | None = None,
) -> BlindState:
    """Blind a batch: ``C_i = r_i * HashToGroup(input_i)`` with fresh random ``r_i``.

    ``blinds`` exists for the RFC test vectors only; fresh blinds are what make two queries for
    the same input unlinkable. ``points`` (from :func:`hash_inputs`, same inputs and mode)
    spares the hash when one batch is blinded for several holders: the hash is a public
    function of the input, the blinds stay fresh per call, so nothing links the batches.
    """
    suite = _suite(mode)
    if points is not None:
        if points.inputs != tuple(inputs) or points.mode != _mode(mode):
            raise EncodingError("the hashed points are not those of these inputs and mode")
        chosen = tuple(r255.random_scalar() for _ in inputs)
        blinded = tuple(r255.mult(b, p) for p, b in zip(points.points, chosen, strict=True))
        return BlindState(points.inputs, chosen, blinded, points.mode)
    for value in inputs:
        _check_input(value)
    if blinds is None:
        chosen = tuple(r255.random_scalar() for _ in inputs)
    else:
        if len(blinds) != len(inputs):
            raise EncodingError(f"{len(inputs)} inputs but {len(blinds)} blinds")
        for b in blinds:
            _nonzero_scalar(b, "blind")
        chosen = tuple(blinds)
    to_group, mult = suite.hash_to_group, r255.mult
    blinded = tuple(mult(b, to_group(x)) for x, b in zip(inputs, chosen, strict=True))
    return BlindState(tuple(inputs), chosen, blinded, _mode(mode))


@dataclass(frozen=True, repr=False)
class HashedInputs:
    """``HashToGroup`` of a batch of inputs in one mode, computed once for several :func:`blind`
    calls (a document query fanned out to ten holders hashes it once, not ten times)."""

    inputs: tuple[bytes, ...]
    points: tuple[bytes, ...]
    mode: Mode


def hash_inputs(inputs: Sequence[bytes], mode: int = Mode.OPRF) -> HashedInputs:
    """The group elements the inputs hash to (checked like :func:`blind` checks them)."""
    for value in inputs:
        _check_input(value)
    to_group = _suite(mode).hash_to_group
    return HashedInputs(tuple(inputs), tuple(to_group(x) for x in inputs), _mode(mode))


def finalize(
    inputs: Sequence[bytes],
    blinds: Sequence[bytes],
    evaluated_elements: Sequence[bytes],
    mode: int = Mode.OPRF,
) -> list[bytes]:
    """Finalize for a batch: unblind each evaluation and hash it with its input (64 bytes each).

    ``mode`` does not change the computation for modes 0 and 1; it is checked so a call for an
    unsupported mode fails instead of producing outputs that match nothing. In VOPRF mode call
    :func:`finalize_verifiable`, which checks the proof first.
    """
    _mode(mode)
    if not len(inputs) == len(blinds) == len(evaluated_elements):
        raise EncodingError(
            f"{len(inputs)} inputs, {len(blinds)} blinds, {len(evaluated_elements)} evaluations"
        )
    inverses = r255.batch_invert_int([_nonzero_scalar(b, "blind") for b in blinds])
    mult, to_scalar, identity = r255.mult, r255.int_to_scalar, r255.IDENTITY
    out: list[bytes] = []
    for value, inverse, element in zip(inputs, inverses, evaluated_elements, strict=True):
        _check_input(value)
        if element == identity:
            raise InvalidPointError("evaluated element is the identity")
        out.append(_finalize_hash(value, mult(to_scalar(inverse), element)))
    return out


def finalize_verifiable(
    inputs: Sequence[bytes],
    blinds: Sequence[bytes],
    blinded_elements: Sequence[bytes],
    evaluated_elements: Sequence[bytes],
    *,
    proof: bytes,
    public_key: bytes,
) -> list[bytes]:
    """VOPRF Finalize: :func:`verify_proof` over the batch, then :func:`finalize`."""
    verify_proof(public_key, blinded_elements, evaluated_elements, proof)
    return finalize(inputs, blinds, evaluated_elements, Mode.VOPRF)
