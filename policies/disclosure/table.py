"""The statistical table that disclosure control protects: dimensions, cells, margins, lines.

Why: every disclosure method works on the same object — a table of integer counts whose
cells are keyed by one code per dimension, with some margins (totals) released next to the
interior cells. Suppression must know which published cells add up to which others (the
*lines*), perturbation must know which interior cells a margin covers, and the attacker model
must know every additivity constraint a reader of the answer can write down. Keeping that
structure in one immutable model means the methods cannot disagree about it.

Invariants:
* A coordinate (:data:`Coord`) has one code per dimension, in dimension order. The reserved
  code :data:`TOTAL` (``"_T"``, as in SDMX) in a position means "all codes of that
  dimension"; a cell with at least one ``_T`` is a *margin*, the others are *interior* cells.
* Every interior cell is present (a missing combination is a count of 0, filled in by
  :meth:`Table.from_counts`); margins are optional, each one present only if the answer
  releases it.
* Each present margin equals the sum of the interior cells it covers; construction checks it
  and raises :class:`DisclosureError` otherwise. Values are integer counts ``>= 0`` (``bool``
  is refused).
* Cells are iterated in a canonical order (the product of each dimension's codes in declared
  order, ``_T`` last), so every method built on a table is deterministic.
* At most :data:`MAX_DIMENSIONS` dimensions and :data:`MAX_CELLS` cells (margins included):
  the suppression verifier solves linear programs over all cells, and larger tables are
  refused with :class:`TableTooLarge` (``INVALID_ARGUMENT``) rather than answered slowly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from policies.errors import PolicyError

TOTAL = "_T"
MAX_DIMENSIONS = 3
MAX_CELLS = 5000

Coord = tuple[str, ...]


class DisclosureError(PolicyError):
    """The node handed disclosure control inconsistent inputs (a bug at the node, not the peer).

    Examples: margins that do not add up, record identifiers that do not match a cell's count,
    differential privacy configured without a budget ledger. Nothing may be released.
    """

    status_name = "INTERNAL"


class TableTooLarge(DisclosureError):  # noqa: N818 - reads as a condition, like QuotaExceeded
    """The requested table has too many dimensions or cells to protect and verify."""

    status_name = "INVALID_ARGUMENT"


@dataclass(frozen=True)
class Dimension:
    """One dimension of a table: its name and its codes (``_T`` excluded, order kept)."""

    name: str
    codes: tuple[str, ...]

    def __post_init__(self) -> None:
        if isinstance(self.codes, str):
            raise TypeError("Dimension.codes must be a collection of codes, not a string")
        codes = tuple(self.codes)
        object.__setattr__(self, "codes", codes)
        if not self.name:
            raise DisclosureError("a dimension needs a name")
        if not codes:
            raise DisclosureError(f"dimension {self.name!r} has no codes")
        if TOTAL in codes:
            raise DisclosureError(f"dimension {self.name!r} uses the reserved total code {TOTAL}")
        if len(set(codes)) != len(codes) or any(not c for c in codes):
            raise DisclosureError(f"dimension {self.name!r} has empty or repeated codes")


@dataclass(frozen=True)
class Line:
    """An additivity constraint: ``total`` equals the sum of ``members`` along ``dimension``."""

    dimension: int
    members: tuple[Coord, ...]
    total: Coord

    @property
    def cells(self) -> tuple[Coord, ...]:
        """Members followed by the total."""
        return (*self.members, self.total)


def is_margin(coord: Coord) -> bool:
    """True when ``coord`` has the total code in at least one position."""
    return TOTAL in coord


def covered_cells(dimensions: Iterable[Dimension], coord: Coord) -> tuple[Coord, ...]:
    """The interior cells a coordinate adds up (itself when it is an interior cell)."""
    choices = [
        dim.codes if code == TOTAL else (code,) for dim, code in zip(dimensions, coord, strict=True)
    ]
    return tuple(itertools.product(*choices))


def _count(coord: Coord, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DisclosureError(f"cell {coord} must be an integer count >= 0, not {value!r}")
    return value


def _grid(dims: tuple[Dimension, ...]) -> tuple[Coord, ...]:
    """Every possible coordinate (margins included), after checking the table's shape."""
    if not dims:
        raise DisclosureError("a table needs at least one dimension")
    if len(dims) > MAX_DIMENSIONS:
        raise TableTooLarge(
            f"{len(dims)} dimensions requested, at most {MAX_DIMENSIONS} are protected",
            hint="ask for fewer dimensions, or several tables",
        )
    if len({d.name for d in dims}) != len(dims):
        raise DisclosureError("dimension names must be unique")
    size = math.prod(len(d.codes) + 1 for d in dims)
    if size > MAX_CELLS:
        raise TableTooLarge(
            f"the table would have {size} cells with margins, at most {MAX_CELLS}",
            hint="filter the codes or ask for fewer dimensions",
        )
    return tuple(itertools.product(*((*d.codes, TOTAL) for d in dims)))


