"""Answer a statistics query under a disclosure profile: count, then protect, then flag.

This is the only path by which counts leave the database: :func:`answer` runs the query,
applies :func:`policies.disclosure.protect` with the profile the agreement names (or the
default profile for the node's own exports), and returns flagged cells and coverage.

Invariants:
* A differentially private answer is drawn from counts in which each person contributes at
  most :data:`DP_CONTRIBUTION_CAP` (:func:`dp_counts`), and that cap is the sensitivity the
  noise is scaled to.
* Every table is protected *with all its margins*, whether or not the query asks for them,
  and the same cells are suppressed either way (margins not asked for are left out of the
  answer). Asking for the same table twice, with and without ``margins``, therefore reveals
  nothing that one answer with margins does not. Tables cut by filters are other tables,
  protected on their own (docs/disclosure-control.md, "Linked tables").
* ``records_considered`` (an exact count) stays with the holder: :class:`StatsAnswer` keeps
  it for the operator and the audit; the wire answer and the exports never carry it.
* Differential-privacy budget is charged atomically in the store *before* any noise is drawn
  (``quota_usage`` scope ``dp:{peer}``, window the calendar quarter of the time of asking, in
  nano-epsilon); a spent budget refuses the query. The budget is the *peer's*: every
  agreement under which a peer asks draws on the one counter (each answer is checked against
  the budget of the agreement it is asked under), so holding several agreements does not
  multiply what a peer may learn. The same call adds the epsilon to the peer's total counter
  (window :data:`~policies.disclosure.TOTAL_PERIOD`, never reset) on every DP answer, and a
  grant with ``budget_total`` refuses once that would be exceeded: the quarter and the total
  are charged together or not at all. The total is kept whether or not a grant caps it, so a
  cap agreed later counts what the peer spent before.
* The cell-key secret never leaves the node; it lives in ``HOME/keys/cellkey.key`` (0600).
  There is one perturbation secret per node, the same for every agreement and every peer:
  a cell gets the same noisy value whoever asks, so colluding peers (or a peer holding
  several agreements) cannot intersect independent noises. An agreement's ``secret_ref``
  only names that secret; it does not select another one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from sqlalchemy.engine import Engine

from crypto.errors import CryptoError
from crypto.keys import read_hex_key, write_private
from node.runtime import NodeRuntime
from node.stats.compute import RawTable, cell_members, count_cells
from node.stats.query import StatsQuery
from policies.agreement import Disclosure
from policies.disclosure import (
    CONF_PRIMARY,
    CONF_SECONDARY,
    TOTAL,
    TOTAL_PERIOD,
    BudgetLedger,
    Dimension,
    Table,
    charge,
    protect,
)
from policies.disclosure.dp import RandBelow
from policies.quota import quota_windows

DEFAULT_PROFILE = Disclosure(profile="standard", min_cell=5, secondary=True)
NANO = 10**9
#: Under differential privacy, the most one person may add to a table (the mechanism's L1
#: sensitivity): a ``persons`` table counts each person in one cell (the cell of the person's
#: earliest event in the period), an ``events`` table counts at most four of a person's rows
#: (the earliest). Without the cap one person's events, months or codes would move several
#: cells and the noise would not cover them.
DP_CONTRIBUTION_CAP = {"persons": 1, "events": 4}


def dp_counts(engine: Engine, query: StatsQuery) -> tuple[RawTable, int]:
    """The cells a differentially private answer is drawn from, and their sensitivity.

    The guarantee's precondition: adding or removing one person (all their records) changes
    these interior counts by at most the returned sensitivity in L1 norm, whatever the
    measure, time breakdown or code dimension, because each person's contribution is capped.
    """
    cap = DP_CONTRIBUTION_CAP[query.measure]
    return count_cells(engine, query, per_person_cap=cap), cap


@dataclass(frozen=True)
class AnsweredCell:
    key: tuple[str, ...]
    value: int | None
    obs_status: str
    conf_status: str
    perturbed: bool


@dataclass(frozen=True)
class StatsAnswer:
    dimensions: tuple[str, ...]
    cells: list[AnsweredCell]
    as_of: dt.datetime | None
    profile: str
    method: str
    suppressed_primary: int
    suppressed_secondary: int
    perturbed: int
    epsilon_spent: str
    period: str
    measure: str
    #: Rows the period and filters selected (after the per-person cap, under differential
    #: privacy): for the holder's operator and audit only. It is
    #: an exact grand total outside disclosure control, so it is never sent to a peer nor
    #: exported (``None`` on answers that came from elsewhere).
    records_considered: int | None = None


def cell_key_secret(runtime: NodeRuntime) -> bytes:
    """The node's one perturbation secret (created on first use), for every agreement."""
    path = runtime.home.root / "keys" / "cellkey.key"
    try:
        master = read_hex_key(path)
    except CryptoError:
        if path.exists():
            raise
        write_private(path, os.urandom(32).hex().encode() + b"\n")
        master = read_hex_key(path)
    # The derivation context is the one an agreement without ``secret_ref`` always used, so
    # the values released under such agreements do not change.
    return hmac.new(master, b"enlace/1 cell-key|", hashlib.sha256).digest()


