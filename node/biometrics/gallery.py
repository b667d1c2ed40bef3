"""The holder's per-peer gallery of protected codes, searched by Hamming distance in two stages.

Why: a querier sends one protected code (:mod:`crypto.biohash`) computed under the key it shares
with this holder; the holder compares it with the codes of its own templates under that same
key and answers hit / no-hit with a coarse score band (DESIGN section 8). The search must be
*exact*: sign codes of unrelated faces sit at about half the bits from each other and the
genuine neighbour is only somewhat closer, so approximate binary indexes (IVF, HNSW) miss it.
A FAISS ``IndexBinaryFlat`` scans the short prefix of every code (:data:`SEARCH_BITS`, the
first blocks of the same keyed projection) with hardware popcount and keeps a shortlist of the
nearest :data:`DEFAULT_SHORTLIST`; the full codes of the shortlist (2048-8192 bits, held in a
numpy array beside the index) are then compared with the full probe, and that distance is the
score. The prefix only has to rank the mate among the first few dozen of the gallery, which it
does with a wide margin (unrelated faces sit near half the prefix bits, a mate near a quarter);
the long code gives the score the precision the bands need. :class:`NumpyGallery` compares full
codes with every entry in plain numpy, so tests can cross-check both stages.

Score bands (per comparison, on the full code; :data:`DEFAULT_BANDS`, thresholds measured by
``bench/bench_biometric.py`` on the synthetic population, see ``docs/biometrics.md``):

* ``strong``   distance <= ``strong``    (false match rate about 1e-6 per comparison)
* ``probable`` distance <= ``probable``  (about 1e-4 per comparison)
* ``no-hit``   otherwise.

A 1:N search makes N comparisons, so a gallery of N unrelated people gives a ``probable`` band
to roughly N x 1e-4 of the probes of people it does not hold: bands are evidence for the
follow-up step, never an identification on their own.

Invariants:
* One gallery holds codes of one length under one key (``key_id``, checked by
  :meth:`CodeGallery.require_key`); ids are unique non-empty strings; :meth:`CodeGallery.add`
  validates the whole batch before adding anything (all-or-nothing).
* ``search`` returns at most ``k`` neighbours ordered by full-code distance (ties by insertion
  order); fewer if the gallery is smaller; none if it is empty. :class:`CodeGallery` returns
  the nearest among its shortlist of ``max(k, shortlist)`` prefix neighbours.
* :meth:`CodeGallery.to_bytes` / :meth:`CodeGallery.from_bytes` round-trip exactly (format 2:
  full codes); the bytes end with a SHA-256 of everything before, and anything malformed, or a
  format-1 gallery of the old short codes, raises :class:`~node.errors.StoreError`.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import faiss
import numpy as np
import numpy.typing as npt

from crypto.biohash import (
    SEARCH_BITS,
    SUPPORTED_BITS,
    Codes,
    TemplateError,
    as_codes,
    check_bits,
    hamming_distances,
)
from node.errors import FailedPreconditionError, InvalidArgumentError, StoreError

Band = Literal["strong", "probable", "no-hit"]
MAX_ID_BYTES = 1024
_MAGIC = b"ENLG"
_FORMAT = 2
DEFAULT_SHORTLIST = 64
MAX_SHORTLIST = 4096
_HEADER = struct.Struct(">4sBBHQB")  # magic, format, reserved, bits, count, key id length
_DIGEST = 32


@dataclass(frozen=True)
class BandThresholds:
    """Largest Hamming distances still reported as ``strong`` / ``probable``."""

    strong: int
    probable: int

    def __post_init__(self) -> None:
        if not 0 <= self.strong <= self.probable:
            raise ValueError(f"need 0 <= strong <= probable, got {self}")

    def band(self, distance: int) -> Band:
        if distance <= self.strong:
            return "strong"
        if distance <= self.probable:
            return "probable"
        return "no-hit"


# Measured at FMR 1e-6 (strong) and 1e-4 (probable) per comparison; see docs/biometrics.md.
DEFAULT_BANDS: dict[int, BandThresholds] = {
    2048: BandThresholds(strong=508, probable=643),
    4096: BandThresholds(strong=1020, probable=1289),
    8192: BandThresholds(strong=2055, probable=2578),
}


class Neighbour(NamedTuple):
    """A gallery entry and its Hamming distance to the probe."""

    id: str
    distance: int


@dataclass(frozen=True)
class Decision:
    """What the holder concludes for one probe; only ``band`` is meant for the querier."""

    band: Band
    distance: int | None
    record_id: str | None

    @property
    def hit(self) -> bool:
        return self.band != "no-hit"


def pin_threads(count: int = 1) -> None:
    """Set the number of OpenMP threads FAISS uses (process-wide)."""
    if count < 1:
        raise ValueError("need at least one thread")
    faiss.omp_set_num_threads(count)


def _check_bits(bits: int) -> None:
    try:
        check_bits(bits)
    except ValueError as exc:
        raise InvalidArgumentError(str(exc), field="bits") from None


def _checked_codes(codes: npt.ArrayLike, bits: int, field: str) -> Codes:
    try:
        return as_codes(codes, bits)
    except TemplateError as exc:
        raise InvalidArgumentError(str(exc), field=field) from exc


class _Base:
    """Id bookkeeping, validation and bands shared by both implementations."""

    def __init__(self, bits: int, *, key_id: str = "", bands: BandThresholds | None = None):
        _check_bits(bits)
        if not key_id.isascii() or len(key_id) > 255:
            raise InvalidArgumentError("must be ASCII, at most 255 characters", field="key_id")
        self.bits = bits
        self.key_id = key_id
        self.bands = bands if bands is not None else DEFAULT_BANDS[bits]
        self._ids: list[str] = []
        self._known: set[str] = set()

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._ids)

    def require_key(self, key_id: str) -> None:
        """Raise unless probes made under ``key_id`` can be compared with this gallery."""
        if key_id != self.key_id:
            raise FailedPreconditionError(
                f"gallery was built under key {self.key_id!r}, probe under {key_id!r}",
                hint="both sides must use the current epoch; re-derive the pairwise key",
            )

    def _validate_batch(self, ids: Sequence[str], codes: npt.ArrayLike) -> Codes:
        array = _checked_codes(codes, self.bits, "codes")
        if len(ids) != array.shape[0]:
            raise InvalidArgumentError(f"{len(ids)} ids for {array.shape[0]} codes", field="ids")
        seen: set[str] = set()
        for ident in ids:
            if not isinstance(ident, str) or not ident:
                raise InvalidArgumentError("ids must be non-empty strings", field="ids")
            if len(ident.encode("utf-8")) > MAX_ID_BYTES:
                raise InvalidArgumentError(f"id longer than {MAX_ID_BYTES} bytes", field="ids")
            if ident in seen or ident in self._known:
                raise InvalidArgumentError(f"duplicate id {ident!r}", field="ids")
            seen.add(ident)
        return array

    def _remember(self, ids: Sequence[str]) -> None:
        self._ids.extend(ids)
        self._known.update(ids)

    def _neighbours(self, distances: npt.NDArray[Any], rows: npt.NDArray[Any]) -> list[Neighbour]:
        return [
            Neighbour(self._ids[int(row)], int(distance))
            for distance, row in zip(distances.tolist(), rows.tolist(), strict=True)
            if row >= 0
        ]

    def search_batch(self, codes: npt.ArrayLike, k: int = 1) -> list[list[Neighbour]]:
        raise NotImplementedError

    def search(self, code: npt.ArrayLike, k: int = 1) -> list[Neighbour]:
        """The ``k`` nearest codes to one probe, nearest first."""
        probes = _checked_codes(code, self.bits, "code")
        if probes.shape[0] != 1:
            raise InvalidArgumentError("expected one code; use search_batch", field="code")
        return self.search_batch(probes, k)[0]

    def band(self, distance: int) -> Band:
        return self.bands.band(distance)

    def decide(self, code: npt.ArrayLike) -> Decision:
        """Nearest neighbour and its band: the holder's answer to one probe."""
        best = self.search(code, 1)
        if not best:
            return Decision("no-hit", None, None)
        band = self.band(best[0].distance)
        return Decision(band, best[0].distance, best[0].id if band != "no-hit" else None)


