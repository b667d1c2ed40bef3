"""The Secretariat's calendar: persisted in the node's database, editable, run by the ST only."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select, text
from st_support import QUARTER, office, prepare

from node.errors import InvalidArgumentError, NotFoundError
from node.runtime import open_runtime
from node.secretariat.schedule import KINDS, Calendar, active_runner, edit_calendar, run_job

LiveFederation = Any  # tests/integration/conftest.py


def job_rows(runtime: Any) -> int:
    with runtime.store.engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(text("st_schedule_jobs"))).scalar_one()
        )


def test_calendar_is_persisted_and_edits_survive_a_restart(
    live_federation_factory: Callable[..., LiveFederation],
) -> None:
    live = live_federation_factory(("PAN",))
    crm = live.runtimes["CRM"]
    listing = edit_calendar(crm)
    assert {row["id"] for row in listing} == KINDS and job_rows(crm) == len(KINDS)
    assert all(row["next_run"] is not None for row in listing)

    def edit(calendar: Calendar) -> None:
        calendar.set_cron("monthly-brief", "30 9 12 * *")
        calendar.pause("freshness-check")
        calendar.set_interval("retry-partial", 900)

    edit_calendar(crm, edit)
    home, url = crm.home, crm.store.engine.url.render_as_string(hide_password=False)
    crm.close()
    reopened = open_runtime(home, live.clocks["CRM"], database_url=url)
    live.runtimes["CRM"] = reopened  # closed by the fixture
    rows = {row["id"]: row for row in edit_calendar(reopened)}
    assert rows["monthly-brief"]["trigger"] == "cron 30 9 12 * *"
    assert rows["monthly-brief"]["next_run"].day == 12
    assert rows["freshness-check"]["paused"] and rows["freshness-check"]["next_run"] is None
    assert rows["retry-partial"]["trigger"] == "every 900 s"
    assert rows["quarterly-pull"]["trigger"] == "cron 0 6 1 2,5,8,11 *"  # untouched
    edit_calendar(reopened, lambda c: c.resume("freshness-check"))
    assert edit_calendar(reopened)[1]["next_run"] is not None


def test_calendar_edits_are_checked(live_federation_factory: Callable[..., LiveFederation]) -> None:
    crm = live_federation_factory(("PAN",)).runtimes["CRM"]
    with pytest.raises(InvalidArgumentError):
        edit_calendar(crm, lambda c: c.set_cron("monthly-brief", "every day"))
    with pytest.raises(NotFoundError):
        edit_calendar(crm, lambda c: c.pause("coffee"))
    with pytest.raises(InvalidArgumentError):
        edit_calendar(crm, lambda c: c.set_interval("retry-partial", 5))


def test_run_now_leaves_the_job_due_for_the_serving_node(
    live_federation_factory: Callable[..., LiveFederation], caplog: pytest.LogCaptureFixture
) -> None:
    """``st calendar --run-now`` edits from a command line: its own, paused scheduler must not
    take the job it just made due on its way out (APScheduler looks once more after
    ``shutdown()``), log an error and move the job's next run to its next date."""
    crm = live_federation_factory(("PAN",)).runtimes["CRM"]
    edit_calendar(crm)  # the defaults
    due = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=1)
    caplog.set_level(logging.WARNING)
    for _ in range(5):  # the race needed the loop to wake at the wrong moment: try it often
        rows = {r["id"]: r for r in edit_calendar(crm, lambda c: c.run_soon("retry-partial", due))}
        assert rows["retry-partial"]["next_run"] == due
    rows = {r["id"]: r for r in edit_calendar(crm)}
    assert rows["retry-partial"]["next_run"] == due  # still due: for the node to run
    assert "Error submitting job" not in caplog.text and "after shutdown" not in caplog.text


