"""Freshness of members' data against the period end, and who is due a reminder (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from node.errors import InvalidArgumentError
from node.secretariat.freshness import (
    CURRENT,
    LATE,
    PENDING,
    FreshnessRule,
    assess,
    assess_all,
    due_reminders,
    last_closed_month,
    last_closed_quarter,
    period_end,
)

UTC = dt.UTC
RULE = FreshnessRule(grace=dt.timedelta(days=30), remind_every=dt.timedelta(days=7))


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_period_ends_and_last_closed_periods() -> None:
    assert period_end("2024Q2") == at(2024, 7, 1)
    assert period_end("2024-12") == at(2025, 1, 1)
    assert last_closed_quarter(at(2025, 1, 15)) == "2024Q4"
    assert last_closed_quarter(at(2025, 8, 1)) == "2025Q2"
    assert last_closed_month(at(2025, 1, 3)) == "2024-12"


def test_current_pending_late() -> None:
    assert assess("PAN", "2024Q2", at(2024, 7, 2), at(2024, 7, 3), RULE).state == CURRENT
    pending = assess("CRI", "2024Q2", at(2024, 6, 20), at(2024, 7, 20), RULE)
    assert pending.state == PENDING and not pending.late
    late = assess("HND", "2024Q2", at(2024, 6, 20), at(2024, 8, 10), RULE)
    assert late.state == LATE and late.late and late.days_late == 10
    assert late.deadline == at(2024, 7, 31)
    assert "10 days late" in late.message("en") and "retraso" in late.message("es")


def test_a_node_that_never_answered_is_late_after_the_deadline() -> None:
    assert assess("MEX", "2024Q2", None, at(2024, 7, 15), RULE).state == PENDING
    assert assess("MEX", "2024Q2", None, at(2024, 8, 1), RULE).state == LATE


def test_reminders_are_sent_at_most_once_per_interval() -> None:
    now = at(2024, 8, 20)
    states = assess_all(
        ["PAN", "CRI", "HND"],
        "2024Q2",
        {"PAN": at(2024, 7, 5), "CRI": at(2024, 6, 1), "HND": None},
        now,
        RULE,
    )
    assert [s.state for s in states] == [LATE, LATE, CURRENT]  # sorted: CRI, HND, PAN
    last = {"CRI": now - dt.timedelta(days=2), "HND": now - dt.timedelta(days=8)}
    due = due_reminders(states, last, now, RULE)
    assert [s.country for s in due] == ["HND"]
    assert [s.country for s in due_reminders(states, {}, now, RULE)] == ["CRI", "HND"]


def test_naive_times_are_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        assess("PAN", "2024Q2", None, dt.datetime(2024, 8, 1), RULE)