class CodeGallery(_Base):
    """Prefix scan (FAISS ``IndexBinaryFlat``) and full-code re-scoring; grows with :meth:`add`."""

    def __init__(
        self,
        bits: int,
        *,
        key_id: str = "",
        bands: BandThresholds | None = None,
        shortlist: int = DEFAULT_SHORTLIST,
    ):
        super().__init__(bits, key_id=key_id, bands=bands)
        if not 1 <= shortlist <= MAX_SHORTLIST:
            raise InvalidArgumentError(f"must be 1 to {MAX_SHORTLIST}", field="shortlist")
        self.shortlist = shortlist
        self._index = faiss.IndexBinaryFlat(SEARCH_BITS)
        self._full: Codes = np.empty((0, bits // 8), dtype=np.uint8)  # capacity grows by half

    def add(self, ids: Sequence[str], codes: npt.ArrayLike) -> None:
        """Append codes of newly imported templates; nothing is added if any entry is bad."""
        array = self._validate_batch(ids, codes)
        count, size = len(self), array.shape[0]
        if size:
            if count + size > self._full.shape[0]:
                grown = np.empty((max(count + size, count * 3 // 2), self.bits // 8), np.uint8)
                grown[:count] = self._full[:count]
                self._full = grown
            self._full[count : count + size] = array
            self._index.add(np.ascontiguousarray(array[:, : SEARCH_BITS // 8]))
        self._remember(ids)

    def search_batch(self, codes: npt.ArrayLike, k: int = 1) -> list[list[Neighbour]]:
        """Nearest ``k`` neighbours of each probe row by full-code distance, chosen among the
        ``max(k, shortlist)`` nearest by prefix."""
        probes = _checked_codes(codes, self.bits, "codes")
        if k < 1:
            raise InvalidArgumentError("must be at least 1", field="k")
        if not len(self) or not probes.shape[0]:
            return [[] for _ in range(probes.shape[0])]
        wanted = min(max(k, self.shortlist), len(self))
        prefixes = np.ascontiguousarray(probes[:, : SEARCH_BITS // 8])
        _, rows = self._index.search(prefixes, wanted)
        out: list[list[Neighbour]] = []
        for probe, found in zip(probes, rows, strict=True):
            candidates = np.sort(found[found >= 0])
            full = hamming_distances(probe, self._full[candidates], self.bits)[0]
            order = np.argsort(full, kind="stable")[:k]
            out.append(self._neighbours(full[order], candidates[order]))
        return out

    def codes(self) -> Codes:
        """A copy of every stored (full) code, in insertion order."""
        out: Codes = self._full[: len(self)].copy()
        return out

    def to_bytes(self) -> bytes:
        """A self-checking serialisation (format 2) of ids, full codes and key id."""
        key = self.key_id.encode("ascii")
        parts = [_HEADER.pack(_MAGIC, _FORMAT, 0, self.bits, len(self), len(key)), key]
        parts.append(self.codes().tobytes())
        for ident in self._ids:
            raw = ident.encode("utf-8")
            parts += [struct.pack(">H", len(raw)), raw]
        body = b"".join(parts)
        return body + hashlib.sha256(body).digest()

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        bands: BandThresholds | None = None,
        shortlist: int = DEFAULT_SHORTLIST,
    ) -> CodeGallery:
        """Rebuild a gallery written by :meth:`to_bytes`; raise on any corruption."""
        if len(data) < _HEADER.size + _DIGEST:
            raise StoreError("gallery bytes are truncated")
        body, digest = data[:-_DIGEST], data[-_DIGEST:]
        if hashlib.sha256(body).digest() != digest:
            raise StoreError("gallery bytes do not match their digest")
        magic, version, _, bits, count, key_length = _HEADER.unpack_from(body)
        if magic == _MAGIC and version < _FORMAT:
            raise StoreError(
                f"a format-{version} code gallery (short codes of biometric code format 1) "
                "cannot be searched any more; rebuild it from the templates "
                "(`enlace biometric refresh --rebuild`)"
            )
        if magic != _MAGIC or version != _FORMAT or bits not in SUPPORTED_BITS:
            raise StoreError(f"not a format-{_FORMAT} code gallery")
        offset = _HEADER.size
        try:
            key_id = body[offset : offset + key_length].decode("ascii")
        except UnicodeDecodeError as exc:
            raise StoreError("gallery key id is not ASCII") from exc
        offset += key_length
        size = count * (bits // 8)
        if len(body) < offset + size:
            raise StoreError("gallery bytes are truncated")
        codes = np.frombuffer(body, dtype=np.uint8, count=size, offset=offset)
        offset += size
        ids: list[str] = []
        try:
            for _ in range(count):
                (length,) = struct.unpack_from(">H", body, offset)
                ids.append(body[offset + 2 : offset + 2 + length].decode("utf-8"))
                offset += 2 + length
        except (struct.error, UnicodeDecodeError) as exc:
            raise StoreError("gallery ids are malformed") from exc
        if offset != len(body):
            raise StoreError("gallery bytes have a wrong length")
        gallery = cls(bits, key_id=key_id, bands=bands, shortlist=shortlist)
        try:
            gallery.add(ids, codes.reshape(count, bits // 8))
        except InvalidArgumentError as exc:
            raise StoreError(f"gallery content is invalid: {exc}") from exc
        return gallery


class NumpyGallery(_Base):
    """Full codes against every entry in plain numpy: slow, obviously correct, for cross-checks
    of both stages of :class:`CodeGallery`."""

    def __init__(self, bits: int, *, key_id: str = "", bands: BandThresholds | None = None):
        super().__init__(bits, key_id=key_id, bands=bands)
        self._codes: Codes = np.empty((0, bits // 8), dtype=np.uint8)

    def add(self, ids: Sequence[str], codes: npt.ArrayLike) -> None:
        array = self._validate_batch(ids, codes)
        self._codes = np.concatenate([self._codes, array])
        self._remember(ids)

    def search_batch(self, codes: npt.ArrayLike, k: int = 1) -> list[list[Neighbour]]:
        probes = _checked_codes(codes, self.bits, "codes")
        if k < 1:
            raise InvalidArgumentError("must be at least 1", field="k")
        if not len(self):
            return [[] for _ in range(probes.shape[0])]
        distances = hamming_distances(probes, self._codes, self.bits)
        order = np.argsort(distances, axis=1, kind="stable")[:, :k]
        nearest = np.take_along_axis(distances, order, axis=1)
        return [self._neighbours(d, r) for d, r in zip(nearest, order, strict=True)]
