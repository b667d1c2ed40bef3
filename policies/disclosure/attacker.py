"""The attacker of a suppressed table: the tightest interval the published answer leaves a cell.

Why: secondary suppression (:mod:`policies.disclosure.secondary`) is only as good as the
attacker that checks it, and that check runs hundreds of times per answer — for every hidden
cell, every candidate partner and once more before release. The attacker's constraints (each
released margin is the sum of the interior cells it covers) depend on the table's structure
alone; between two questions only the cell bounds (what a reader knows of each cell, from its
value or its flag) and the cell asked about change. So the constraints are built once per
table into a persistent HiGHS model, and each question changes just the bounds that differ
from the previous one and the one objective coefficient, then re-solves from the previous
simplex basis (a warm start: a few pivots instead of a model built and solved from scratch).

Invariants:
* :meth:`Attacker.interval` returns the exact minimum and maximum of the cell over the linear
  relaxation, rounded inwards (``ceil`` of the minimum, ``floor`` of the maximum, within
  ``1e-6``), and with ``integer`` the integer program's (three-dimensional tables only:
  for one and two dimensions the constraints are a network, totally unimodular, and the
  relaxation's optimum is already integral). An unbounded maximum is ``high=None``.
* The optimum *value* of a linear program is unique, so the answer does not depend on the
  basis the solver starts from, nor on the order of questions: the warm-started HiGHS model
  (``solver="highs"``, the default) and a model built afresh for each question by
  :func:`scipy.optimize.milp` (``solver="milp"``, the reference kept for comparison) give the
  same intervals. Integer programs always go through :func:`scipy.optimize.milp`.
* An interval is remembered, per attacker, under the exact question: a 160-bit BLAKE2b digest
  of every cell's bounds, the cell, and whether the integer program was asked. A remembered
  answer is therefore the answer to the same program, and the verification that follows a
  suppression run (the same bounds for the final pattern) costs no new solve. At most
  :data:`MEMO_LIMIT` intervals are kept; :func:`attacker_for` keeps one attacker per thread.
* A status other than optimal (or unbounded, for a maximum) is retried once from a cold start,
  then raises :class:`ProtectionError`: nothing is released on doubt.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

# The bare binding: highspy.Highs adds callback plumbing to every run and prints a banner
# on stdout when the first one is made, which would corrupt the CLI's output.
from highspy._core import HighsLp, HighsModelStatus, MatrixFormat, _Highs

from policies.disclosure.table import Coord, Dimension, DisclosureError, covered_cells, is_margin
from policies.disclosure.threshold import Bounds

Solver = Literal["highs", "milp"]
SOLVERS: tuple[Solver, ...] = ("highs", "milp")
_TOLERANCE = 1e-6
MEMO_LIMIT = 4096
Floats = npt.NDArray[np.float64]
# Quiet, no presolve (it would drop the basis kept between questions), and the primal
# simplex: most questions only change the objective, which keeps the previous basis primal
# feasible (measured on the CRM matrices: a fifth of the dual's iterations). ``threads`` is
# left alone: HiGHS refuses to run when it differs from the process-wide scheduler's.
_OPTIONS: tuple[tuple[str, bool | int | str], ...] = (
    ("output_flag", False),
    ("presolve", "off"),
    ("simplex_strategy", 4),
)


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


class Box(NamedTuple):
    """Per-cell bounds in the attacker's cell order; ``inf`` in ``high`` means unbounded."""

    low: Floats
    high: Floats

    @classmethod
    def of(cls, coords: Sequence[Coord], bounds: Mapping[Coord, Bounds]) -> Box:
        return cls(
            np.array([float(bounds[c][0]) for c in coords], dtype=np.float64),
            np.array(
                [math.inf if (h := bounds[c][1]) is None else float(h) for c in coords],
                dtype=np.float64,
            ),
        )


def _round(value: float, sign: float) -> int:
    return math.ceil(value - _TOLERANCE) if sign > 0 else math.floor(value + _TOLERANCE)


