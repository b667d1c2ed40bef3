"""Match filters: the sorted, truncated OPRF outputs a holder publishes per dataset and epoch.

Why: a querier must test "does the holder have this document?" locally, after one metered OPRF
round trip, learning nothing about records it did not ask about (DESIGN section 7). Without the
holder's OPRF key the first ``t`` bytes of each output are pseudo-random, so the filter reveals
only its size; with a finalised output in hand, membership is a binary search.

A prefix of ``t`` bytes makes a random non-member collide with one of ``n`` members with
probability ``n / 2**(8*t)`` (:func:`false_positive_rate`). :func:`build_filter` raises the
truncation until that is at most ``1e-9`` per lookup, so every hit deserves the follow-up step.

Invariants:
* A :class:`Filter` holds distinct prefixes of one width (1..16 bytes) in strictly increasing
  byte order; it is immutable. Widths below :data:`MIN_TRUNCATION` exist only for measuring the
  false-positive formula; :func:`build_filter` and the manifest check refuse them.
* :func:`encode_filter` is canonical: the same set, width, version and encoding give the same
  bytes, and :func:`decode_filter` accepts only canonical bytes (sorted, no duplicates, minimal
  varints, exact length), so a SHA-256 over the encoding identifies the filter.
* :func:`apply_delta` checks that the delta starts at the filter's version, that everything it
  adds is absent and everything it removes is present; otherwise it raises. ``apply_delta(old,
  diff(old, new)) == new`` always.
* Malformed bytes raise :class:`~crypto.errors.EncodingError`, a transfer whose digest differs
  :class:`~crypto.errors.VerificationError`. The manifest that signs a filter is in
  :mod:`crypto.match_keys`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from crypto.errors import CryptoError, EncodingError, VerificationError

MIN_TRUNCATION = 8
MAX_TRUNCATION = 16
DEFAULT_TRUNCATION = 8
MAX_FALSE_POSITIVE_RATE = 1e-9
MAX_VERSION = (1 << 64) - 1

Encoding = Literal["raw", "delta-varint"]
ENCODINGS: tuple[Encoding, ...] = ("raw", "delta-varint")

_FORMAT = 1
_MAGIC = b"ENLF"
_DELTA_MAGIC = b"ENLD"
# magic, format, encoding, truncation, reserved (0), version, count
_HEADER = struct.Struct(">4sBBBBQQ")
# magic, format, truncation, reserved (0, 0), from_version, to_version, added, removed
_DELTA_HEADER = struct.Struct(">4sBBBBQQQQ")
_PREFIX = 8  # bytes of each entry carried as a varint delta in the "delta-varint" encoding
_MAX_VARINT = 10

_Array = npt.NDArray[Any]


class FilterVersionError(CryptoError):
    """A delta does not start at the version the local filter has: fetch the full filter."""


def false_positive_rate(count: int, truncation: int) -> float:
    """Probability that one lookup of a non-member hits: ``count / 2**(8*truncation)``."""
    if count < 0 or not 1 <= truncation <= MAX_TRUNCATION:
        raise ValueError(f"no false-positive rate for {count} entries of {truncation} bytes")
    return count / float(1 << (8 * truncation))


def truncation_for(count: int, *, minimum: int = DEFAULT_TRUNCATION) -> int:
    """The shortest width >= ``minimum`` (8..16) keeping lookups at most 1e-9 false-positive."""
    if not MIN_TRUNCATION <= minimum <= MAX_TRUNCATION:
        raise EncodingError(f"truncation must be {MIN_TRUNCATION}..{MAX_TRUNCATION} bytes")
    for width in range(minimum, MAX_TRUNCATION + 1):
        if false_positive_rate(count, width) <= MAX_FALSE_POSITIVE_RATE:
            return width
    raise CryptoError(f"{count} entries exceed what a {MAX_TRUNCATION}-byte filter can hold")


def _check_width(truncation: int) -> None:
    if not 1 <= truncation <= MAX_TRUNCATION:
        raise EncodingError(f"filter entries are 1..{MAX_TRUNCATION} bytes, not {truncation}")


def _check_version(version: int) -> None:
    if not 0 <= version <= MAX_VERSION:
        raise EncodingError(f"filter version {version} is outside 0..2**64-1")


def _entries(joined: bytes, truncation: int) -> _Array:
    if len(joined) % truncation:
        raise EncodingError(f"{len(joined)} bytes are not a whole number of {truncation}-byte keys")
    return np.frombuffer(joined, dtype=f"S{truncation}")


def _strictly_increasing(values: _Array) -> bool:
    return bool(np.all(values[1:] > values[:-1]))


class Filter:
    """An immutable, sorted set of truncated OPRF outputs with the version it was published as."""

    __slots__ = ("_values", "truncation", "version")

    def __init__(self, values: _Array, truncation: int, version: int = 0) -> None:
        """Wrap already sorted, distinct entries; prefer :meth:`from_outputs` or the decoder."""
        _check_width(truncation)
        _check_version(version)
        if values.dtype != np.dtype(f"S{truncation}") or values.ndim != 1:
            raise EncodingError(f"filter entries must be a flat array of S{truncation}")
        if not _strictly_increasing(values):
            raise EncodingError("filter entries must be sorted and distinct")
        if values.flags.writeable or not values.flags.c_contiguous:
            values = values.copy()  # nobody else may hold a writable reference
        values.flags.writeable = False
        self._values = values
        self.truncation = truncation
        self.version = version

    @classmethod
    def from_truncated(cls, joined: bytes, truncation: int, version: int = 0) -> Filter:
        """A filter of concatenated ``truncation``-byte prefixes (any order, repeats allowed)."""
        _check_width(truncation)
        ordered = np.sort(_entries(joined, truncation))  # np.unique is ~10x slower on S<n>
        if ordered.shape[0] > 1:
            ordered = ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]
        return cls(ordered, truncation, version)

    @classmethod
    def from_outputs(cls, outputs: Iterable[bytes], truncation: int, version: int = 0) -> Filter:
        """A filter of the first ``truncation`` bytes of each output (no false-positive check)."""
        _check_width(truncation)
        parts: list[bytes] = []
        for output in outputs:
            if len(output) < truncation:
                raise EncodingError(f"an output of {len(output)} bytes is shorter than the key")
            parts.append(output[:truncation])
        return cls.from_truncated(b"".join(parts), truncation, version)

    def __len__(self) -> int:
        return int(self._values.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Filter):
            return NotImplemented
        mine, theirs = (self.truncation, self.version), (other.truncation, other.version)
        return mine == theirs and self.raw() == other.raw()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Filter(count={len(self)}, truncation={self.truncation}, version={self.version})"

    @property
    def values(self) -> _Array:
        """The sorted entries as a read-only ``S<truncation>`` array."""
        return self._values

    def raw(self) -> bytes:
        """The entries concatenated in order (big-endian integers, sorted)."""
        return self._values.tobytes()

    def false_positive_rate(self) -> float:
        return false_positive_rate(len(self), self.truncation)

    def _key(self, output: bytes) -> bytes:
        if len(output) < self.truncation:
            raise EncodingError(f"a lookup needs {self.truncation} bytes, got {len(output)}")
        return bytes(output[: self.truncation])

    def contains(self, output: bytes) -> bool:
        """Whether the truncation of one finalised OPRF output is in the filter."""
        key = np.frombuffer(self._key(output), dtype=self._values.dtype)
        index = int(np.searchsorted(self._values, key)[0])
        return index < len(self) and bool(self._values[index] == key[0])

    def contains_many(self, outputs: Iterable[bytes]) -> list[bool]:
        """:meth:`contains` for a batch, in order, with one vectorised search."""
        keys = _entries(b"".join(self._key(o) for o in outputs), self.truncation)
        if not len(self) or not keys.shape[0]:
            return [False] * int(keys.shape[0])
        index = np.minimum(np.searchsorted(self._values, keys), len(self) - 1)
        return [bool(hit) for hit in self._values[index] == keys]


def build_filter(
    outputs: Iterable[bytes], *, truncation: int = DEFAULT_TRUNCATION, version: int = 0
) -> Filter:
    """The holder's filter over its OPRF outputs, widened if needed to keep lookups <= 1e-9.

    ``truncation`` (8..16) is the minimum width; the result's :attr:`Filter.truncation` may be
    larger when the distinct count demands it, and building refuses when 16 bytes are not enough.
    """
    if not MIN_TRUNCATION <= truncation <= MAX_TRUNCATION:
        raise EncodingError(f"truncation must be {MIN_TRUNCATION}..{MAX_TRUNCATION} bytes")
    kept: list[bytes] = []  # 16-byte prefixes: enough for any width, a quarter of the memory
    for output in outputs:
        if len(output) < MAX_TRUNCATION:
            raise EncodingError(f"an OPRF output has 64 bytes, not {len(output)}")
        kept.append(output[:MAX_TRUNCATION])
    width = truncation
    while True:
        built = Filter.from_outputs(kept, width, version)
        needed = truncation_for(len(built), minimum=width)
        if needed == width:
            return built
        width = needed


# --------------------------------------------------------------------------- encoding


def _prefixes(values: _Array, truncation: int) -> tuple[_Array, bytes]:
    """The first 8 bytes of each entry as native uint64, and the remaining bytes joined."""
    table = np.frombuffer(values.tobytes(), dtype=np.uint8).reshape(-1, truncation)
    head = np.ascontiguousarray(table[:, :_PREFIX]).view(">u8").ravel().astype(np.uint64)
    return head, np.ascontiguousarray(table[:, _PREFIX:]).tobytes()


def _varint_lengths(numbers: _Array) -> _Array:
    lengths = np.ones(numbers.shape[0], dtype=np.int64)
    for k in range(1, _MAX_VARINT):
        lengths += numbers >= np.uint64(1 << (7 * k))
    return lengths


def _encode_varints(numbers: _Array) -> bytes:
    """LEB128 of each number, vectorised: 7 bits per byte, high bit set on all but the last."""
    lengths = _varint_lengths(numbers)
    starts = np.cumsum(lengths) - lengths
    out = np.zeros(int(lengths.sum()), dtype=np.uint8)
    for k in range(_MAX_VARINT):
        selected = lengths > k
        if not selected.any():
            break
        group = (numbers[selected] >> np.uint64(7 * k)) & np.uint64(0x7F)
        more = (lengths[selected] > k + 1).astype(np.uint8) << 7
        out[starts[selected] + k] = group.astype(np.uint8) | more
    return out.tobytes()


def _decode_varints(data: bytes, count: int) -> _Array:
    """Exactly ``count`` minimal LEB128 numbers below 2**64 filling ``data``, or raise."""
    stream = np.frombuffer(data, dtype=np.uint8)
    if count == 0 or not stream.shape[0]:
        if count or stream.shape[0]:
            raise EncodingError("varint section does not hold the announced number of entries")
        return np.zeros(0, dtype=np.uint64)
    ends = np.flatnonzero(stream < 0x80)
    if ends.shape[0] != count or ends[-1] != stream.shape[0] - 1:
        raise EncodingError("varint section does not hold the announced number of entries")
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    last = stream[ends]
    if lengths.max() > _MAX_VARINT or np.any((lengths == _MAX_VARINT) & (last > 1)):
        raise EncodingError("a varint exceeds 64 bits")
    if np.any((lengths > 1) & (last == 0)):
        raise EncodingError("a varint is not minimal (trailing zero group)")
    # One pass per 7-bit group over the numbers, not one over every byte: a querier decodes
    # ~9M entries per 1M-record holder when it loads its cached filters.
    decoded: _Array = (stream[starts] & 0x7F).astype(np.uint64)
    shortest = int(lengths.min())
    for k in range(1, int(lengths.max())):
        shift = np.uint64(7 * k)
        if k < shortest:  # every number has a group k
            decoded |= (stream[starts + k] & 0x7F).astype(np.uint64) << shift
        else:
            where = np.flatnonzero(lengths > k)
            decoded[where] |= (stream[starts[where] + k] & 0x7F).astype(np.uint64) << shift
    return decoded


def _head_deltas(filt: Filter) -> tuple[_Array, bytes]:
    if filt.truncation < _PREFIX:
        raise EncodingError(f"delta-varint needs entries of at least {_PREFIX} bytes")
    head, tail = _prefixes(filt.values, filt.truncation)
    return (np.diff(head, prepend=np.uint64(0)) if head.shape[0] else head), tail


def encoded_size(filt: Filter, encoding: Encoding) -> int:
    """The length in bytes of ``encode_filter(filt, encoding)`` without building it."""
    if encoding == "raw":
        return _HEADER.size + len(filt) * filt.truncation
    deltas, tail = _head_deltas(filt)
    return _HEADER.size + int(_varint_lengths(deltas).sum()) + len(tail)


def choose_encoding(filt: Filter) -> Encoding:
    """The smaller of the two encodings (``raw`` on a tie); a function of the filter alone."""
    if filt.truncation < _PREFIX:
        return "raw"
    smaller = encoded_size(filt, "delta-varint") < encoded_size(filt, "raw")
    return "delta-varint" if smaller else "raw"


def encode_filter(filt: Filter, encoding: Encoding | None = None) -> bytes:
    """The canonical bytes of a filter: a 24-byte header, then the sorted entries.

    ``raw``: the entries back to back. ``delta-varint``: the first 8 bytes of each entry as a
    LEB128 delta from the previous one, then the remaining ``truncation - 8`` bytes of every
    entry. ``None`` picks :func:`choose_encoding`.
    """
    chosen = choose_encoding(filt) if encoding is None else encoding
    if chosen not in ENCODINGS:
        raise EncodingError(f"unknown filter encoding {chosen!r}")
    if chosen == "raw":
        body = filt.raw()
    else:
        deltas, tail = _head_deltas(filt)
        body = _encode_varints(deltas) + tail
    header = _HEADER.pack(
        _MAGIC, _FORMAT, ENCODINGS.index(chosen), filt.truncation, 0, filt.version, len(filt)
    )
    return header + body


@dataclass(frozen=True)
class FilterHeader:
    """What the first 24 bytes of an encoded filter announce."""

    encoding: Encoding
    truncation: int
    version: int
    count: int


def read_header(encoded: bytes) -> FilterHeader:
    """Parse and check the header of an encoded filter (the body is not read)."""
    if len(encoded) < _HEADER.size:
        raise EncodingError(f"an encoded filter has at least {_HEADER.size} bytes")
    magic, fmt, kind, width, reserved, version, count = _HEADER.unpack_from(encoded)
    if magic != _MAGIC or fmt != _FORMAT or reserved:
        raise EncodingError("not an encoded filter of format 1 (bad magic, format or reserved)")
    if kind >= len(ENCODINGS):
        raise EncodingError(f"unknown filter encoding id {kind}")
    _check_width(width)
    return FilterHeader(ENCODINGS[kind], width, version, count)


def decode_filter(encoded: bytes) -> Filter:
    """The filter encoded by :func:`encode_filter`; any non-canonical byte raises."""
    header = read_header(encoded)
    body = memoryview(encoded)[_HEADER.size :]
    width, count = header.truncation, header.count
    if header.encoding == "raw":
        if len(body) != count * width:
            raise EncodingError(f"raw body is {len(body)} bytes, expected {count} x {width}")
        values = _entries(bytes(body), width)
    else:
        if width < _PREFIX:
            raise EncodingError(f"delta-varint needs entries of at least {_PREFIX} bytes")
        tail_size = count * (width - _PREFIX)
        if tail_size > len(body) or count > len(body):
            raise EncodingError("delta-varint body is shorter than its entries need")
        split = len(body) - tail_size
        head = np.cumsum(_decode_varints(bytes(body[:split]), count), dtype=np.uint64)
        table = head.astype(">u8").view(np.uint8).reshape(count, _PREFIX)
        tail = np.frombuffer(bytes(body[split:]), dtype=np.uint8).reshape(count, width - _PREFIX)
        values = _entries(np.concatenate([table, tail], axis=1).tobytes(), width)
    return Filter(values, width, header.version)  # refuses unsorted or repeated entries


# --------------------------------------------------------------------------- deltas


@dataclass(frozen=True, eq=False)
class FilterDelta:
    """The change between two published versions: entries added and removed (sorted)."""

    from_version: int
    to_version: int
    added: Filter
    removed: Filter

    def __post_init__(self) -> None:
        _check_version(self.from_version)
        _check_version(self.to_version)
        if self.to_version <= self.from_version:
            raise EncodingError(f"a delta goes forward, not {self.from_version}->{self.to_version}")
        if self.added.truncation != self.removed.truncation:
            raise EncodingError("added and removed entries have different widths")
        both = np.intersect1d(self.added.values, self.removed.values, assume_unique=True)
        if both.shape[0]:
            raise EncodingError("a delta cannot add and remove the same entry")

    @property
    def truncation(self) -> int:
        return self.added.truncation

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FilterDelta):
            return NotImplemented
        return encode_delta(self) == encode_delta(other)

    __hash__ = None  # type: ignore[assignment]


def diff(old: Filter, new: Filter) -> FilterDelta:
    """The delta that turns ``old`` into ``new`` (same width, later version)."""
    if old.truncation != new.truncation:
        raise EncodingError("filters of different widths cannot be diffed; publish in full")
    added = np.setdiff1d(new.values, old.values, assume_unique=True)
    removed = np.setdiff1d(old.values, new.values, assume_unique=True)
    width = old.truncation
    return FilterDelta(old.version, new.version, Filter(added, width), Filter(removed, width))


def apply_delta(filt: Filter, delta: FilterDelta) -> Filter:
    """The filter at ``delta.to_version``; raises unless the delta fits this exact state."""
    if filt.version != delta.from_version:
        raise FilterVersionError(
            f"delta starts at version {delta.from_version} but the filter is at {filt.version}"
        )
    if filt.truncation != delta.truncation:
        raise EncodingError("the delta's entries have a different width than the filter")
    values = filt.values
    if np.isin(delta.added.values, values, assume_unique=True).any():
        raise VerificationError("the delta adds entries the filter already holds")
    if not np.isin(delta.removed.values, values, assume_unique=True).all():
        raise VerificationError("the delta removes entries the filter does not hold")
    kept = np.setdiff1d(values, delta.removed.values, assume_unique=True)
    merged = np.union1d(kept, delta.added.values).astype(values.dtype)
    return Filter(merged, filt.truncation, delta.to_version)


def encode_delta(delta: FilterDelta) -> bytes:
    """Header, then the added and the removed entries back to back (both sorted)."""
    header = _DELTA_HEADER.pack(
        _DELTA_MAGIC, _FORMAT, delta.truncation, 0, 0, delta.from_version, delta.to_version,
        len(delta.added), len(delta.removed),
    )  # fmt: skip
    return header + delta.added.raw() + delta.removed.raw()


def decode_delta(encoded: bytes) -> FilterDelta:
    """The delta encoded by :func:`encode_delta`; any non-canonical byte raises."""
    if len(encoded) < _DELTA_HEADER.size:
        raise EncodingError(f"an encoded delta has at least {_DELTA_HEADER.size} bytes")
    fields = _DELTA_HEADER.unpack_from(encoded)
    magic, fmt, width, reserved_a, reserved_b, start, end, n_added, n_removed = fields
    if magic != _DELTA_MAGIC or fmt != _FORMAT or reserved_a or reserved_b:
        raise EncodingError("not an encoded filter delta of format 1")
    _check_width(width)
    body = encoded[_DELTA_HEADER.size :]
    if len(body) != (n_added + n_removed) * width:
        raise EncodingError("delta body length does not match its header")
    split = n_added * width
    added, removed = _entries(body[:split], width), _entries(body[split:], width)
    return FilterDelta(start, end, Filter(added, width), Filter(removed, width))