def _table(raw: RawTable) -> Table:
    """The raw counts as a table *with every margin*, whatever the query asked to see.

    Why: secondary suppression only protects against the margins it knows of. A pattern chosen
    for the interior alone would publish cells that the margins of another answer (the same
    table with ``margins``, or its one-dimensional marginal) turn into the suppressed ones.
    """
    codes: list[set[str]] = [set() for _ in raw.dimensions]
    for key in raw.cells:
        for i, code in enumerate(key):
            codes[i].add(code)
    dimensions = [
        Dimension(name, tuple(sorted(found)) or ("_Z",))
        for name, found in zip(raw.dimensions, codes, strict=True)
    ]
    return Table.from_counts(dimensions, raw.cells, margins=True)


def budget_scope(peer: str) -> str:
    """The ``quota_usage`` scope of ``peer``'s privacy budget: one per peer, not per agreement.

    Agreement quota scopes contain ``>`` (:func:`policies.quota.quota_scope`), a country code
    never does, so the two cannot collide.
    """
    if not peer:
        raise ValueError("a differential-privacy budget needs the peer it is charged to")
    return f"dp:{peer}"


def _charge_budget(
    runtime: NodeRuntime, profile: Disclosure, peer: str, now: dt.datetime
) -> tuple[BudgetLedger, str]:
    """Reserve one query's epsilon for ``peer`` in the current quarter and in total; return
    the prior ledger.

    The counters are the peer's whatever agreement the query comes under; the limits are the
    ``budget_per_period`` and ``budget_total`` of that agreement's grant. Both counters are
    incremented in one store call, which rolls both back when either limit refuses.
    """
    dp = profile.dp
    assert dp is not None
    period = quota_windows(now)["quarter"].key
    windows = (period, TOTAL_PERIOD)
    epsilon = Fraction(dp.epsilon_per_query)
    cost = int(epsilon * NANO)
    used_before: dict[str, int] = {}

    def ledger_of(used: Mapping[str, int]) -> BudgetLedger:
        return BudgetLedger({(peer, key): Fraction(used.get(key, 0), NANO) for key in windows})

    def check(used: Mapping[str, int]) -> None:
        used_before.update(used)
        charge(
            ledger_of(used),
            peer,
            period,
            dp.epsilon_per_query,
            dp.budget_per_period,
            total=dp.budget_total,
        )

    runtime.store.policies.consume_quota(budget_scope(peer), windows, cost, check)
    return ledger_of(used_before), period


def answer(
    runtime: NodeRuntime,
    query: StatsQuery,
    profile: Disclosure | None,
    *,
    peer: str = "",
    now: dt.datetime,
    rng: RandBelow = secrets.randbelow,
) -> StatsAnswer:
    """Count, protect and flag ``query`` under ``profile`` (``rng``: DP noise, injected)."""
    disclosure = profile or DEFAULT_PROFILE
    engine = runtime.store.engine
    sensitivity = 1
    if disclosure.dp is not None:
        raw, sensitivity = dp_counts(engine, query)
    else:
        raw = count_cells(engine, query)
    table = _table(raw)
    ledger, period, members, secret = None, None, None, None
    if disclosure.dp is not None:
        ledger, period = _charge_budget(runtime, disclosure, peer, now)
    elif disclosure.perturbation is not None:
        members = cell_members(engine, query)
        secret = cell_key_secret(runtime)
    protected = protect(
        table,
        disclosure,
        record_keys_per_cell=members,
        secret=secret,
        budget_state=ledger,
        peer=peer or None,
        period=period,
        sensitivity=sensitivity,
        rng=rng,
    )
    # The pattern is the full table's; without ``margins`` the margins are only left out.
    cells = [
        AnsweredCell(coord, c.value, c.obs_status, c.conf_status, c.perturbed)
        for coord, c in protected.cells.items()
        if query.margins or TOTAL not in coord
    ]
    coverage = protected.coverage
    return StatsAnswer(
        dimensions=query.dimensions,
        cells=cells,
        as_of=runtime.store.records.data_as_of(),
        profile=coverage.profile,
        method=coverage.method,
        suppressed_primary=sum(1 for c in cells if c.conf_status == CONF_PRIMARY),
        suppressed_secondary=sum(1 for c in cells if c.conf_status == CONF_SECONDARY),
        perturbed=sum(1 for c in cells if c.perturbed),
        epsilon_spent=str(coverage.epsilon_spent) if disclosure.dp is not None else "",
        period=query.period.text,
        measure=query.measure,
        records_considered=raw.records_considered,
    )
