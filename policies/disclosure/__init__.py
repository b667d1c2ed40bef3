"""Statistical disclosure control: what a node does to a table before it leaves the country.

Why: a statistics grant lets a peer see aggregates, never the people behind them. The
agreement's disclosure profile (:class:`policies.agreement.Disclosure`) names the methods;
this package applies them, purely (no I/O, no clock), through one entry point,
:func:`protect`, which runs them in a fixed order and flags every cell the SDMX way.

Modules:

* :mod:`~policies.disclosure.table` — the table model (dimensions, cells keyed by code
  tuples, margins with the reserved total code ``_T``, additivity lines);
* :mod:`~policies.disclosure.threshold` — primary suppression (counts ``1 … min_cell-1``);
* :mod:`~policies.disclosure.secondary` — secondary suppression and the LP/IP attacker;
* :mod:`~policies.disclosure.cellkey` — cell-key perturbation (same records, same noise);
* :mod:`~policies.disclosure.dp` — exact discrete Laplace / Gaussian and the privacy budget;
* :mod:`~policies.disclosure.apply` — :func:`protect`: the order, the flags, the coverage.

Invariants (the promises an answer keeps):

* A suppressed cell is released as ``value=None`` with ``OBS_STATUS=Q`` and ``CONF_STATUS``
  ``A`` (primary) or ``D`` (secondary) — never as 0.
* A published value of an unperturbed answer is never a sensitive count (checked on every
  answer by :func:`verify_threshold`).
* With secondary suppression on, no suppressed cell can be narrowed by solving the published
  constraints below its protection width; this is verified on every answer, and a failure
  raises instead of releasing.
* Cell-key noise depends only on the contributing records and the node secret: repeating a
  query returns the same values; no random source is involved.
* Differential privacy charges the per-peer, per-period budget (and the peer's total, when the
  grant caps it with ``budget_total``) before any noise is drawn and refuses
  (``RESOURCE_EXHAUSTED``) once either is spent.

Errors (all :class:`policies.errors.PolicyError`)::

    PolicyError
    ├── DisclosureError        INTERNAL            inconsistent inputs from the node (a bug)
    │   ├── TableTooLarge      INVALID_ARGUMENT    too many dimensions or cells to protect
    │   └── ProtectionError    INTERNAL            a suppressed cell would be narrowable
    └── BudgetExhausted        RESOURCE_EXHAUSTED  the peer's privacy budget for the period
                                                   (or its total, which never resets)
"""

from __future__ import annotations

from policies.disclosure.apply import (
    CONF_FREE,
    CONF_PRIMARY,
    CONF_SECONDARY,
    OBS_ESTIMATED,
    OBS_NORMAL,
    OBS_SUPPRESSED,
    Coverage,
    ProtectedTable,
    ReleasedCell,
    protect,
)
from policies.disclosure.cellkey import cell_key, noise, noise_distribution, perturb, record_key
from policies.disclosure.dp import (
    TOTAL_PERIOD,
    BudgetExhausted,
    BudgetLedger,
    Mechanism,
    charge,
    discrete_gaussian,
    discrete_laplace,
    period_resets_at,
)
from policies.disclosure.secondary import (
    Interval,
    ProtectionError,
    attack,
    secondary_suppression,
    verify_protection,
)
from policies.disclosure.table import (
    TOTAL,
    Coord,
    Dimension,
    DisclosureError,
    Table,
    TableTooLarge,
)
from policies.disclosure.threshold import ThresholdRule, primary_suppression, verify_threshold

__all__ = [
    "CONF_FREE",
    "CONF_PRIMARY",
    "CONF_SECONDARY",
    "OBS_ESTIMATED",
    "OBS_NORMAL",
    "OBS_SUPPRESSED",
    "TOTAL",
    "TOTAL_PERIOD",
    "BudgetExhausted",
    "BudgetLedger",
    "Coord",
    "Coverage",
    "Dimension",
    "DisclosureError",
    "Interval",
    "Mechanism",
    "ProtectedTable",
    "ProtectionError",
    "ReleasedCell",
    "Table",
    "TableTooLarge",
    "ThresholdRule",
    "attack",
    "cell_key",
    "charge",
    "discrete_gaussian",
    "discrete_laplace",
    "noise",
    "noise_distribution",
    "period_resets_at",
    "perturb",
    "primary_suppression",
    "protect",
    "record_key",
    "secondary_suppression",
    "verify_protection",
    "verify_threshold",
]
