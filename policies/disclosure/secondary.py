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
solutions (a linear program first, then an integer program for three dimensions); the solver
lives in :mod:`policies.disclosure.attacker`. The width of that interval is what the profile
protects.

Algorithm (deterministic for identical input):

1. *Hypercubes* (unperturbed answers only, after the hypercube method of tau-ARGUS's
   GHMITER): for each primary cell, among the sub-tables of two codes per dimension through it
   (a code may pair with the dimension's total ``_T``), keep those whose corners can all shift
   together — ``+t`` and ``-t`` alternating, which leaves every line sum unchanged — far enough
   for the cell's target while staying within what each corner's flag would admit (no corner
   may be a published zero). Hide the corners of the cheapest: fewest new suppressions, then
   smallest suppressed total, then canonical order.
2. *Verification and repair*: take the hidden cells in canonical order; while one is narrower
   than required, hide the partner (among published positive cells sharing a line with it)
   that widens it enough — the first such in a preference order (enough room above
   ``min_cell``, in a line that already hides something, interior before margin, small value,
   canonical order), else the one that widens it most. Hiding a cell only relaxes the
   attacker's constraints, so a cell once found protected stays protected and the loop ends
   after at most one pass over the table. Cell-key answers use this step alone: their noise
   already widens every interval.

Invariants:
* Required width of a hidden cell: ``min(target, ceiling)``. The target is ``protection`` for
  a primary cell — by default ``⌊(min_cell - 1) / 2⌋`` (2 for ``min_cell = 5``: an ``A``
  cell is never narrowed to fewer than three consecutive values), capped by the width of the
  primary range itself — and 1 for a secondary cell (never recomputable exactly). The ceiling
  is the width the cell would have if every positive published cell were hidden too: flags
  alone can narrow a cell (two ``A`` cells in a row whose total is also ``A``), and no
  suppression pattern can do better than that.
* :func:`verify_protection` raises :class:`ProtectionError` (never returns a bool) when any
  hidden cell is narrower than required; :mod:`policies.disclosure.apply` calls it on every
  answer before release, so a defect here fails closed.
* Solver failures raise :class:`ProtectionError` too: nothing is released on doubt.
* Cost: two linear programs per hidden cell and per tried partner, plus integer programs for
  three-dimensional tables, whose constraints are not totally unimodular (for one and two
  dimensions they are a network, so the relaxation is already integral). The programs of one
  table share one warm-started HiGHS model, and an interval already found for the same bounds
  is not solved again (:func:`~policies.disclosure.attacker.attacker_for`); the intervals, and
  so the suppressions, are those of a model built afresh for every question
  (``solver="milp"``, kept as the reference).
* Hypercubes are found without summing lines: a cube is balanced exactly when no corner lies
  on a released line along a dimension the cube leaves out (see ``_Problem._balanced``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np

from policies.disclosure.attacker import (
    Attacker,
    Box,
    Interval,
    ProtectionError,
    Solver,
    attacker_for,
)
from policies.disclosure.table import (
    TOTAL,
    Coord,
    Dimension,
    Table,
    is_margin,
)
from policies.disclosure.threshold import ThresholdRule, attacker_bounds

__all__ = [
    "Interval",
    "ProtectionError",
    "attack",
    "default_protection",
    "required_width",
    "secondary_suppression",
    "verify_protection",
]

MAX_TRIALS = 12
MAX_ROOM = 1 << 30


def attack(
    dimensions: Sequence[Dimension],
    released: Mapping[Coord, int | None],
    conf_status: Mapping[Coord, str],
    rule: ThresholdRule,
    *,
    max_noise: int = 0,
    solver: Solver = "highs",
) -> dict[Coord, Interval]:
    """The tightest interval an attacker can derive for every suppressed cell of an answer."""
    coords = tuple(released)
    return _attack(
        attacker_for(dimensions, coords, solver=solver), released, conf_status, rule, max_noise
    )


def _attack(
    attacker: Attacker,
    released: Mapping[Coord, int | None],
    conf_status: Mapping[Coord, str],
    rule: ThresholdRule,
    max_noise: int,
) -> dict[Coord, Interval]:
    coords = attacker.coords
    box = Box.of(coords, attacker_bounds(coords, released, conf_status, rule, max_noise))
    return {c: attacker.interval(box, c) for c in coords if conf_status.get(c, "F") in ("A", "D")}


def default_protection(rule: ThresholdRule) -> int:
    """``⌊(min_cell - 1) / 2⌋`` (at least 1): the default width an ``A`` cell must keep."""
    return max(1, (rule.min_cell - 1) // 2)


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
        solver: Solver = "highs",
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
        # The cells on some released line along each dimension (see _balanced).
        self.along = tuple(
            frozenset(c for line in self.lines if line.dimension == d for c in line.cells)
            for d in range(len(table.dimensions))
        )
        self.hidden: set[Coord] = set(primary)
        self.attacker = attacker_for(table.dimensions, table.coords(), solver=solver)
        self._ceiling: dict[Coord, float] = {}
        # What a reader knows of each cell when it is published, and when it is hidden (as
        # attacker_bounds has it), so that a set of hidden cells becomes bounds by indexing.
        coords = self.attacker.coords
        shown = Box.of(coords, attacker_bounds(coords, released, {}, rule, max_noise))
        flags = {c: ("A" if c in primary else "D") for c in coords}
        hidden = Box.of(coords, attacker_bounds(coords, {}, flags, rule, max_noise))
        self._shown, self._hidden = shown, hidden
        self._moves = self._cell_moves()

    def bounds(self, hidden: Iterable[Coord]) -> Box:
        """The attacker's bounds on every cell when ``hidden`` are suppressed."""
        index = self.attacker.index
        rows = np.fromiter((index[c] for c in hidden), dtype=np.intp)
        low, high = self._shown.low.copy(), self._shown.high.copy()
        low[rows] = self._hidden.low[rows]
        high[rows] = self._hidden.high[rows]
        return Box(low, high)

    def ceiling(self, coord: Coord) -> float:
        """The widest interval any suppression pattern can give ``coord``: all positives hidden.

        Zeros cannot be hidden (a hidden cell is known to be positive), and flags alone may
        already narrow a cell (two primary cells in a row whose total is primary), so this,
        not the protection level, is the bound no amount of suppression can exceed.
        """
        if coord not in self._ceiling:
            everything = [c for c in self.table.coords() if c in self.primary or self.table[c]]
            interval = self.attacker.interval(self.bounds(everything), coord)
            self._ceiling[coord] = interval.width
        return self._ceiling[coord]

    def target(self, coord: Coord) -> int:
        return required_width(coord in self.primary, self.rule, self.protection)

    def candidate(self, coord: Coord) -> bool:
        return coord not in self.hidden and self.table[coord] > 0

    def preference(self, coord: Coord, besides: Coord) -> tuple[int, int, int, int, int]:
        # A partner known to be >= min_cell can only give way by its excess over min_cell, so
        # partners with enough excess come first; then the usual preference for cells in lines
        # that already hide something, for interior cells, for small values.
        short = self.table[coord] - self.rule.published_floor() < self.target(besides)
        crowded = any(
            any(c in self.hidden and c != besides for c in self.lines[n].cells)
            for n in self.lines_of[coord]
        )
        return (
            int(short),
            0 if crowded else 1,
            int(is_margin(coord)),
            self.table[coord],
            self.order[coord],
        )

    def hypercubes(self) -> None:
        """Hide, for each primary cell, the cheapest hypercube that lets it move enough."""
        for coord in sorted(self.primary, key=self.order.__getitem__):
            if self.protected(coord):
                continue  # e.g. no released margin constrains it
            best: tuple[tuple[int, int, tuple[int, ...]], tuple[Coord, ...]] | None = None
            need = self.target(coord)
            for corners in self._cubes(coord):
                if self._room(corners) < need:
                    continue
                fresh = [c for c, _ in corners if c not in self.hidden]
                cost = (
                    len(fresh),
                    sum(self.table[c] for c in fresh),
                    tuple(sorted(self.order[c] for c, _ in corners)),
                )
                if best is None or cost < best[0]:
                    best = (cost, tuple(c for c, _ in corners))
            if best is not None:
                self.hidden.update(best[1])

    def _cubes(self, coord: Coord) -> Iterator[list[tuple[Coord, int]]]:
        """Every hypercube through ``coord``: corners with the sign of their shift.

        Moving ``+t`` on corners of sign +1 and ``-t`` on the others keeps every line's sum
        equal to its total: two codes of a dimension move in opposite directions, a code and
        the total ``_T`` in the same one. A cube may leave a dimension out (when only some
        margins are released); every cube is checked against the lines it touches. A
        dimension along which ``coord`` lies on a released line must move (see _balanced).
        """
        dims = self.table.dimensions
        options = [
            [None, *(p for p in (*dim.codes, TOTAL) if p != code)]
            for dim, code in zip(dims, coord, strict=True)
        ]
        for d, dim_options in enumerate(options):
            if coord in self.along[d]:
                dim_options.remove(None)
        for partners in itertools.product(*options):
            moving = [(d, p) for d, p in enumerate(partners) if p is not None]
            if not moving:
                continue
            corners: list[tuple[Coord, int]] = []
            for choice in itertools.product((False, True), repeat=len(moving)):
                corner, sign = list(coord), 1
                for (d, partner), moved in zip(moving, choice, strict=True):
                    if moved:
                        corner[d] = partner
                        sign = sign if TOTAL in (coord[d], partner) else -sign
                corners.append((tuple(corner), sign))
            still = [d for d, p in enumerate(partners) if p is None]
            if all(c in self.order for c, _ in corners) and self._balanced(corners, still):
                yield corners

    def _balanced(self, corners: list[tuple[Coord, int]], still: list[int]) -> bool:
        """True when shifting the corners leaves every released line sum equal to its total.

        A line along a moving dimension holds exactly two corners, which cancel: two codes
        move in opposite directions, and a code moves with its total. A line along a
        dimension the cube leaves out (``still``) holds exactly one corner, which nothing
        balances. So the cube is balanced exactly when no corner lies on a released line
        along a dimension in ``still``.
        """
        return not any(corner in self.along[d] for d in still for corner, _ in corners)

    def _room(self, corners: list[tuple[Coord, int]]) -> int:
        """How far (up plus down) the first corner can move along the cube, all hidden."""
        up, down = math.inf, math.inf
        for corner, sign in corners:
            moves = self._moves.get(corner)
            if moves is None:
                return 0  # a published zero: hiding it would tell it is not a zero
            rise, fall = moves
            if sign > 0:
                up, down = min(up, rise), min(down, fall)
            else:
                up, down = min(up, fall), min(down, rise)
        return int(up + down) if up + down < math.inf else MAX_ROOM

    def _cell_moves(self) -> dict[Coord, tuple[float, float]]:
        """How far each cell could rise and fall once hidden (published zeros left out)."""
        moves: dict[Coord, tuple[float, float]] = {}
        for coord, value in self.table.cells.items():
            if coord in self.primary:
                low, high = self.rule.primary_range()
                moves[coord] = (high - value, value - low)
            elif value:
                moves[coord] = (math.inf, value - self.rule.published_floor())
        return moves

    def width(self, coord: Coord, extra: Coord | None = None, *, integer: bool = True) -> float:
        hidden = self.hidden if extra is None else {*self.hidden, extra}
        return self.attacker.interval(self.bounds(hidden), coord, integer=integer).width

    def protected(self, coord: Coord) -> bool:
        need = self.target(coord)
        bounds = self.bounds(self.hidden)
        relaxed = self.attacker.interval(bounds, coord, integer=False)
        # The integer interval is never wider than the relaxation: a relaxation narrower than
        # both the target and the ceiling already fails, without the integer program.
        if relaxed.width < need and relaxed.width < self.ceiling(coord):
            return False
        width = self.attacker.interval(bounds, coord, relaxed=relaxed).width
        return width >= need or width >= self.ceiling(coord)

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
        need = min(float(self.target(coord)), self.ceiling(coord))
        best, best_width = choices[0], -1.0
        for choice in choices[:MAX_TRIALS]:
            width = self.width(coord, choice, integer=False)
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
    solver: Solver = "highs",
) -> frozenset[Coord]:
    """The cells to hide in addition to ``primary`` (the ``D`` cells).

    ``table`` holds the values suppression decides on (true counts, or noisy counts under
    differential privacy); ``released`` the values a reader would see for published cells
    (the cell-key perturbed values, ``max_noise`` their public noise bound) and defaults to the
    table's own values. ``solver`` picks the attacker's solver (see
    :mod:`policies.disclosure.attacker`); both give the same cells.
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
        solver,
    )
    if max_noise == 0:
        problem.hypercubes()
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
    solver: Solver = "highs",
) -> None:
    """Raise :class:`ProtectionError` unless every hidden cell keeps its required width.

    The intervals come from :func:`attack`, i.e. from what the answer publishes; the required
    width of a cell is ``min(target, ceiling)`` as described in the module invariants.
    """
    primary_set = frozenset(primary)
    hidden = primary_set | frozenset(secondary)
    shown = dict(table.cells) if released is None else dict(released)
    status = {c: ("A" if c in primary_set else "D") for c in hidden}
    visible = {c: (None if c in hidden else v) for c, v in shown.items()}
    level = default_protection(rule) if protection is None else protection
    problem = _Problem(table, primary_set, rule, shown, max_noise, level, solver)
    intervals = _attack(problem.attacker, visible, status, rule, max_noise)
    narrow = [
        c
        for c in table.coords()
        if c in intervals
        and intervals[c].width < problem.target(c)
        and intervals[c].width < problem.ceiling(c)
    ]
    if narrow:
        raise ProtectionError(
            f"{len(narrow)} suppressed cell(s) can be narrowed from the published values: "
            + ", ".join(f"{c} in {intervals[c]}" for c in narrow[:3]),
            cells=narrow,
            hint="the answer must not be released; report a bug in secondary suppression",
        )
