"""Differential privacy: exact integer noise and a per-peer, per-period privacy budget.

Why: an agreement may promise a formal guarantee — whatever else a peer knows, one more or one
fewer person in the data changes the probability of any answer by at most a factor
``exp(epsilon)`` — and cap the total a peer may spend per quarter. Floating-point Laplace or
Gaussian noise breaks such promises in practice (the low bits of a float sample leak the true
value), so the samplers here draw *integers* with exact rational arithmetic
(:class:`fractions.Fraction`) from an injected uniform integer source, following the
algorithms of Canonne, Kamath and Steinke, "The Discrete Gaussian for Differential Privacy"
(NeurIPS 2020): Bernoulli(exp(-γ)) by alternating series, discrete Laplace by a geometric
construction, discrete Gaussian by rejection from discrete Laplace.

Mechanisms and what ``epsilon`` means (Δ is the L1 sensitivity, see below):

* ``discrete_laplace``: P(noise = x) ∝ exp(-ε|x|/Δ); ε-differentially private (pure DP).
* ``discrete_gaussian``: P(noise = x) ∝ exp(-x²/(2σ²)) with σ² = Δ²/ε², i.e. ρ-zCDP with
  ρ = ε²/2 (the zCDP level that pure ε-DP also implies). It is *not* pure ε-DP; over ``k``
  answers it is (Σρᵢ)-zCDP, which converts to (ε', δ)-DP for any δ.

Sensitivity assumption: the table counts persons (or events) in disjoint interior cells, and
one person contributes at most Δ records to the table (Δ = 1 for a persons measure with one
cell per person; the node passes Δ for an events measure). Adding or removing a person then
moves the interior vector by at most Δ in L1 norm (and L2), so noise of the scale above on
every interior cell protects the whole table for one charge of ε. Margins are *not* noised
separately: they are recomputed from the noisy interior cells (post-processing, free), which
keeps the table additive.

Budget: :class:`BudgetLedger` maps ``(peer, period)`` to the ε already spent; :func:`charge`
returns a new ledger or raises :class:`BudgetExhausted` (``RESOURCE_EXHAUSTED``) when the
query would take the period's spending above the grant's ``budget_per_period`` or, when the
grant sets ``budget_total``, the peer's spending over every period (kept under the period key
:data:`TOTAL_PERIOD`, which never resets) above that total. Charging ε
linearly is exact for pure DP (basic composition) and conservative for the discrete Gaussian
(Σεᵢ²/2 ≤ (Σεᵢ)²/2).

Invariants:
* Samplers consume only ``randbelow(n)`` (uniform on ``0 … n-1``); production passes
  :func:`secrets.randbelow`, tests a seeded generator. No floats anywhere in sampling.
* :func:`charge` charges the period and the total together or not at all.
* :func:`charge` is pure: the ledger passed in is never modified, and the node persists the
  returned one atomically with the answer (charge first, then sample: a refusal costs nothing
  and reveals nothing).
* Budgets are compared exactly (``Fraction``); a budget is never exceeded, not even by
  rounding.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

from policies.agreement import DifferentialPrivacy
from policies.disclosure.table import DisclosureError
from policies.errors import PolicyError

RandBelow = Callable[[int], int]
Number = Fraction | Decimal | int

MECHANISMS = ("discrete_laplace", "discrete_gaussian")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$", re.ASCII)
#: The ledger's period key (and the store's window key) of the spending over every period. It
#: is not a ``YYYY-Qn`` key, so it never collides with a quarter and never resets.
TOTAL_PERIOD = "total"


# --- exact samplers --------------------------------------------------------------------------


def bernoulli(p: Fraction, randbelow: RandBelow) -> bool:
    """True with probability exactly ``p`` (0 ≤ p ≤ 1)."""
    if not 0 <= p <= 1:
        raise ValueError(f"probability out of range: {p}")
    return randbelow(p.denominator) < p.numerator


def bernoulli_exp(gamma: Fraction, randbelow: RandBelow) -> bool:
    """True with probability exactly ``exp(-gamma)`` (gamma ≥ 0)."""
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, not {gamma}")
    return _bernoulli_exp(gamma.numerator, gamma.denominator, randbelow)


def _bernoulli_exp(num: int, den: int, randbelow: RandBelow) -> bool:
    # exp(-n/d) = exp(-1)^floor(n/d) · exp(-(n mod d)/d): one unit trial per whole part.
    whole, rest = divmod(num, den)
    for _ in range(whole):
        if not _bernoulli_exp_unit(1, 1, randbelow):
            return False
    return _bernoulli_exp_unit(rest, den, randbelow)


def _bernoulli_exp_unit(num: int, den: int, randbelow: RandBelow) -> bool:
    # For gamma = num/den in [0, 1]: the index k of the first failure of Bernoulli(gamma/k)
    # is odd with probability exp(-gamma) (the alternating series of the exponential).
    # Integers only: Bernoulli(num / (den·k)) is randbelow(den·k) < num.
    k = 1
    while randbelow(den * k) < num:
        k += 1
    return k % 2 == 1


def discrete_laplace(scale: Fraction, randbelow: RandBelow) -> int:
    """An integer with P(x) ∝ exp(-|x| / scale) (scale > 0)."""
    if scale <= 0:
        raise ValueError(f"scale must be > 0, not {scale}")
    return _discrete_laplace(scale.numerator, scale.denominator, randbelow)


def _discrete_laplace(t: int, s: int, randbelow: RandBelow) -> int:
    # Scale t/s. X = U + t·V with U uniform on [0, t) accepted with probability exp(-U/t) and
    # V geometric with parameter exp(-1) is geometric with parameter exp(-1/t); dividing by s
    # gives exp(-s/t); a random sign, rejecting "-0", makes it two-sided.
    while True:
        u = randbelow(t)
        if not _bernoulli_exp_unit(u, t, randbelow):
            continue
        v = 0
        while _bernoulli_exp_unit(1, 1, randbelow):
            v += 1
        magnitude = (u + t * v) // s
        negative = randbelow(2) == 1
        if negative and magnitude == 0:
            continue
        return -magnitude if negative else magnitude


def discrete_gaussian(sigma2: Fraction, randbelow: RandBelow) -> int:
    """An integer with P(x) ∝ exp(-x² / (2·sigma2)) (sigma2 > 0)."""
    if sigma2 <= 0:
        raise ValueError(f"sigma2 must be > 0, not {sigma2}")
    p, q = sigma2.numerator, sigma2.denominator
    t = math.isqrt(p // q) + 1
    while True:
        # Propose from discrete Laplace of scale t; accept with exp(-(|y| - σ²/t)² / (2σ²)),
        # which is (|y|·q·t - p)² / (2·p·q·t²) in integers.
        y = _discrete_laplace(t, 1, randbelow)
        if _bernoulli_exp((abs(y) * q * t - p) ** 2, 2 * p * q * t * t, randbelow):
            return y


@dataclass(frozen=True)
class Mechanism:
    """A calibrated noise distribution for one query of a grant."""

    name: str
    epsilon: Fraction
    sensitivity: int = 1

    def __post_init__(self) -> None:
        if self.name not in MECHANISMS:
            raise DisclosureError(f"unknown DP mechanism {self.name!r}; known: {MECHANISMS}")
        if self.epsilon <= 0:
            raise DisclosureError(f"epsilon must be > 0, not {self.epsilon}")
        if isinstance(self.sensitivity, bool) or self.sensitivity < 1:
            raise DisclosureError(f"sensitivity must be an integer >= 1, not {self.sensitivity}")

    @classmethod
    def from_profile(cls, dp: DifferentialPrivacy, *, sensitivity: int = 1) -> Mechanism:
        return cls(dp.mechanism, Fraction(dp.epsilon_per_query), sensitivity)

    @property
    def scale(self) -> Fraction:
        """Discrete Laplace scale Δ/ε."""
        return self.sensitivity / self.epsilon

    @property
    def sigma2(self) -> Fraction:
        """Discrete Gaussian variance parameter Δ²/ε²."""
        return self.scale**2

    def sample(self, randbelow: RandBelow) -> int:
        if self.name == "discrete_laplace":
            return discrete_laplace(self.scale, randbelow)
        return discrete_gaussian(self.sigma2, randbelow)


# --- budget ----------------------------------------------------------------------------------


class BudgetExhausted(PolicyError):  # noqa: N818 - the name the design uses
    """The peer's privacy budget for the period, or in total, cannot pay for this query.

    ``spent`` is what the period (or, when ``period`` is :data:`TOTAL_PERIOD`, every period)
    already used, ``limit`` the grant's ``budget_per_period`` (or ``budget_total``),
    ``requested`` the query's epsilon and ``resets_at`` the start of the next period (``None``
    for the total, which never resets). ``limit_name`` names the agreement field that refused.
    """

    status_name = "RESOURCE_EXHAUSTED"

    def __init__(
        self,
        *,
        peer: str,
        period: str,
        spent: Fraction,
        limit: Fraction,
        requested: Fraction,
        resets_at: datetime | None,
    ) -> None:
        amounts = f"spent {_text(spent)} of {_text(limit)}, this query needs {_text(requested)}"
        if period == TOTAL_PERIOD:
            message = (
                f"total privacy budget of {peer} (budget_total) exhausted: {amounts}; "
                "it does not reset"
            )
            hint = (
                "the total is spent for good under this grant: ask without differential privacy"
                " if the agreement allows it, or agree a larger budget_total"
            )
        else:
            when = f"; it resets at {resets_at.isoformat()}" if resets_at else ""
            message = f"privacy budget of {peer} for {period} exhausted: {amounts}"
            hint = "ask again in the next period, or ask without differential privacy"
            hint += " if the agreement allows it" + when
        super().__init__(message, hint=hint)
        self.limit_name = "budget_total" if period == TOTAL_PERIOD else "budget_per_period"
        self.peer = peer
        self.period = period
        self.spent = spent
        self.limit = limit
        self.requested = requested
        self.resets_at = resets_at


def _text(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):.6g}"


def _fraction(value: Number) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, Fraction | Decimal | int):
        raise DisclosureError(f"epsilon values must be Decimal, Fraction or int, not {value!r}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise DisclosureError(f"epsilon must be finite, not {value}")
    return Fraction(value)


@dataclass(frozen=True)
class BudgetLedger:
    """Epsilon spent per ``(peer, period)``; immutable — :func:`charge` returns a new one."""

    spent: Mapping[tuple[str, str], Fraction] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clean = {key: _fraction(value) for key, value in dict(self.spent).items()}
        if any(v < 0 for v in clean.values()):
            raise DisclosureError("spent epsilon cannot be negative")
        object.__setattr__(self, "spent", MappingProxyType(clean))

    def spent_for(self, peer: str, period: str) -> Fraction:
        return self.spent.get((peer, period), Fraction(0))

    def remaining(self, peer: str, period: str, budget: Number) -> Fraction:
        return max(Fraction(0), _fraction(budget) - self.spent_for(peer, period))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.spent)


def period_resets_at(period: str) -> datetime | None:
    """The start of the period after a quarter key ``YYYY-Qn`` (``None`` for other keys)."""
    match = _QUARTER.match(period)
    if match is None:
        return None
    year, quarter = int(match.group(1)), int(match.group(2))
    if quarter == 4:
        return datetime(year + 1, 1, 1, tzinfo=UTC)
    return datetime(year, 3 * quarter + 1, 1, tzinfo=UTC)


def charge(
    state: BudgetLedger,
    peer: str,
    period: str,
    epsilon: Number,
    budget: Number,
    *,
    resets_at: datetime | None = None,
    total: Number | None = None,
) -> BudgetLedger:
    """The ledger after charging ``epsilon`` to ``(peer, period)``; refuses past ``budget``.

    With ``total`` (the grant's ``budget_total``) the same epsilon is also charged to
    ``(peer, TOTAL_PERIOD)`` and refused past ``total``: both or neither. When both limits
    would be exceeded the refusal names the total, which waiting does not cure.
    """
    if not peer or not period:
        raise DisclosureError("a budget charge needs a peer and a period")
    if period == TOTAL_PERIOD:
        raise DisclosureError(f"{TOTAL_PERIOD!r} is not a period; pass the total as total=")
    cost, limit = _fraction(epsilon), _fraction(budget)
    if cost <= 0:
        raise DisclosureError(f"epsilon must be > 0, not {epsilon}")
    windows = [(period, limit, resets_at or period_resets_at(period))]
    if total is not None:
        windows.insert(0, (TOTAL_PERIOD, _fraction(total), None))
    updated = dict(state.spent)
    for key, cap, resets in windows:
        spent = state.spent_for(peer, key)
        if spent + cost > cap:
            raise BudgetExhausted(
                peer=peer, period=key, spent=spent, limit=cap, requested=cost, resets_at=resets
            )
        updated[(peer, key)] = spent + cost
    return BudgetLedger(updated)