class Attacker:
    """The additivity constraints of a table's published structure, and their solver."""

    def __init__(
        self, dimensions: Sequence[Dimension], coords: Sequence[Coord], *, solver: Solver = "highs"
    ) -> None:
        if solver not in SOLVERS:
            raise DisclosureError(f"unknown attacker solver {solver!r}")
        self.coords = tuple(coords)
        self.index = {c: i for i, c in enumerate(self.coords)}
        self.solver: Solver = solver
        # Tables of one or two dimensions have network (totally unimodular) constraints, so
        # the linear program's optimum is already integral; three dimensions need the IP.
        self.integral_lp = len(dimensions) <= 2
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
        self.constraints: Any = None
        self._highs: _Highs | None = None
        self._memo: dict[tuple[bytes, int, bool], Interval] = {}
        if count:
            # SciPy is imported here, not at module load: it was 0.6 s of every CLI command
            # and node start, most of which never protect a table.
            from scipy.optimize import LinearConstraint  # type: ignore[import-untyped, unused-ignore]
            from scipy.sparse import coo_array  # type: ignore[import-untyped, unused-ignore]

            matrix = coo_array((vals, (rows, cols)), shape=(count, len(self.coords)))
            self.constraints = LinearConstraint(matrix.tocsr(), 0.0, 0.0)
            if solver == "highs":
                self._build(matrix.tocsc(), count)

    def _build(self, matrix: Any, count: int) -> None:
        size = len(self.coords)
        lp = HighsLp()
        lp.num_col_ = size
        lp.num_row_ = count
        lp.col_cost_ = np.zeros(size)
        lp.col_lower_ = np.zeros(size)
        lp.col_upper_ = np.full(size, math.inf)
        lp.row_lower_ = np.zeros(count)
        lp.row_upper_ = np.zeros(count)
        lp.a_matrix_.format_ = MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.asarray(matrix.indptr, dtype=np.int32)
        lp.a_matrix_.index_ = np.asarray(matrix.indices, dtype=np.int32)
        lp.a_matrix_.value_ = np.asarray(matrix.data, dtype=np.float64)
        highs = _Highs()
        for option, value in _OPTIONS:
            highs.setOptionValue(option, value)
        highs.passModel(lp)
        self._highs = highs
        self._low = np.zeros(size)
        self._high = np.full(size, math.inf)
        self._cost: tuple[int, float] | None = None

    def interval(
        self,
        box: Box,
        target: Coord,
        *,
        integer: bool = True,
        relaxed: Interval | None = None,
    ) -> Interval:
        """The attacker's interval for ``target`` when each cell lies within ``box``.

        The linear relaxation comes first (it also detects an unbounded maximum); with
        ``integer`` it is tightened by an integer program for three-dimensional tables.
        ``relaxed`` passes a relaxation already solved for the same bounds.
        """
        if self.constraints is None:
            i = self.index[target]
            high = box.high[i]
            return Interval(int(box.low[i]), None if math.isinf(high) else int(high))
        exact = integer and not self.integral_lp
        digest = hashlib.blake2b(box.low.tobytes() + box.high.tobytes(), digest_size=20).digest()
        key = (digest, self.index[target], exact)
        if (known := self._memo.get(key)) is not None:
            return known
        if len(self._memo) >= MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = found = self._interval(box, target, exact=exact, relaxed=relaxed)
        return found

    def _interval(
        self, box: Box, target: Coord, *, exact: bool, relaxed: Interval | None
    ) -> Interval:
        if relaxed is None:
            low = self._relaxation(box, target, sign=1.0)
            assert low is not None  # the lower bounds are finite: a minimum always exists
            relaxed = Interval(low, self._relaxation(box, target, sign=-1.0))
        if not exact:
            return relaxed
        low = self._milp(box, target, sign=1.0, integer=True)
        top = None if relaxed.high is None else self._milp(box, target, sign=-1.0, integer=True)
        assert low is not None
        return Interval(low, top)

    def _relaxation(self, box: Box, target: Coord, *, sign: float) -> int | None:
        if self._highs is None:
            return self._milp(box, target, sign=sign, integer=False)
        return self._warm(self._highs, box, target, sign=sign)

    def _warm(self, highs: _Highs, box: Box, target: Coord, *, sign: float) -> int | None:
        changed = np.flatnonzero((box.low != self._low) | (box.high != self._high))
        if changed.size:
            highs.changeColsBounds(
                changed.size, changed.astype(np.int32), box.low[changed], box.high[changed]
            )
            self._low[changed] = box.low[changed]
            self._high[changed] = box.high[changed]
        cost = (self.index[target], sign)
        if cost != self._cost:
            if self._cost is not None:
                highs.changeColCost(self._cost[0], 0.0)
            highs.changeColCost(cost[0], sign)
            self._cost = cost
        for attempt in range(2):
            if attempt:
                highs.clearSolver()  # a cold start from the same model
            highs.run()
            status = highs.getModelStatus()
            if status == HighsModelStatus.kOptimal:
                return _round(sign * highs.getObjectiveValue(), sign)
            if status == HighsModelStatus.kUnbounded and sign < 0:
                return None
        raise ProtectionError(
            f"the attacker's program for {target} did not solve: "
            f"{highs.modelStatusToString(status)}",
            cells=(target,),
            hint="the published values contradict each other; report a bug",
        )

    def _milp(self, box: Box, target: Coord, *, sign: float, integer: bool) -> int | None:
        from scipy.optimize import Bounds as ScipyBounds  # type: ignore[import-untyped, unused-ignore]
        from scipy.optimize import milp  # type: ignore[import-untyped, unused-ignore]

        cost = np.zeros(len(self.coords))
        cost[self.index[target]] = sign
        result = milp(
            cost,
            constraints=self.constraints,
            bounds=ScipyBounds(box.low, box.high),
            integrality=np.ones(len(self.coords)) if integer else None,
        )
        if result.status == 3 and sign < 0 and not integer:
            return None
        if result.status != 0:
            raise ProtectionError(
                f"the attacker's program for {target} did not solve: {result.message}",
                cells=(target,),
                hint="the published values contradict each other; report a bug",
            )
        return _round(sign * float(result.fun), sign)


_LOCAL = threading.local()


def attacker_for(
    dimensions: Sequence[Dimension], coords: Sequence[Coord], *, solver: Solver = "highs"
) -> Attacker:
    """The calling thread's attacker for this table structure, kept while the structure stays.

    Suppressing a table and verifying it ask the same questions of the same structure one
    after the other (and consecutive answers of one matrix share their structure), so the
    model, its basis and the intervals already found carry over. One per thread: a HiGHS
    model is not safe to share between threads.
    """
    key = (tuple(dimensions), tuple(coords), solver)
    cached: tuple[tuple[Any, ...], Attacker] | None = getattr(_LOCAL, "attacker", None)
    if cached is None or cached[0] != key:
        cached = (key, Attacker(dimensions, coords, solver=solver))
        _LOCAL.attacker = cached
    return cached[1]
