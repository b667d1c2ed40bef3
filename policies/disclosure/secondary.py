"""Secondary suppression, and the linear-programming attacker that proves it sufficient.

Why: hiding a small cell is pointless when its row total is published next to the other
cells of the row — subtraction gives it back. Whenever margins are released, more cells
(*secondary* suppressions, ``CONF_STATUS=D``) must be withheld so that no suppressed cell can
be recomputed, or even narrowed, from what is published.

The attacker (:func:`attack`) is the reader of the answer at their best: they know the table's
structure, every published value, every flag, the public rules of the profile and that the
true counts are non-negative integers satisfying every additivity constraint (each released
margin is the sum of the interior cells it covers). What they know per cell:

* a published, unperturbed cell has exactly its value;
* a published cell of a cell-key-perturbed answer is within ``±max_noise`` of the truth, is 0
  exactly when the truth is 0, and otherwise is at least the threshold (see
  :mod:`policies.disclosure.cellkey`);
* an ``A`` cell lies in the threshold rule's primary range (``1 … min_cell - 1``);
* a ``D`` cell is at least ``min_cell`` (a partner is never a zero, and a positive published
  count is never below the threshold).

For each suppressed cell the attacker minimises and maximises its value over all integer
solutions (a linear program first, then an integer program with HiGHS through
:func:`scipy.optimize.linprog`). The width of that interval is what the profile protects.

Algorithm (deterministic for identical input):

1. *Line heuristic* (unperturbed answers only): for every line (row, column or fibre with its
   total) that hides exactly one cell, also hide the best partner of that line — a published
   positive cell, preferring one that lies in another line with hidden cells, then interior
   cells over margins, then the smallest value, then canonical order. Repeat to a fixpoint.
2. *Verification and repair*: take the hidden cells in canonical order; while one is narrower
   than required, hide the partner (among published positive cells sharing a line with it)
   that widens it enough — the first such in the preference order, else the one that widens it
   most. Hiding a cell only relaxes the attacker's constraints, so a cell once found
   protected stays protected and the loop ends after at most one pass over the table.

Invariants:
* Required width: a primary cell must keep the attacker's interval at least
  ``min(protection, width of the primary range)`` wide (``protection`` defaults to
  ``min_cell - 1``, so by default the released table narrows an ``A`` cell no further than its
  flag already does); a secondary cell must never be recomputable exactly (width ≥ 1).
* :func:`verify_protection` raises :class:`ProtectionError` (never returns a bool) when any
  hidden cell is narrower than required; :mod:`policies.disclosure.apply` calls it on every
  answer before release, so a defect here fails closed.
* Solver failures raise :class:`ProtectionError` too: nothing is released on doubt.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import linprog  # type: ignore[import-untyped, unused-ignore]
from scipy.sparse import coo_array  # type: ignore[import-untyped, unused-ignore]

from policies.disclosure.table import (
    Coord,
    Dimension,
    DisclosureError,
    Table,
    covered_cells,
    is_margin,
)
from policies.disclosure.threshold import ThresholdRule

MAX_TRIALS = 12
_TOLERANCE = 1e-6

Bounds = tuple[int, int | None]


class ProtectionError(DisclosureError):
    """A suppressed cell could be narrowed below its protection width; nothing may be sent."""

    def __init__(self, message: str, *, cells: Iterable[Coord] = (), hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.cells: tuple[Coord, ...] = tuple(cells)


class Interval(NamedTuple):
    """The values an attacker cannot exclude for one cell; ``high=None`` means unbounded."""

    low: int
    high: int | None

    @property
    def width(self) -> float:
        return math.inf if self.high is None else float(self.high - self.low)


class _Attacker:
    """The additivity constraints of a table's published structure, solved with HiGHS."""

    def __init__(self, dimensions: Sequence[Dimension], coords: Sequence[Coord]) -> None:
        self.coords = tuple(coords)
        self.index = {c: i for i, c in enumerate(self.coords)}
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        count = 0
        for coord in self.coords:
            if not is_margin(coord):
                continue
            rows.append(count)
            cols.append(self.index[coord])
            vals.append(1.0)
            for inner in covered_cells(dimensions, coord):
                if inner not in self.index:
                    raise DisclosureError(f"interior cell {inner} is not part of the answer")
                rows.append(count)
                cols.append(self.index[inner])
                vals.append(-1.0)
            count += 1
        size = len(self.coords)
        self.a_eq: Any = (
            coo_array((vals, (rows, cols)), shape=(count, size)).tocsr() if count else None
        )
        self.b_eq: Any = np.zeros(count) if count else None

    def interval(
        self, bounds: Mapping[Coord, Bounds], target: Coord, *, integer: bool = True
    ) -> Interval:
        """The attacker's interval for ``target`` (LP bounds, tightened by an integer program)."""
        low, high = bounds[target]
        if self.a_eq is None:
            return Interval(low, high)
        ordered = [bounds[c] for c in self.coords]
        low = self._solve(ordered, target, sign=1.0, integer=False)
        top = self._solve(ordered, target, sign=-1.0, integer=False)
        if not integer:
            return Interval(low, top)
        low = self._solve(ordered, target, sign=1.0, integer=True)
        if top is not None:
            top = self._solve(ordered, target, sign=-1.0, integer=True)
        return Interval(low, top)

    def _solve(self, bounds: list[Bounds], target: Coord, *, sign: float, integer: bool) -> Any:
        cost = np.zeros(len(self.coords))
        cost[self.index[target]] = sign
        result = linprog(
            cost,
            A_eq=self.a_eq,
            b_eq=self.b_eq,
            bounds=bounds,
            method="highs",
            integrality=np.ones(len(self.coords)) if integer else None,
        )
        if result.status == 3 and sign < 0:
            return None
        if result.status != 0:
            raise ProtectionError(
                f"the attacker's program for {target} did not solve: {result.message}",
                cells=(target,),
                hint="the published values contradict each other; report a bug",
            )
        value = sign * float(result.fun)
        return math.ceil(value - _TOLERANCE) if sign > 0 else math.floor(value + _TOLERANCE)


