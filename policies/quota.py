"""Quota windows and limits of a grant (the node counts; this module decides).

Why: an agreement limits how much a peer may ask per UTC day and per calendar quarter (OPRF
elements evaluated, statistics queries, follow-up requests …). Counting must be atomic and
persistent, so it belongs to the node's database; what a window is, what the limit is and
whether one more request fits are pure questions answered here, with ``now`` injected.

Invariants:
* Windows are half-open UTC intervals ``[start, end)``: the day from 00:00:00Z, the quarter
  from 1 January, 1 April, 1 July or 1 October 00:00:00Z. ``end`` of one window is ``start``
  of the next, and it is the ``resets_at`` reported when a quota is exhausted.
* Window keys (``2026-03-14``, ``2026-Q1``) are unique across windows and kinds, so counters
  are stored per key: a counter for a past window is simply never consulted again, which is
  what restores the quota when the window turns.
* ``None`` as a limit means no limit for that window (the agreement wrote ``null``); ``0``
  allows nothing. A request of more units than the limit is refused in every window.
* Units are what each service counts (see :data:`QUOTA_UNITS`); a request counts ``units >= 1``.
* The counter scope (:func:`quota_scope`) is the agreement id, the direction and the service,
  not the agreement version: amending an agreement does not reset what was used this quarter,
  and several grants for the same direction and service share one counter (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from policies.agreement import Grant
from policies.canonical import format_timestamp, require_utc
from policies.errors import QuotaExceeded

WINDOW_NAMES = ("day", "quarter")

#: The unit each service's quotas count.
QUOTA_UNITS: Mapping[str, str] = {
    "stats": "queries",
    "match": "elements",
    "biometric": "probes",
    "followup": "follow-up requests",
    "directory": "queries",
}


class QuotaWindow(NamedTuple):
    """One counting window: its storage key and its UTC bounds ``[start, end)``."""

    key: str
    start: datetime
    end: datetime


def quota_windows(now: datetime) -> dict[str, QuotaWindow]:
    """The ``day`` and ``quarter`` windows that contain ``now`` (UTC)."""
    now = require_utc(now)
    day_start = datetime(now.year, now.month, now.day, tzinfo=UTC)
    quarter = (now.month - 1) // 3 + 1
    quarter_start = datetime(now.year, 3 * quarter - 2, 1, tzinfo=UTC)
    quarter_end = (
        datetime(now.year + 1, 1, 1, tzinfo=UTC)
        if quarter == 4
        else datetime(now.year, 3 * quarter + 1, 1, tzinfo=UTC)
    )
    return {
        "day": QuotaWindow(day_start.date().isoformat(), day_start, day_start + timedelta(1)),
        "quarter": QuotaWindow(f"{now.year}-Q{quarter}", quarter_start, quarter_end),
    }


def quota_limits(grant: Grant) -> dict[str, int | None]:
    """The grant's limit per window name (``None``: unlimited)."""
    return {"day": grant.quotas.per_day, "quarter": grant.quotas.per_quarter}


def quota_scope(agreement_id: str, grant: Grant) -> str:
    """The key under which the node keeps this grant's counters (one per window key)."""
    return f"{agreement_id}:{grant.holder}>{grant.requester}:{grant.service}"


def _used(used_by_window: Mapping[str, int], window: QuotaWindow) -> int:
    used = used_by_window.get(window.key, 0)
    if isinstance(used, bool) or not isinstance(used, int) or used < 0:
        raise ValueError(f"counter for window {window.key} must be a non-negative int")
    return used


def remaining(
    grant: Grant, used_by_window: Mapping[str, int], now: datetime
) -> dict[str, int | None]:
    """Units still available per window name (``None``: unlimited), never negative."""
    windows = quota_windows(now)
    out: dict[str, int | None] = {}
    for name, limit in quota_limits(grant).items():
        out[name] = None if limit is None else max(0, limit - _used(used_by_window, windows[name]))
    return out


def check_quota(grant: Grant, used_by_window: Mapping[str, int], units: int, now: datetime) -> None:
    """Raise :class:`QuotaExceeded` unless ``units`` more fit in every current window.

    ``used_by_window`` maps window keys (as in :func:`quota_windows`) to the units already
    counted under this grant's :func:`quota_scope`; keys of other windows are ignored. When
    several windows are exhausted the error names the one that resets last, since that is
    when the request can first succeed.
    """
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise ValueError("units must be a positive int")
    windows = quota_windows(now)
    unit = QUOTA_UNITS.get(grant.service, "units")
    exceeded: list[QuotaExceeded] = []
    for name, limit in quota_limits(grant).items():
        if limit is None:
            continue
        window = windows[name]
        used = _used(used_by_window, window)
        if used + units <= limit:
            continue
        label = "daily" if name == "day" else "quarterly"
        if units > limit:
            hint = f"ask for at most {limit:,} {unit} per request"
        else:
            hint = f"retry after {format_timestamp(window.end)} or ask for fewer {unit}"
        exceeded.append(
            QuotaExceeded(
                f"the {label} quota of {limit:,} {unit} for {grant.service} "
                f"{grant.holder} → {grant.requester} is spent: {used:,} used in {window.key}, "
                f"{units:,} more requested",
                quota=name,
                limit=limit,
                used=used,
                units=units,
                resets_at=window.end,
                hint=hint,
            )
        )
    if exceeded:
        raise max(exceeded, key=lambda e: e.resets_at)
