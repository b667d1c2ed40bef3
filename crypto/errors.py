"""The one exception hierarchy of :mod:`crypto`.

Every failure raised by this package derives from :class:`CryptoError`, so callers at the
edge (the node's gRPC layer, the CLI) can translate the whole family with one ``except``.
Verification functions *raise* these errors; none of them returns a boolean.

::

    CryptoError
    ├── VerificationError        a signature, MAC, proof or digest does not verify
    │   └── ThresholdError       fewer valid signatures than the threshold requires
    ├── EncodingError            bytes that are not a canonical encoding (keys, points, scalars)
    │   └── InvalidPointError    not a valid ristretto255 element, or the identity element
    ├── KeyError_                a key is missing, malformed, of the wrong kind or not valid now
    └── NormalisationError       input that cannot be normalised (e.g. a document number)
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base class of every error raised by :mod:`crypto`."""


class VerificationError(CryptoError):
    """A signature, proof or digest did not verify over the bytes given."""


class ThresholdError(VerificationError):
    """Fewer distinct valid signatures than the required threshold."""


class EncodingError(CryptoError):
    """Bytes are not the canonical encoding of the expected object."""


class InvalidPointError(EncodingError):
    """Not a canonical ristretto255 encoding, or the identity element."""


class KeyError_(CryptoError):  # noqa: N801, N818 - renamed at integration
    """A key is missing, malformed, of the wrong kind, or outside its validity window."""


class NormalisationError(CryptoError):
    """Input that cannot be brought to its canonical form."""
