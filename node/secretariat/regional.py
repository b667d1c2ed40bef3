"""Regional totals of the members' tables, with ``N_CONTRIB`` and the publication rule.

Why a pure module: the Secretariat publishes regional cells, and what it may publish must not
depend on how the tables arrived (a pull of protected tables, or a sum of additive shares
through the helper). Both paths end here, with plain numbers and no I/O.

Invariants:
* ``N_CONTRIB`` of a cell is the number of member countries with records in it: a released
  value above zero, or a cell the member suppressed (suppression means 1 or more persons).
* A regional cell is published only when ``N_CONTRIB >= min_countries`` (default 3) and its
  value is at least ``min_persons`` (default 5); otherwise its value is withheld (``None``,
  ``OBS_STATUS=Q``, ``CONF_STATUS=A``) and ``flag`` says which rule failed. A withheld cell
  is never shown as 0. A cell no member has anyone in is a true zero and is published.
* No additivity line (a total and the cells it adds up) hides exactly one cell: otherwise
  subtraction from the published total would give it back. Partners are withheld too
  (``CONF_STATUS=D``, flag ``secondary``) — see :func:`secondary_withholding`.
* A member cell suppressed at the member contributes nothing to the value: the published sum
  is then a lower bound, marked ``OBS_STATUS=E`` and counted in ``n_suppressed``.
* Regional sums count transits, not unique persons: one person recorded by several countries
  counts once in each (:data:`TRANSITS_NOTE`), and every output says so.
* A table built without some members (down, late, refusing) is ``partial`` and names them;
  the cells of the members that answered are still summed. A partial table is a result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from node.errors import InvalidArgumentError

TRANSITS_NOTE = {
    "es": (
        "Las sumas regionales cuentan tránsitos, no personas únicas: una persona registrada "
        "por varios países cuenta una vez en cada uno de ellos."
    ),
    "en": (
        "Regional sums count transits, not unique persons: a person recorded by several "
        "countries counts once in each of them."
    ),
}

CellKey = tuple[str, ...]
TOTAL = "_T"


@dataclass(frozen=True)
class PublicationRule:
    """A regional cell is published with at least this many countries and persons."""

    min_countries: int = 3
    min_persons: int = 5

    def __post_init__(self) -> None:
        if self.min_countries < 1 or self.min_persons < 1:
            raise InvalidArgumentError(
                "publication thresholds must be at least 1", field="publication_rule"
            )

    def describe(self) -> str:
        return (
            f"published with at least {self.min_countries} contributing countries "
            f"and at least {self.min_persons} persons"
        )


@dataclass(frozen=True)
class MemberCell:
    """One cell as a member released it: ``value`` None means suppressed at the member."""

    value: int | None
    perturbed: bool = False


@dataclass(frozen=True)
class MemberTable:
    """One member's answer for one table and period."""

    country: str
    dimensions: tuple[str, ...]
    cells: Mapping[CellKey, MemberCell]
    as_of: dt.datetime | None = None


