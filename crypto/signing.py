"""Ed25519 signing and verification (RFC 8032) with domain separation.

Why a wrapper: every signature in crm-enlace is over ``context || message`` where ``context``
names what is being signed (a request header, a response header, a directory, an agreement,
an audit checkpoint). A signature made for one purpose can then never be replayed as another.

Invariants:
* :func:`verify` raises :class:`crypto.errors.VerificationError`; it never returns a bool.
* Keys are identified by :func:`key_id` (first 16 hex digits of SHA-256 of the raw public key),
  so documents can refer to keys without carrying them.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from crypto.errors import EncodingError, VerificationError

SIGNATURE_SIZE = 64
PUBLIC_KEY_SIZE = 32
SEED_SIZE = 32


def key_id(public_key: bytes) -> str:
    """A short, stable identifier for an Ed25519 public key."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise EncodingError(f"Ed25519 public key must be 32 bytes, got {len(public_key)}")
    return hashlib.sha256(public_key).hexdigest()[:16]


def _framed(context: bytes, message: bytes) -> bytes:
    if not context or b"\n" in context:
        raise ValueError("signature context must be non-empty and contain no newline")
    return context + b"\n" + message


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key. Held in memory only by the process that signs."""

    seed: bytes

    def __post_init__(self) -> None:
        if len(self.seed) != SEED_SIZE:
            raise EncodingError(f"Ed25519 seed must be 32 bytes, got {len(self.seed)}")

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @functools.cached_property
    def _nacl(self) -> nacl.signing.SigningKey:
        # Expanding the seed costs as much as a signature; do it once per key object.
        return nacl.signing.SigningKey(self.seed)

    @functools.cached_property
    def public_key(self) -> bytes:
        return bytes(self._nacl.verify_key)

    @functools.cached_property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def sign_raw(self, message: bytes) -> bytes:
        """Plain RFC 8032 signature (used by the test vectors); prefer :meth:`sign`."""
        return self._nacl.sign(message).signature

    def sign(self, context: bytes, message: bytes) -> bytes:
        """Sign ``message`` for the purpose named by ``context``."""
        return self.sign_raw(_framed(context, message))

    def __repr__(self) -> str:  # never print key material
        return f"SigningKey(key_id={self.key_id!r})"


def verify_raw(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Verify a plain RFC 8032 signature; raise :class:`VerificationError` if it fails."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise VerificationError("public key must be 32 bytes")
    if len(signature) != SIGNATURE_SIZE:
        raise VerificationError("signature must be 64 bytes")
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError) as exc:
        raise VerificationError("Ed25519 signature does not verify") from exc


def verify(public_key: bytes, context: bytes, message: bytes, signature: bytes) -> None:
    """Verify a domain-separated signature made by :meth:`SigningKey.sign`."""
    verify_raw(public_key, _framed(context, message), signature)
