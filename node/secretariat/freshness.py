"""Freshness of each member's data for a reporting period, and who is due a reminder.

Why: members agreed (2016) to update the quarterly tables every three months and to send
them within a month; the Secretariat offered a delivery calendar and automatic reminders.
Freshness compares what a member's node says about its data (``as_of``: when its latest
import finished) with the end of the period the Secretariat is collecting.

Invariants (pure; ``now`` is always passed in):
* ``current``: the member's data as-of is at or after the period end, so its tables can
  cover the whole period.
* ``pending``: not yet current, but the delivery deadline (period end + ``grace``) has not
  passed. ``late``: not current and the deadline has passed.
* A member whose node never answered has no as-of; it is ``pending`` or ``late`` by the same
  deadline (an unreachable node is late, not excused).
* A late member is reminded at most once per ``remind_every`` and period, per channel.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from node.errors import InvalidArgumentError
from node.stats.query import parse_period

CURRENT, PENDING, LATE = "current", "pending", "late"


@dataclass(frozen=True)
class FreshnessRule:
    grace: dt.timedelta = dt.timedelta(days=30)
    remind_every: dt.timedelta = dt.timedelta(days=7)


@dataclass(frozen=True)
class MemberFreshness:
    country: str
    period: str
    period_end: dt.datetime
    deadline: dt.datetime
    as_of: dt.datetime | None
    state: str
    days_late: int
    last_answer_at: dt.datetime | None = None

    @property
    def late(self) -> bool:
        return self.state == LATE

    def message(self, language: str = "es") -> str:
        as_of = self.as_of.date().isoformat() if self.as_of else "—"
        if language == "en":
            texts = {
                CURRENT: f"data current for {self.period} (as of {as_of})",
                PENDING: f"data for {self.period} due by {self.deadline.date().isoformat()}",
                LATE: f"data for {self.period} {self.days_late} days late (as of {as_of})",
            }
        else:
            texts = {
                CURRENT: f"datos al día para {self.period} (al {as_of})",
                PENDING: f"datos de {self.period} esperados a más tardar el "
                f"{self.deadline.date().isoformat()}",
                LATE: f"datos de {self.period} con {self.days_late} días de retraso (al {as_of})",
            }
        return texts[self.state]


def period_end(period: str) -> dt.datetime:
    """The first instant after ``period`` (UTC midnight)."""
    end = parse_period(period).end
    return dt.datetime(end.year, end.month, end.day, tzinfo=dt.UTC)


def quarter_of(day: dt.date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def last_closed_quarter(now: dt.datetime) -> str:
    """The latest quarter that ended before ``now``."""
    year, quarter = now.year, (now.month - 1) // 3 + 1
    year, quarter = (year - 1, 4) if quarter == 1 else (year, quarter - 1)
    return f"{year}Q{quarter}"


def last_closed_month(now: dt.datetime) -> str:
    year, month = (now.year - 1, 12) if now.month == 1 else (now.year, now.month - 1)
    return f"{year}-{month:02d}"


def _aware(moment: dt.datetime | None, name: str) -> None:
    if moment is not None and moment.tzinfo is None:
        raise InvalidArgumentError("naive datetime", field=name, hint="pass aware UTC times")


def assess(
    country: str,
    period: str,
    as_of: dt.datetime | None,
    now: dt.datetime,
    rule: FreshnessRule | None = None,
    *,
    last_answer_at: dt.datetime | None = None,
) -> MemberFreshness:
    """Where one member stands for ``period`` at ``now``."""
    rule = rule or FreshnessRule()
    _aware(now, "now")
    _aware(as_of, "as_of")
    end = period_end(period)
    deadline = end + rule.grace
    if as_of is not None and as_of >= end:
        state, days = CURRENT, 0
    elif now < deadline:
        state, days = PENDING, 0
    else:
        state, days = LATE, (now - deadline).days
    return MemberFreshness(country, period, end, deadline, as_of, state, days, last_answer_at)


def assess_all(
    members: Iterable[str],
    period: str,
    as_of: Mapping[str, dt.datetime | None],
    now: dt.datetime,
    rule: FreshnessRule | None = None,
    *,
    answered: Mapping[str, dt.datetime | None] | None = None,
) -> list[MemberFreshness]:
    answered = answered or {}
    return [
        assess(m, period, as_of.get(m), now, rule, last_answer_at=answered.get(m))
        for m in sorted(members)
    ]


def due_reminders(
    states: Iterable[MemberFreshness],
    last_reminded: Mapping[str, dt.datetime],
    now: dt.datetime,
    rule: FreshnessRule | None = None,
) -> list[MemberFreshness]:
    """The late members not reminded about this period within ``remind_every``."""
    rule = rule or FreshnessRule()
    due = []
    for state in states:
        if not state.late:
            continue
        last = last_reminded.get(state.country)
        if last is None or now - last >= rule.remind_every:
            due.append(state)
    return due