def test_jobs_run_only_on_the_secretariat(
    live_federation_factory: Callable[..., LiveFederation], caplog: pytest.LogCaptureFixture
) -> None:
    live = live_federation_factory(("PAN",))
    pan = live.runtimes["PAN"]
    with pytest.raises(InvalidArgumentError):
        Calendar(pan).start(office(pan))
    caplog.set_level(logging.WARNING, logger="node.secretariat")
    run_job("retry-partial", str(pan.home.root))
    assert "no Secretariat runs in this process" in caplog.text


def test_the_st_server_runs_its_calendar(
    live_federation_factory: Callable[..., LiveFederation], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="node.secretariat")
    live = live_federation_factory(("PAN", "CRI", "HND"))
    prepare(live, ("PAN", "CRI", "HND"))
    for member in ("PAN", "CRI"):
        live.serve(member)
    crm = live.runtimes["CRM"]
    partial = office(crm).collect(QUARTER, matrices=["M01"])
    assert partial.status == "partial"
    live.serve("HND")
    server = live.serve("CRM")
    assert active_runner(crm) is server.secretariat  # type: ignore[attr-defined]
    calendar = server.secretariat.calendar  # type: ignore[attr-defined]
    calendar.run_soon("retry-partial", dt.datetime.now(dt.UTC))  # the scheduler's own clock
    store = crm.store.secretariat
    assert partial.pull is not None

    def settled() -> bool:
        # the partial pull completed in place; the start's catch-up pulled the due quarter
        done = store.pull(partial.pull.pull_id)  # type: ignore[union-attr]
        scheduled = [p for p in store.pulls() if p.trigger == "schedule"]
        return done is not None and done.status == "complete" and len(scheduled) == 1

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not settled():
        time.sleep(0.2)
    assert settled()
    assert len(store.pulls()) == 2
    # The operator's log says the job ran (the catch-up, every few minutes, stays quiet).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "job retry-partial done in" not in caplog.text:
        time.sleep(0.1)
    assert "job retry-partial started" in caplog.text and "job retry-partial done in" in caplog.text
    assert "job catch-up started" not in caplog.text


def test_one_calendar_among_replicas_on_postgresql(
    live_federation_factory: Callable[..., LiveFederation],
) -> None:
    live = live_federation_factory(("PAN",))
    first = live.runtimes["CRM"]
    if first.store.backend != "postgresql":
        pytest.skip("a SQLite node is one process: it is always its own calendar runner")
    url = first.store.engine.url.render_as_string(hide_password=False)
    second = open_runtime(first.home, live.clocks["CRM"], database_url=url)
    live.runtimes["CRM-replica"] = second  # closed by the fixture
    offices = [office(first), office(second)]
    for each in offices:
        each.start()
    try:
        running = [o for o in offices if o.calendar is not None]
        assert len(running) == 1
        leader, follower = running[0], next(o for o in offices if o is not running[0])
        leader.stop()
        deadline = time.monotonic() + 20
        while follower.calendar is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert follower.calendar is not None  # the other replica took the calendar over
    finally:
        for each in offices:
            each.stop()


def test_stopping_while_a_job_reads_the_calendar_does_not_hang(
    live_federation_factory: Callable[..., LiveFederation],
) -> None:
    import threading

    live = live_federation_factory(("PAN",))
    crm = live.runtimes["CRM"]
    runner = office(crm)
    calendar = Calendar(crm)
    calendar.start(runner)
    reading, release, read = threading.Event(), threading.Event(), threading.Event()

    def job() -> None:  # as the catch-up does: ask the calendar from inside a job
        reading.set()
        release.wait(10)
        calendar.last_due("quarterly-pull", dt.datetime.now(dt.UTC))
        read.set()

    calendar.scheduler.add_job(job, jobstore="default", next_run_time=dt.datetime.now(dt.UTC))
    assert reading.wait(10)
    stopping = threading.Thread(target=calendar.shutdown, daemon=True)
    stopping.start()
    time.sleep(0.3)  # the shutdown now holds the scheduler's locks and waits for the job
    release.set()
    stopping.join(10)
    assert read.is_set() and not stopping.is_alive()