def published_bounds(value: int, rule: ThresholdRule, max_noise: int) -> Bounds:
    """What a published value tells the attacker about the true count."""
    if max_noise == 0 or value == 0:
        return value, value
    return max(rule.published_floor(), value - max_noise), value + max_noise


def attacker_bounds(
    coords: Iterable[Coord],
    released: Mapping[Coord, int | None],
    conf_status: Mapping[Coord, str],
    rule: ThresholdRule,
    max_noise: int = 0,
) -> dict[Coord, Bounds]:
    """Per-cell knowledge of the attacker from the published values and flags alone."""
    bounds: dict[Coord, Bounds] = {}
    for coord in coords:
        status = conf_status.get(coord, "F")
        value = released.get(coord)
        if status == "A":
            bounds[coord] = rule.primary_range()
        elif status == "D":
            bounds[coord] = (rule.published_floor(), None)
        elif value is None:
            raise DisclosureError(f"cell {coord} is neither published nor flagged A or D")
        else:
            bounds[coord] = published_bounds(value, rule, max_noise)
    return bounds


def attack(
    dimensions: Sequence[Dimension],
    released: Mapping[Coord, int | None],
    conf_status: Mapping[Coord, str],
    rule: ThresholdRule,
    *,
    max_noise: int = 0,
) -> dict[Coord, Interval]:
    """The tightest interval an attacker can derive for every suppressed cell of an answer."""
    coords = tuple(released)
    attacker = _Attacker(dimensions, coords)
    bounds = attacker_bounds(coords, released, conf_status, rule, max_noise)
    return {
        c: attacker.interval(bounds, c) for c in coords if conf_status.get(c, "F") in ("A", "D")
    }


def default_protection(rule: ThresholdRule) -> int:
    """``min_cell - 1``: the default width an ``A`` cell's interval must keep."""
    return max(1, rule.min_cell - 1)


def required_width(primary: bool, rule: ThresholdRule, protection: int) -> int:
    """The width a hidden cell's interval must reach (see the module invariants)."""
    if not primary:
        return 1
    low, high = rule.primary_range()
    return min(max(1, protection), high - low)


