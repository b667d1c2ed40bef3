"""No scheduled pull is lost: interrupted pulls are completed, missed quarters are caught up.

Time comes from the nodes' manual clocks; the scheduler itself is only started to show that
it asks for the catch-up at once.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from st_support import (
    QUARTER,
    office,
    serving_members,
)

import node.secretariat.pull as pull_module
from node.secretariat.freshness import last_closed_quarter
from node.secretariat.schedule import CATCH_UP, Calendar, edit_calendar, last_fire

LiveFederation = Any  # tests/integration/conftest.py
MEMBERS = ("PAN", "CRI", "HND")
QUARTERLY = CronTrigger.from_crontab("0 6 1 2,5,8,11 *", timezone=dt.UTC)


@pytest.fixture
def st_live(live_federation_factory: Callable[..., LiveFederation]) -> LiveFederation:
    return serving_members(live_federation_factory(MEMBERS), MEMBERS)


def advance(live: LiveFederation, delta: dt.timedelta) -> None:
    for clock in live.clocks.values():
        clock.advance(delta)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def test_the_last_time_a_trigger_fell_due() -> None:
    assert last_fire(QUARTERLY, at("2025-02-03T00:00")) == at("2025-02-01T06:00")
    assert last_fire(QUARTERLY, at("2025-02-01T06:00")) == at("2025-02-01T06:00")
    assert last_fire(QUARTERLY, at("2025-02-01T05:59")) == at("2024-11-01T06:00")
    hourly = IntervalTrigger(hours=1, start_date=at("2025-01-01T00:30"), timezone=dt.UTC)
    assert last_fire(hourly, at("2025-03-10T12:10")) == at("2025-03-10T11:30")
    assert last_fire(hourly, at("2024-12-31T00:00")) is None


def test_an_interrupted_pull_is_completed_once_its_deadline_has_passed(
    st_live: LiveFederation, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm = st_live.runtimes["CRM"]
    st = office(crm)
    real_run = pull_module._MemberPull.run

    def stopping(self: Any, items: Any) -> Any:
        if self.country == "HND":  # the process stops while this worker runs
            raise SystemExit("stopped")
        return real_run(self, items)

    monkeypatch.setattr(pull_module._MemberPull, "run", stopping)
    with pytest.raises(SystemExit):
        st.collect(QUARTER, matrices=["M01"], trigger="schedule")
    monkeypatch.setattr(pull_module._MemberPull, "run", real_run)
    store = crm.store.secretariat
    (row,) = store.pulls()
    assert row.status == "running"

    assert st.retry() == []  # it may still be running: within the node deadline
    assert store.pull(row.pull_id).status == "running"  # type: ignore[union-attr]
    advance(st_live, dt.timedelta(seconds=st.settings.node_deadline_seconds + 1))
    (retried,) = st.retry()
    assert retried.pull_id == row.pull_id and retried.status == "complete"
    assert store.pull(row.pull_id).status == "complete"  # type: ignore[union-attr]
    assert {r.member for r in store.results(period=QUARTER) if r.received_at} == set(MEMBERS)
    assert st.retry() == []


def expected_quarter(now: dt.datetime) -> str:
    """The quarter the default calendar last pulled: 1 Feb/May/Aug/Nov 06:00 at or before."""
    year, month = now.year, now.month
    while True:
        if month in (2, 5, 8, 11) and dt.datetime(year, month, 1, 6, tzinfo=dt.UTC) <= now:
            return last_closed_quarter(dt.datetime(year, month, 1, 6, tzinfo=dt.UTC))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)


def test_a_quarter_missed_while_the_st_was_down_is_pulled_once(st_live: LiveFederation) -> None:
    crm = st_live.runtimes["CRM"]
    st = office(crm)
    store = crm.store.secretariat
    edit_calendar(crm, lambda c: c.pause("quarterly-pull"))
    assert st.catch_up() is None and store.pulls() == []  # paused: left alone
    edit_calendar(crm, lambda c: c.resume("quarterly-pull"))

    st.collect(expected_quarter(crm.clock.now()), matrices=["M01"])  # by hand: not the calendar
    report = st.catch_up()
    assert report is not None and report.pull is not None
    assert report.period == expected_quarter(crm.clock.now())
    scheduled = [p for p in store.pulls() if p.trigger == "schedule"]
    assert [p.pull_id for p in scheduled] == [report.pull.pull_id]

    assert st.catch_up() is None  # the quarter is collected: never twice
    st.run_scheduled("quarterly-pull")  # a late misfire of the job itself adds nothing either
    assert len([p for p in store.pulls() if p.trigger == "schedule"]) == 1


def test_the_calendar_checks_for_a_missed_quarter_as_it_starts(
    live_federation_factory: Callable[..., LiveFederation],
) -> None:
    crm = live_federation_factory(("PAN",)).runtimes["CRM"]
    asked = threading.Event()

    class Runner:
        runtime = crm

        def run_scheduled(self, kind: str) -> None:
            if kind == CATCH_UP:
                asked.set()

        def start_emergency(self, *args: object) -> None:
            return None

    calendar = Calendar(crm)
    calendar.start(Runner())
    try:
        assert asked.wait(30)
    finally:
        calendar.shutdown()
