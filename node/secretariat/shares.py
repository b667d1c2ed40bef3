"""Additive secret sharing of a member's cell vector over Z_(2^64), for regional-only tables.

Why: for tables marked regional-only, the members do not want the Secretariat to see their
national table at all, only the regional sum. Each member splits its vector ``v`` into two
shares, ``s`` for the ST and ``h = v - s (mod 2^64)`` for an independent helper node. The ST
adds the shares it holds, the helper adds its own and hands the ST only that sum; the two
sums add up to the regional sum and to nothing finer.

Invariants:
* The ST's share is drawn from ``mask_seed`` alone (SHAKE-256 output, 64-bit little-endian
  words): it does not depend on ``v`` at all, so the ST alone learns nothing about any cell;
  ``h`` is ``v`` plus a uniform mask, so the helper alone learns nothing either. Secrecy rests
  on the ST and the helper not pooling their shares (documented in docs/secretariat.md).
* A vector is ``2n`` words for a layout of ``n`` cells: the counts, then 0/1 indicators
  (``1`` where the count is above zero), so the sum also yields ``N_CONTRIB`` per cell.
* Both sides compute the same :class:`CellLayout` from the matrix definition, the period and
  the packaged code lists; its SHA-256 travels with every share so a mismatch is refused.
* Pure: no I/O, no clock; randomness comes in as ``mask_seed``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from node.errors import InvalidArgumentError
from node.records.codelists import codelist
from node.stats.query import Period

WORD = np.dtype("<u8")
Vector = npt.NDArray[np.uint64]
CellKey = tuple[str, ...]

_CODELIST_OF = {
    "event_type": "event_type",
    "nationality": "nationality",
    "nationality_basis": "nationality_basis",
    "sex": "sex",
    "age_group": "age_group",
    "care_provided": "care",
    "vulnerability": "vulnerability",
}
MAX_CELLS = 20_000


@dataclass(frozen=True)
class CellLayout:
    """The fixed order of cells both sides agree on for one table and period."""

    dimensions: tuple[str, ...]
    keys: tuple[CellKey, ...]

    @property
    def cells(self) -> int:
        return len(self.keys)

    @property
    def sha256(self) -> str:
        text = "|".join(self.dimensions) + "\n" + "\n".join(",".join(k) for k in self.keys)
        return hashlib.sha256(text.encode()).hexdigest()

    def index(self) -> dict[CellKey, int]:
        return {key: i for i, key in enumerate(self.keys)}


def _months(period: Period) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    year, month = period.start.year, period.start.month
    while dt.date(year, month, 1) < period.end:
        out.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _values(dimension: str, period: Period) -> list[str]:
    months = _months(period)
    if dimension == "month":
        return [f"{y}-{m:02d}" for y, m in months]
    if dimension == "quarter":
        return list(dict.fromkeys(f"{y}-Q{(m - 1) // 3 + 1}" for y, m in months))
    if dimension == "year":
        return list(dict.fromkeys(str(y) for y, _ in months))
    name = _CODELIST_OF.get(dimension)
    if name is None:
        raise InvalidArgumentError(
            f"{dimension!r} has no regional code list, so it cannot be shared",
            field="dimensions",
            hint="regional-only tables use coded dimensions (no border_post)",
        )
    return list(codelist(name))


def cell_layout(dimensions: Sequence[str], period: Period) -> CellLayout:
    """Every combination of the dimensions' regional codes, in code-list order."""
    dims = tuple(dimensions)
    values = [_values(d, period) for d in dims]
    size = 1
    for v in values:
        size *= len(v)
    if size > MAX_CELLS:
        raise InvalidArgumentError(
            f"{size} cells is too many to share (at most {MAX_CELLS})", field="dimensions"
        )
    return CellLayout(dims, tuple(itertools.product(*values)))


def to_vector(layout: CellLayout, counts: Mapping[CellKey, int]) -> Vector:
    """Counts then indicators, ``2n`` words; a key outside the layout is refused."""
    index = layout.index()
    vector = np.zeros(2 * layout.cells, dtype=WORD)
    for key, count in counts.items():
        position = index.get(tuple(key))
        if position is None:
            raise InvalidArgumentError(
                f"cell {list(key)} is not in the regional layout", field="cells"
            )
        if count < 0:
            raise InvalidArgumentError("negative count", field="cells")
        vector[position] = count
        vector[layout.cells + position] = 1 if count > 0 else 0
    return vector


def mask(mask_seed: bytes, words: int) -> Vector:
    """``words`` uniform 64-bit words expanded from ``mask_seed`` (SHAKE-256)."""
    if len(mask_seed) < 16:
        raise InvalidArgumentError("a mask seed needs at least 16 bytes", field="mask_seed")
    stream = hashlib.shake_256(b"enlace/1 share-mask\n" + mask_seed).digest(8 * words)
    return np.frombuffer(stream, dtype=WORD).copy()


def split(vector: Vector, mask_seed: bytes) -> tuple[Vector, Vector]:
    """``(share for the ST, share for the helper)``; they add up to ``vector`` mod 2^64."""
    st_share = mask(mask_seed, len(vector))
    helper_share = vector.astype(WORD) - st_share  # numpy wraps modulo 2^64
    return st_share, helper_share


def add(vectors: Sequence[Vector], words: int) -> Vector:
    """The sum of ``vectors`` modulo 2^64 (the zero vector of ``words`` for none)."""
    total = np.zeros(words, dtype=WORD)
    for vector in vectors:
        if len(vector) != words:
            raise InvalidArgumentError(
                f"a share has {len(vector)} words, expected {words}", field="share"
            )
        total += vector
    return total


def encode(vector: Vector) -> bytes:
    return vector.astype(WORD).tobytes()


def decode(data: bytes, words: int) -> Vector:
    if len(data) != 8 * words:
        raise InvalidArgumentError(
            f"a share of {len(data)} bytes, expected {8 * words}", field="share"
        )
    return np.frombuffer(data, dtype=WORD).copy()


def from_vector(layout: CellLayout, vector: Vector) -> dict[CellKey, tuple[int, int]]:
    """``key -> (count, countries with a count above zero)`` from a summed vector."""
    n = layout.cells
    if len(vector) != 2 * n:
        raise InvalidArgumentError(f"{len(vector)} words, expected {2 * n}", field="sum")
    out: dict[CellKey, tuple[int, int]] = {}
    for i, key in enumerate(layout.keys):
        value, contributors = int(vector[i]), int(vector[n + i])
        if value >= 2**63 or contributors >= 2**32:
            raise InvalidArgumentError(
                "the shares do not add up to counts; a share is missing or corrupt",
                field="sum",
                hint="sum the ST's and the helper's shares of exactly the same members",
            )
        out[key] = (value, contributors)
    return out
