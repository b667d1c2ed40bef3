"""Apply an agreement's disclosure profile to a table: the one entry point the node calls.

Why: the methods only protect in the right order and together. Noise must come first (so
suppression decides on what is released), the threshold rule next, secondary suppression on
the values actually released, and the flags last, from one place, so that every answer the
node sends carries the same SDMX semantics. Nothing here does I/O or reads the clock: the
node passes the table, the record identifiers, the perturbation secret, the budget ledger,
the period key and the random source, and persists the returned ledger with the answer.

Order:

1. Differential privacy, when the profile has ``dp``: charge ε to ``(peer, period)`` (and to
   ``(peer, TOTAL_PERIOD)`` when the profile sets ``budget_total``) first
   (:class:`~policies.disclosure.dp.BudgetExhausted` refuses before any noise is drawn),
   then noise every interior cell, clamp at 0 and recompute the margins from the noisy cells.
   The noisy table is what the rest of the pipeline sees (post-processing keeps DP). Cell-key
   perturbation is not applied on top: a DP answer is already randomised per query.
2. Otherwise cell-key perturbation, when the profile has ``perturbation``: released values
   come from :mod:`~policies.disclosure.cellkey`; suppression decisions use the true counts.
3. Primary suppression (threshold rule) on the true counts, or on the noisy ones under DP.
4. Secondary suppression, when the profile asks for it (``secondary: true``, the default), on
   the released values; then :func:`~policies.disclosure.secondary.verify_protection` — an
   attacker that solves every published constraint — must find every hidden cell wide enough,
   or :class:`~policies.disclosure.secondary.ProtectionError` stops the answer.
5. Flags (SDMX code lists CL_OBS_STATUS and CL_CONF_STATUS):

   ==================  =====  ==========  ===========  =========
   cell                value  OBS_STATUS  CONF_STATUS  perturbed
   ==================  =====  ==========  ===========  =========
   published, exact    int    A normal    F free       False
   published, noisy    int    E estimated F free       True
   primary suppressed  None   Q missing   A primary    False
   secondary supp.     None   Q missing   D secondary  False
   ==================  =====  ==========  ===========  =========

   Every published cell of a perturbed (cell-key or DP) answer is flagged ``E``, whether or
   not its own noise happened to be zero: a per-cell "unchanged" flag would give the noise away.

Invariants:
* A suppressed cell has ``value=None`` — never 0 — and a published cell always an int ≥ 0.
* The result holds no true count of a perturbed or suppressed cell.
* Identical inputs (and, under DP, an identical random source) give identical answers.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from policies.agreement import Disclosure
from policies.disclosure.cellkey import cell_keys_for, perturb
from policies.disclosure.dp import BudgetLedger, Mechanism, RandBelow, charge
from policies.disclosure.secondary import secondary_suppression, verify_protection
from policies.disclosure.table import Coord, Dimension, DisclosureError, Table
from policies.disclosure.threshold import ThresholdRule, primary_suppression, verify_threshold

OBS_NORMAL = "A"
OBS_ESTIMATED = "E"
OBS_SUPPRESSED = "Q"
CONF_FREE = "F"
CONF_PRIMARY = "A"
CONF_SECONDARY = "D"


@dataclass(frozen=True)
class ReleasedCell:
    """One cell as it leaves the node, with its SDMX flags."""

    value: int | None
    obs_status: str
    conf_status: str
    perturbed: bool

    def __post_init__(self) -> None:
        suppressed = self.conf_status in (CONF_PRIMARY, CONF_SECONDARY)
        if suppressed != (self.value is None) or suppressed != (self.obs_status == "Q"):
            raise DisclosureError(f"inconsistent cell flags: {self}")


@dataclass(frozen=True)
class Coverage:
    """What the answer says about its own protection (sent with the cells)."""

    profile: str
    method: str
    cells_total: int
    suppressed_primary: int
    suppressed_secondary: int
    perturbed: int
    epsilon_spent: Decimal


@dataclass(frozen=True)
class ProtectedTable:
    """The releasable answer: flagged cells, coverage and the budget ledger to persist."""

    dimensions: tuple[Dimension, ...]
    cells: Mapping[Coord, ReleasedCell]
    coverage: Coverage
    budget_state: BudgetLedger | None

    def values(self) -> dict[Coord, int | None]:
        return {c: cell.value for c, cell in self.cells.items()}

    def conf_status(self) -> dict[Coord, str]:
        return {c: cell.conf_status for c, cell in self.cells.items()}


def _noisy_table(table: Table, mechanism: Mechanism, rng: RandBelow) -> Table:
    noisy = {c: max(0, table[c] + mechanism.sample(rng)) for c in table.interior_coords()}
    return table.with_interior(noisy)


def protect(
    table: Table,
    disclosure_profile: Disclosure,
    *,
    record_keys_per_cell: Mapping[Coord, Collection[str]] | None = None,
    secret: bytes | None = None,
    budget_state: BudgetLedger | None = None,
    rng: RandBelow = secrets.randbelow,
    peer: str | None = None,
    period: str | None = None,
    sensitivity: int = 1,
    zero_sensitive: bool = False,
    protection: int | None = None,
) -> ProtectedTable:
    """Protect ``table`` as ``disclosure_profile`` says and flag every cell.

    ``record_keys_per_cell`` maps each interior cell to the identifiers of its records and
    ``secret`` is the node's perturbation secret (both needed for cell-key perturbation).
    ``budget_state``, ``peer`` and ``period`` (a quarter key such as ``2026-Q1``) are needed
    for differential privacy; ``sensitivity`` is the most records one person adds to the
    table. ``protection`` overrides the width a primary cell's interval must keep.
    """
    profile = disclosure_profile
    rule = ThresholdRule.from_profile(profile, zero_sensitive=zero_sensitive)
    basis, released, max_noise = table, dict(table.cells), 0
    ledger, epsilon, method, noisy = budget_state, Decimal(0), "threshold", False
    if profile.dp is not None:
        if budget_state is None or not peer or not period:
            raise DisclosureError(
                "differential privacy needs the budget ledger, the peer and the period",
                hint="load the peer's ledger for the current quarter before answering",
            )
        mechanism = Mechanism.from_profile(profile.dp, sensitivity=sensitivity)
        dp = profile.dp
        ledger = charge(
            budget_state,
            peer,
            period,
            dp.epsilon_per_query,
            dp.budget_per_period,
            total=dp.budget_total,
        )
        epsilon = profile.dp.epsilon_per_query
        basis = _noisy_table(table, mechanism, rng)
        released = dict(basis.cells)
        method, noisy = f"dp:{mechanism.name}", True
    elif profile.perturbation is not None:
        if record_keys_per_cell is None or secret is None:
            raise DisclosureError(
                "cell-key perturbation needs the record identifiers of every cell and the secret",
                hint="resolve the profile's secret_ref and collect record ids with the counts",
            )
        keys = cell_keys_for(table, record_keys_per_cell, secret)
        max_noise = profile.perturbation.max_noise
        released = perturb(table, keys, max_noise)
        method, noisy = "cell_key", True
    primary = primary_suppression(basis.cells, rule)
    secondary: frozenset[Coord] = frozenset()
    if profile.secondary and primary:
        secondary = secondary_suppression(
            basis, primary, rule, released=released, max_noise=max_noise, protection=protection
        )
        verify_protection(
            basis,
            primary,
            secondary,
            rule,
            released=released,
            max_noise=max_noise,
            protection=protection,
        )
    cells = {c: _flag(c, released[c], primary, secondary, noisy) for c in table.coords()}
    verify_threshold(
        {c: cell.value for c, cell in cells.items()},
        {c: cell.conf_status for c, cell in cells.items()},
        rule,
        exact=max_noise == 0,
    )
    coverage = Coverage(
        profile=profile.profile,
        method=method,
        cells_total=len(cells),
        suppressed_primary=len(primary),
        suppressed_secondary=len(secondary),
        perturbed=sum(1 for cell in cells.values() if cell.perturbed),
        epsilon_spent=epsilon,
    )
    return ProtectedTable(table.dimensions, MappingProxyType(cells), coverage, ledger)


def _flag(
    coord: Coord,
    value: int,
    primary: frozenset[Coord],
    secondary: frozenset[Coord],
    noisy: bool,
) -> ReleasedCell:
    if coord in primary:
        return ReleasedCell(None, OBS_SUPPRESSED, CONF_PRIMARY, False)
    if coord in secondary:
        return ReleasedCell(None, OBS_SUPPRESSED, CONF_SECONDARY, False)
    if noisy:
        return ReleasedCell(value, OBS_ESTIMATED, CONF_FREE, True)
    return ReleasedCell(value, OBS_NORMAL, CONF_FREE, False)