class Table:
    """An immutable table of counts with optional margins; see the module invariants."""

    __slots__ = ("_cells", "_covered", "_dimensions", "_order")

    def __init__(self, dimensions: Iterable[Dimension], cells: Mapping[Coord, int]) -> None:
        dims = tuple(dimensions)
        grid = _grid(dims)
        known = set(grid)
        unknown = [c for c in cells if c not in known]
        if unknown:
            raise DisclosureError(f"cells outside the dimensions' codes: {unknown[:3]}")
        for coord, value in cells.items():
            _count(coord, value)
        missing = [c for c in grid if not is_margin(c) and c not in cells]
        if missing:
            raise DisclosureError(f"interior cells missing: {missing[:3]}")
        self._dimensions = dims
        self._order = tuple(c for c in grid if c in cells)
        self._cells: Mapping[Coord, int] = MappingProxyType({c: cells[c] for c in self._order})
        self._covered: Mapping[Coord, tuple[Coord, ...]] = MappingProxyType(
            {c: self._expand(c) for c in self._order}
        )
        for coord in self.margin_coords():
            expected = sum(self._cells[i] for i in self._covered[coord])
            if self._cells[coord] != expected:
                raise DisclosureError(
                    f"margin {coord} is {self._cells[coord]}, its cells add up to {expected}"
                )

    @classmethod
    def from_counts(
        cls,
        dimensions: Iterable[Dimension],
        counts: Mapping[Coord, int],
        *,
        margins: bool | Iterable[Coord] = True,
    ) -> Table:
        """Build a table from interior counts (missing ones are 0), computing its margins.

        ``margins`` is ``True`` (every margin, grand total included), ``False`` (none) or the
        explicit margin coordinates to release.
        """
        dims = tuple(dimensions)
        grid = _grid(dims)
        interior = [c for c in grid if not is_margin(c)]
        values = {c: 0 for c in interior}
        for coord, count in counts.items():
            if coord not in values:
                raise DisclosureError(f"a count for {coord}, which is not an interior cell")
            values[coord] = _count(coord, count)
        if margins is True:
            wanted = {c for c in grid if is_margin(c)}
        elif margins is False:
            wanted = set()
        else:
            wanted = set(margins)
            strays = [c for c in wanted if len(c) != len(dims) or not is_margin(c)]
            if strays:
                raise DisclosureError(f"{strays[0]} is not a margin of this table")
        sums = dict.fromkeys(wanted, 0)
        for coord in interior:
            for mask in itertools.product((False, True), repeat=len(dims)):
                key = tuple(TOTAL if m else code for m, code in zip(mask, coord, strict=True))
                if key in sums:
                    sums[key] += values[coord]
        values.update(sums)
        return cls(dims, values)

    def with_interior(self, counts: Mapping[Coord, int]) -> Table:
        """The same structure (same margins released) over other interior counts."""
        return Table.from_counts(self._dimensions, counts, margins=self.margin_coords())

    # --- structure ---------------------------------------------------------------------

    @property
    def dimensions(self) -> tuple[Dimension, ...]:
        return self._dimensions

    @property
    def cells(self) -> Mapping[Coord, int]:
        """Every present cell (interior and released margins) in canonical order."""
        return self._cells

    def __getitem__(self, coord: Coord) -> int:
        return self._cells[coord]

    def __iter__(self) -> Iterator[Coord]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def coords(self) -> tuple[Coord, ...]:
        return self._order

    def interior_coords(self) -> tuple[Coord, ...]:
        return tuple(c for c in self._order if not is_margin(c))

    def margin_coords(self) -> tuple[Coord, ...]:
        return tuple(c for c in self._order if is_margin(c))

    def covered(self, coord: Coord) -> tuple[Coord, ...]:
        """The interior cells whose sum is ``coord`` (``(coord,)`` for an interior cell)."""
        return self._covered[coord]

    def lines(self) -> tuple[Line, ...]:
        """Every additivity line whose total and members are all present, canonical order."""
        found: list[Line] = []
        for d, dim in enumerate(self._dimensions):
            others = [
                (*o.codes, TOTAL) if i != d else (TOTAL,) for i, o in enumerate(self._dimensions)
            ]
            for total in itertools.product(*others):
                members = tuple((*total[:d], code, *total[d + 1 :]) for code in dim.codes)
                if total in self._cells and all(m in self._cells for m in members):
                    found.append(Line(d, members, total))
        return tuple(found)

    def _expand(self, coord: Coord) -> tuple[Coord, ...]:
        return covered_cells(self._dimensions, coord)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Table):
            return NotImplemented
        return self._dimensions == other._dimensions and dict(self._cells) == dict(other._cells)

    def __hash__(self) -> int:
        return hash((self._dimensions, tuple(self._cells.items())))

    def __repr__(self) -> str:
        names = ", ".join(d.name for d in self._dimensions)
        return f"Table(({names}), {len(self._order)} cells)"