class _Problem:
    """The state of one secondary-suppression run over a table."""

    def __init__(
        self,
        table: Table,
        primary: frozenset[Coord],
        rule: ThresholdRule,
        released: Mapping[Coord, int],
        max_noise: int,
        protection: int,
    ) -> None:
        self.table = table
        self.primary = primary
        self.rule = rule
        self.released = released
        self.max_noise = max_noise
        self.protection = protection
        self.order = {c: i for i, c in enumerate(table.coords())}
        self.lines = table.lines()
        self.lines_of: dict[Coord, list[int]] = {c: [] for c in table.coords()}
        for number, line in enumerate(self.lines):
            for coord in line.cells:
                self.lines_of[coord].append(number)
        self.hidden: set[Coord] = set(primary)
        self.attacker = _Attacker(table.dimensions, table.coords())

    def bounds(self, extra: Coord | None = None) -> dict[Coord, Bounds]:
        status = {c: ("A" if c in self.primary else "D") for c in self.hidden}
        if extra is not None:
            status[extra] = "D"
        shown = {c: (None if c in status else v) for c, v in self.released.items()}
        return attacker_bounds(self.table.coords(), shown, status, self.rule, self.max_noise)

    def required(self, coord: Coord) -> int:
        return required_width(coord in self.primary, self.rule, self.protection)

    def candidate(self, coord: Coord) -> bool:
        return coord not in self.hidden and self.table[coord] > 0

    def preference(self, coord: Coord, besides: Coord) -> tuple[int, int, int, int]:
        crowded = any(
            any(c in self.hidden and c != besides for c in self.lines[n].cells)
            for n in self.lines_of[coord]
        )
        return (
            0 if crowded else 1,
            int(is_margin(coord)),
            self.table[coord],
            self.order[coord],
        )

    def line_heuristic(self) -> None:
        changed = True
        while changed:
            changed = False
            for line in self.lines:
                hidden = [c for c in line.cells if c in self.hidden]
                if len(hidden) != 1:
                    continue
                choices = [c for c in line.cells if self.candidate(c)]
                if choices:
                    self.hidden.add(min(choices, key=lambda c: self.preference(c, hidden[0])))
                    changed = True

    def protected(self, coord: Coord) -> bool:
        need = self.required(coord)
        bounds = self.bounds()
        if self.attacker.interval(bounds, coord, integer=False).width < need:
            return False
        return self.attacker.interval(bounds, coord).width >= need

    def partner(self, coord: Coord) -> Coord:
        near = {c for n in self.lines_of[coord] for c in self.lines[n].cells}
        choices = [c for c in near if self.candidate(c)]
        if not choices:
            choices = [c for c in self.table.coords() if self.candidate(c)]
        if not choices:
            raise ProtectionError(
                f"cell {coord} cannot be protected: nothing published is left to hide",
                cells=(coord,),
            )
        choices.sort(key=lambda c: self.preference(c, coord))
        need = self.required(coord)
        best, best_width = choices[0], -1.0
        for choice in choices[:MAX_TRIALS]:
            width = self.attacker.interval(self.bounds(choice), coord, integer=False).width
            if width >= need:
                return choice
            if width > best_width:
                best, best_width = choice, width
        return best

    def repair(self) -> None:
        confirmed: set[Coord] = set()
        while True:
            pending = sorted(
                (c for c in self.hidden if c not in confirmed), key=self.order.__getitem__
            )
            if not pending:
                return
            coord = pending[0]
            if self.protected(coord):
                confirmed.add(coord)
            else:
                self.hidden.add(self.partner(coord))


def secondary_suppression(
    table: Table,
    primary: Iterable[Coord],
    rule: ThresholdRule,
    *,
    released: Mapping[Coord, int] | None = None,
    max_noise: int = 0,
    protection: int | None = None,
) -> frozenset[Coord]:
    """The cells to hide in addition to ``primary`` (the ``D`` cells).

    ``table`` holds the values suppression decides on (true counts, or noisy counts under
    differential privacy); ``released`` the values a reader would see for published cells
    (the cell-key perturbed values, ``max_noise`` their public noise bound) and defaults to the
    table's own values.
    """
    primary_set = frozenset(primary)
    if not primary_set:
        return frozenset()
    shown = dict(table.cells) if released is None else dict(released)
    problem = _Problem(
        table,
        primary_set,
        rule,
        shown,
        max_noise,
        default_protection(rule) if protection is None else protection,
    )
    if max_noise == 0:
        problem.line_heuristic()
    problem.repair()
    return frozenset(problem.hidden - primary_set)


def verify_protection(
    table: Table,
    primary: Iterable[Coord],
    secondary: Iterable[Coord],
    rule: ThresholdRule,
    *,
    released: Mapping[Coord, int] | None = None,
    max_noise: int = 0,
    protection: int | None = None,
) -> None:
    """Raise :class:`ProtectionError` unless every hidden cell keeps its required width."""
    primary_set = frozenset(primary)
    hidden = primary_set | frozenset(secondary)
    shown = dict(table.cells) if released is None else dict(released)
    status = {c: ("A" if c in primary_set else "D") for c in hidden}
    visible = {c: (None if c in hidden else v) for c, v in shown.items()}
    intervals = attack(table.dimensions, visible, status, rule, max_noise=max_noise)
    level = default_protection(rule) if protection is None else protection
    narrow = [
        c
        for c in table.coords()
        if c in intervals and intervals[c].width < required_width(c in primary_set, rule, level)
    ]
    if narrow:
        raise ProtectionError(
            f"{len(narrow)} suppressed cell(s) can be narrowed from the published values: "
            + ", ".join(f"{c} in {intervals[c]}" for c in narrow[:3]),
            cells=narrow,
            hint="the answer must not be released; report a bug in secondary suppression",
        )
