"""What a querier accepts of a holder's signed Aggregate answer before storing or using it.

Why: the Secretariat stores every member's answer (``st_results``) and sums the members'
cells into regional tables, briefs and exports; a member's table whose dimensions are not the
ones asked, whose keys do not fit them, or which releases a negative count made the regional
aggregation refuse the whole table for every member, and its text reached files and terminals
as sent. A malformed answer is that member's failure, recorded as missing for it alone.

Invariants: :func:`check_aggregate` is pure; it raises :class:`~node.errors.PeerError`
(``INVALID_ARGUMENT``) naming the holder and the first problems, or returns. An accepted
answer has exactly the asked dimensions, one key value per dimension on every cell (each at
most :data:`MAX_KEY` characters, no control character), no cell twice, released values that
are counts (0 or more), SDMX statuses of the known codes, non-negative coverage counts and
coverage text of one bounded line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from enlace.v1 import stats_pb2
from node.peer_checks import refuse, shown, text_problem
from policies.disclosure.apply import (
    CONF_FREE,
    CONF_PRIMARY,
    CONF_SECONDARY,
    OBS_ESTIMATED,
    OBS_NORMAL,
    OBS_SUPPRESSED,
)

OBS_STATUSES = frozenset({OBS_NORMAL, OBS_ESTIMATED, OBS_SUPPRESSED})
CONF_STATUSES = frozenset({CONF_FREE, CONF_PRIMARY, CONF_SECONDARY})
#: The longest key value (a code, or "_T") and coverage text accepted.
MAX_KEY = 64
MAX_COVERAGE_TEXT = 200


def aggregate_problems(
    response: stats_pb2.AggregateResponse, dimensions: Sequence[str]
) -> list[str]:
    """Every problem of ``response`` as an answer for ``dimensions`` (empty: acceptable)."""
    problems: list[str] = []
    asked = tuple(dimensions)
    if tuple(response.dimensions) != asked:
        answered = [shown(d) for d in response.dimensions[:8]]
        problems.append(f"it answered dimensions [{', '.join(answered)}], not {list(asked)}")
        return problems  # its cells are about another table: nothing more to say of them
    seen: set[tuple[str, ...]] = set()
    for n, cell in enumerate(response.cells):
        key = tuple(cell.key)
        if len(key) != len(asked):
            problems.append(f"cell {n} has {len(key)} key values for {len(asked)} dimensions")
        problems += [text_problem(f"cell {n}'s key", k, MAX_KEY) for k in key]
        if key in seen:
            problems.append(f"cell {n} repeats the key {shown(' '.join(key))}")
        seen.add(key)
        if cell.has_value and cell.value < 0:
            problems.append(f"cell {n} releases a negative count ({cell.value})")
        if cell.obs_status not in OBS_STATUSES or cell.conf_status not in CONF_STATUSES:
            problems.append(
                f"cell {n} has statuses {shown(cell.obs_status)}/{shown(cell.conf_status)}"
            )
        if len([p for p in problems if p]) > 5:
            break
    coverage = response.coverage
    for name in ("cells", "suppressed_primary", "suppressed_secondary", "perturbed"):
        if getattr(coverage, name) < 0:
            problems.append(f"coverage {name} is negative")
    for name in (
        "as_of",
        "agreement_id",
        "agreement_hash",
        "disclosure_profile",
        "epsilon_spent",
        "period",
        "measure",
        "note",
        "matrix_version",
    ):
        problems.append(
            text_problem(f"coverage {name}", getattr(coverage, name), MAX_COVERAGE_TEXT)
        )
    problems.append(text_problem("holder", response.holder, MAX_KEY))
    if coverage.as_of and not text_problem("coverage as_of", coverage.as_of, MAX_COVERAGE_TEXT):
        try:
            dt.datetime.fromisoformat(coverage.as_of)
        except ValueError:
            problems.append(f"coverage as_of {shown(coverage.as_of)} is not an ISO 8601 time")
    return [p for p in problems if p]


def check_aggregate(
    peer: str, response: stats_pb2.AggregateResponse, dimensions: Sequence[str]
) -> None:
    """Refuse ``response`` from ``peer`` unless it is a well-formed table of ``dimensions``."""
    refuse(peer, "table", aggregate_problems(response, dimensions))