@dataclass(frozen=True)
class RegionalCell:
    key: CellKey
    value: int | None
    n_contrib: int
    n_suppressed: int
    obs_status: str
    conf_status: str
    flag: str  # "" when published, else "few_countries" or "few_persons"
    perturbed: bool = False

    @property
    def published(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class RegionalTable:
    dimensions: tuple[str, ...]
    cells: list[RegionalCell]
    contributors: tuple[str, ...]
    missing: tuple[str, ...]
    rule: PublicationRule
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def status(self) -> str:
        return "partial" if self.missing else "complete"

    @property
    def n_contrib(self) -> dict[CellKey, int]:
        return {c.key: c.n_contrib for c in self.cells}

    def cell(self, key: CellKey) -> RegionalCell | None:
        return next((c for c in self.cells if c.key == key), None)

    def withheld(self) -> int:
        return sum(1 for c in self.cells if c.value is None)


def judge(
    key: CellKey,
    total: int,
    n_contrib: int,
    rule: PublicationRule,
    *,
    n_suppressed: int = 0,
    perturbed: bool = False,
) -> RegionalCell:
    """Apply the publication rule to one summed cell."""
    if total < 0 or n_contrib < 0:
        raise InvalidArgumentError("negative regional count", field="cells")
    if n_contrib == 0:  # every member that answered has no one here: a zero, estimated if a
        # member's answer was perturbed (its zero is then a noisy count, flagged E as members do)
        return RegionalCell(
            key, total, 0, n_suppressed, "E" if perturbed else "A", "F", "", perturbed
        )
    if n_contrib < rule.min_countries:
        return RegionalCell(key, None, n_contrib, n_suppressed, "Q", "A", "few_countries")
    if total < rule.min_persons:
        return RegionalCell(key, None, n_contrib, n_suppressed, "Q", "A", "few_persons")
    status = "E" if n_suppressed or perturbed else "A"
    return RegionalCell(key, total, n_contrib, n_suppressed, status, "F", "", perturbed)


def _lines(keys: Iterable[CellKey], width: int) -> list[list[CellKey]]:
    """Every additivity line present: a margin cell (``_T`` at one position) and the cells
    it totals; the margin comes first."""
    present = set(keys)
    lines: list[list[CellKey]] = []
    for margin in sorted(present):
        for i in range(width):
            if margin[i] != TOTAL:
                continue
            members = [
                k
                for k in present
                if k[i] != TOTAL and all(k[j] == margin[j] for j in range(width) if j != i)
            ]
            if members:
                lines.append([margin, *sorted(members)])
    return lines


def secondary_withholding(cells: list[RegionalCell], width: int) -> list[RegionalCell]:
    """Withhold more cells until no additivity line hides exactly one cell.

    Otherwise a withheld cell would come back by subtraction from its line's published total.
    The partner is the line's smallest positive published cell (interior cells before the
    total, then key order); newly withheld cells are flagged ``CONF_STATUS=D``.
    """
    by_key = {c.key: c for c in cells}
    lines = _lines(by_key, width)
    changed = True
    while changed:
        changed = False
        for line in lines:
            hidden = [k for k in line if by_key[k].value is None]
            if len(hidden) != 1:
                continue
            candidates = [k for k in line if by_key[k].value is not None]
            positive = [k for k in candidates if (by_key[k].value or 0) > 0]
            pool = positive or candidates
            if not pool:
                continue
            partner = min(pool, key=lambda k: (k == line[0], by_key[k].value or 0, k))
            old = by_key[partner]
            by_key[partner] = RegionalCell(
                old.key, None, old.n_contrib, old.n_suppressed, "Q", "D", "secondary"
            )
            changed = True
    return [by_key[c.key] for c in cells]


def regional_totals(
    tables: Iterable[MemberTable],
    *,
    dimensions: Sequence[str],
    missing: Iterable[str] = (),
    rule: PublicationRule | None = None,
) -> RegionalTable:
    """Sum the members' released cells; count contributors; apply the publication rule."""
    rule = rule or PublicationRule()
    dims = tuple(dimensions)
    sums: dict[CellKey, int] = {}
    contrib: dict[CellKey, int] = {}
    suppressed: dict[CellKey, int] = {}
    perturbed: dict[CellKey, bool] = {}
    contributors: list[str] = []
    for table in tables:
        if table.dimensions != dims:
            raise InvalidArgumentError(
                f"{table.country} answered dimensions {list(table.dimensions)}, "
                f"expected {list(dims)}",
                field="dimensions",
            )
        if table.country in contributors:
            raise InvalidArgumentError(f"{table.country} is summed twice", field="members")
        contributors.append(table.country)
        for key, cell in table.cells.items():
            sums.setdefault(key, 0)
            contrib.setdefault(key, 0)
            suppressed.setdefault(key, 0)
            if cell.value is None:
                contrib[key] += 1
                suppressed[key] += 1
                continue
            if cell.value < 0:
                raise InvalidArgumentError(
                    f"{table.country} released a negative count", field="cells"
                )
            sums[key] += cell.value
            if cell.value > 0:
                contrib[key] += 1
            if cell.perturbed:
                perturbed[key] = True
    cells = [
        judge(
            key,
            sums[key],
            contrib[key],
            rule,
            n_suppressed=suppressed[key],
            perturbed=perturbed.get(key, False),
        )
        for key in sorted(sums)
    ]
    cells = secondary_withholding(cells, len(dims))
    absent = tuple(sorted(set(missing) - set(contributors)))
    return RegionalTable(dims, cells, tuple(sorted(contributors)), absent, rule)


def from_sums(
    dimensions: Sequence[str],
    totals: Mapping[CellKey, tuple[int, int]],
    *,
    contributors: Iterable[str],
    missing: Iterable[str] = (),
    rule: PublicationRule | None = None,
) -> RegionalTable:
    """A regional table from exact sums ``key -> (value, n_contrib)`` (regional-only tables).

    Cells no member has records in are left out, as a pulled table leaves them out.
    """
    rule = rule or PublicationRule()
    cells = [
        judge(key, value, n, rule)
        for key, (value, n) in sorted(totals.items())
        if value > 0 or n > 0
    ]
    cells = secondary_withholding(cells, len(tuple(dimensions)))
    members = tuple(sorted(set(contributors)))
    absent = tuple(sorted(set(missing) - set(members)))
    return RegionalTable(tuple(dimensions), cells, members, absent, rule)


def margin_totals(table: RegionalTable, dimension: str) -> dict[str, int | None]:
    """Published values along one dimension with every other dimension at ``_T``.

    Used by the brief (e.g. totals per nationality); a withheld cell stays ``None``.
    """
    try:
        index = table.dimensions.index(dimension)
    except ValueError:
        raise InvalidArgumentError(
            f"{dimension!r} is not a dimension of the table", field="dimension"
        ) from None
    out: dict[str, int | None] = {}
    for cell in table.cells:
        others = [v for i, v in enumerate(cell.key) if i != index]
        if cell.key[index] != "_T" and all(v == "_T" for v in others):
            out[cell.key[index]] = cell.value
    return out
