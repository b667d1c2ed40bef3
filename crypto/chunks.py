"""A filter (or delta) encoding cut into stream messages and put back together, checked.

Why: ``SyncFilter`` streams encodings of up to tens of megabytes in 16–64 KiB messages (DESIGN
section 7); the receiver must not buffer more than the signed manifest announced, nor accept a
transfer that differs from it by one byte.

Invariants:
* :func:`iter_chunks` yields chunks of exactly ``chunk_size`` bytes (the last may be shorter;
  an empty encoding is one empty chunk), with ``chunk_size`` within
  :data:`MIN_CHUNK_SIZE`..:data:`MAX_CHUNK_SIZE`.
* :class:`ChunkAssembler` refuses a chunk larger than :data:`MAX_CHUNK_SIZE` or one that would
  pass the announced size (:class:`~crypto.errors.EncodingError`), and returns the encoding
  only if it is exactly the announced size and SHA-256
  (:class:`~crypto.errors.VerificationError` otherwise).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator

from crypto.errors import EncodingError, VerificationError

MIN_CHUNK_SIZE, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE = 16 * 1024, 32 * 1024, 64 * 1024


def _check_chunk_size(chunk_size: int) -> None:
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunks are {MIN_CHUNK_SIZE}..{MAX_CHUNK_SIZE} bytes, not {chunk_size}")


def iter_chunks(encoded: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
    """Cut an encoding into stream messages; only the last may be shorter (or the only one)."""
    _check_chunk_size(chunk_size)
    for start in range(0, max(len(encoded), 1), chunk_size):
        yield encoded[start : start + chunk_size]


class ChunkAssembler:
    """Reassembles a streamed encoding announced as ``size`` bytes with SHA-256 ``sha256``.

    Refuses a chunk that would exceed the announced size (a peer cannot make the receiver
    buffer more than it agreed to) and, in :meth:`finish`, a short or altered transfer.
    """

    def __init__(self, size: int, sha256: str) -> None:
        if size < 0 or len(sha256) != 64:
            raise ValueError("an announced transfer needs a size >= 0 and a hex SHA-256")
        self._size, self._expected = size, sha256.lower()
        self._parts: list[bytes] = []
        self._received = 0
        self._hash = hashlib.sha256()

    @property
    def received(self) -> int:
        return self._received

    def add(self, chunk: bytes) -> None:
        if len(chunk) > MAX_CHUNK_SIZE:
            raise EncodingError(f"a chunk of {len(chunk)} bytes exceeds {MAX_CHUNK_SIZE}")
        if self._received + len(chunk) > self._size:
            raise EncodingError(f"the transfer exceeds the announced {self._size} bytes")
        self._parts.append(bytes(chunk))
        self._hash.update(chunk)
        self._received += len(chunk)

    def finish(self) -> bytes:
        """The whole encoding; raises if it is short or its SHA-256 is not the announced one."""
        if self._received != self._size:
            raise VerificationError(f"received {self._received} of {self._size} bytes")
        if not hmac.compare_digest(self._hash.hexdigest(), self._expected):
            raise VerificationError("the received filter does not match its announced SHA-256")
        return b"".join(self._parts)
