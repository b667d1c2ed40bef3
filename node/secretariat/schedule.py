"""The Secretariat's calendar: APScheduler jobs persisted in the node's own database.

Why a persistent job store: the calendar is part of the ST's state — the operator edits it
(``enlace st calendar``), and a restart must neither forget an edit nor a job that fell due
while the node was down. The jobs live in the ``st_schedule_jobs`` table (migration 0006)
through APScheduler's :class:`SQLAlchemyJobStore`, on the same database as everything else.

Invariants:
* Jobs run only in a process that registered a Secretariat for its node home and only where
  the node holds the ``secretariat`` role; elsewhere :func:`run_job` logs and does nothing.
  Among replicas of the ST on one database, only the elected one runs a calendar at all
  (:class:`~node.secretariat.office.Secretariat` starts and stops it with its election).
* The default jobs are added only when missing, so an operator's edits survive restarts.
* A running scheduler re-reads the table at least every :data:`SYNC_SECONDS`, so an edit
  made by the CLI in another process takes effect within that time.
* A job never raises into the scheduler: failures are logged (each job body also records
  its own outcome in the store).
* A quarterly pull is never lost to downtime: APScheduler runs a job missed by at most six
  hours and skips older misfires, so a running calendar also runs :data:`CATCH_UP` at start
  and every :data:`CATCH_UP_SECONDS`; it asks the Secretariat to pull the quarter of the
  latest due time of ``quarterly-pull`` when no scheduled pull of that quarter exists.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from node.errors import EnlaceError, InvalidArgumentError, NotFoundError
from node.runtime import NodeRuntime
from node.store.database import writer

log = logging.getLogger("node.secretariat")

TABLE = "st_schedule_jobs"
STORE = "calendar"
SYNC_SECONDS = 60
JOB_FUNCTION = "node.secretariat.schedule:run_job"


class JobRunner(Protocol):
    """What a job needs from the Secretariat of this process."""

    runtime: NodeRuntime

    def run_scheduled(self, kind: str) -> None: ...

    def start_emergency(
        self, member: str, period: str, matrices: list[str], emergency_id: str
    ) -> object: ...


@dataclass(frozen=True)
class DefaultJob:
    id: str
    description: str
    trigger: Callable[[], Any]


def _cron(expr: str) -> Callable[[], CronTrigger]:
    return lambda: CronTrigger.from_crontab(expr, timezone=dt.UTC)


DEFAULT_JOBS = (
    DefaultJob(
        "quarterly-pull",
        "Pull the CRM matrices of the last closed quarter from every member",
        _cron("0 6 1 2,5,8,11 *"),
    ),
    DefaultJob(
        "retry-partial",
        "Ask again the members missing from partial pulls",
        lambda: IntervalTrigger(hours=1, timezone=dt.UTC),
    ),
    DefaultJob(
        "freshness-check",
        "Check each member's data as-of and remind the late ones",
        _cron("0 7 * * *"),
    ),
    DefaultJob(
        "monthly-brief",
        "Pull the brief's tables and render the monthly regional brief",
        _cron("0 8 10 * *"),
    ),
    DefaultJob(
        "consular-directory",
        "Merge the members' consular directory entries",
        _cron("0 5 1 * *"),
    ),
)
KINDS = frozenset(j.id for j in DEFAULT_JOBS)
# Not a calendar job: the check, at start and then every CATCH_UP_SECONDS, that the scheduled
# quarterly pull whose time has passed did run (the node may have been down when it fell due).
CATCH_UP = "catch-up"
CATCH_UP_SECONDS = 900

_ACTIVE: dict[str, JobRunner] = {}
_ACTIVE_LOCK = threading.Lock()


def _home_key(runtime: NodeRuntime) -> str:
    return str(Path(runtime.home.root).resolve())


def register(runner: JobRunner) -> None:
    """Make ``runner`` the Secretariat of its node home in this process (jobs, emergencies)."""
    with _ACTIVE_LOCK:
        _ACTIVE[_home_key(runner.runtime)] = runner


def unregister(runner: JobRunner) -> None:
    with _ACTIVE_LOCK:
        key = _home_key(runner.runtime)
        if _ACTIVE.get(key) is runner:
            del _ACTIVE[key]


def active_runner(runtime: NodeRuntime) -> JobRunner | None:
    """The Secretariat running in this process for ``runtime``'s node home, if any."""
    with _ACTIVE_LOCK:
        return _ACTIVE.get(_home_key(runtime))


def run_job(kind: str, home: str) -> None:
    """The function every stored job calls; dispatches to this process's Secretariat."""
    with _ACTIVE_LOCK:
        runner = _ACTIVE.get(home)
    if runner is None:
        log.warning("job %s for %s: no Secretariat runs in this process; skipped", kind, home)
        return
    if "secretariat" not in runner.runtime.config.roles:
        log.warning("job %s: this node does not hold the secretariat role; skipped", kind)
        return
    said = kind != CATCH_UP  # the catch-up looks every few minutes; its pulls log themselves
    started = time.monotonic()
    if said:
        log.info("job %s started", kind)
    try:
        runner.run_scheduled(kind)
        if said:
            log.info("job %s done in %.1f s", kind, time.monotonic() - started)
    except EnlaceError as exc:
        log.warning("job %s failed: %s", kind, exc)
    except Exception:  # a job must never kill the scheduler
        log.exception("job %s crashed", kind)


class _SharedEngineStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """The job store on the node's engine; shutting the scheduler down must not dispose it."""

    def shutdown(self) -> None:
        return None


def _sync() -> None:
    """A no-op whose only effect is to wake the scheduler, which then re-reads the table."""


class Calendar:
    """The ST's schedule. ``start()`` runs jobs; ``open_for_edit()`` only reads and edits."""

    def __init__(self, runtime: NodeRuntime) -> None:
        self.runtime = runtime
        self.home = _home_key(runtime)
        self.scheduler = BackgroundScheduler(
            timezone=dt.UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 6 * 3600},
        )
        self._store = _SharedEngineStore(engine=writer(runtime.store.engine), tablename=TABLE)
        self.scheduler.add_jobstore(self._store, STORE)
        self.scheduler.add_jobstore(MemoryJobStore(), "default")
        self._runner: JobRunner | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, runner: JobRunner) -> None:
        """Run the calendar in this process for ``runner`` (the node's Secretariat)."""
        if "secretariat" not in self.runtime.config.roles:
            raise InvalidArgumentError(
                "only a node with the secretariat role runs the Secretariat calendar",
                field="roles",
            )
        register(runner)
        self._runner = runner
        self.scheduler.start()
        self.ensure_defaults()
        self.scheduler.add_job(
            _sync, "interval", seconds=SYNC_SECONDS, id="calendar-sync", jobstore="default"
        )
        self.scheduler.add_job(
            run_job,
            trigger=IntervalTrigger(seconds=CATCH_UP_SECONDS, timezone=dt.UTC),
            id=CATCH_UP,
            name="Run a scheduled quarterly pull that did not run",
            kwargs={"kind": CATCH_UP, "home": self.home},
            jobstore="default",
            next_run_time=dt.datetime.now(dt.UTC),  # at once: the scheduler's own clock
        )

    def open_for_edit(self) -> None:
        """Start paused: the store is readable and editable, nothing runs."""
        self.scheduler.start(paused=True)
        self.ensure_defaults()

    def shutdown(self) -> None:
        """Stop, leaving every job in the shared store as it is.

        APScheduler's loop, woken by ``shutdown()``, looks for due jobs once more before it
        sees it must stop, and hands them to the executors it has just stopped: an error in
        the log, and each such job's next run moved on as if it had run. A command line that
        made a job due (``enlace st calendar --run-now``) lost it that way to its own exit, and
        a node stopping at a job's due time skipped it; a one-off job in memory could be
        removed twice (``JobLookupError`` in the scheduler's thread). So the stores are detached
        first: the last look finds nothing, and the running node (or the next start) runs the
        job. The shared store's rows stay; the in-memory store held only this run's jobs."""
        if self.scheduler.running:
            self.scheduler.remove_jobstore(STORE, shutdown=False)
            self.scheduler.remove_jobstore("default", shutdown=False)
            self.scheduler.shutdown(wait=True)

    # -- jobs ----------------------------------------------------------------------------
    def ensure_defaults(self) -> list[str]:
        """Add the default jobs that are missing; returns the ids added."""
        added = []
        for job in DEFAULT_JOBS:
            existing = self.scheduler.get_job(job.id, jobstore=STORE)
            if existing is not None:
                if existing.kwargs.get("home") != self.home:  # the node home moved
                    self.scheduler.modify_job(
                        job.id, jobstore=STORE, kwargs={"kind": job.id, "home": self.home}
                    )
                continue
            try:
                self.scheduler.add_job(
                    JOB_FUNCTION,
                    trigger=job.trigger(),
                    id=job.id,
                    name=job.description,
                    kwargs={"kind": job.id, "home": self.home},
                    jobstore=STORE,
                )
                added.append(job.id)
            except ConflictingIdError:
                continue
        return added

    def listing(self) -> list[dict[str, Any]]:
        """Every calendar job: id, description, trigger, next run (None when paused)."""
        rows = []
        for job in self.scheduler.get_jobs(jobstore=STORE):
            rows.append(
                {
                    "id": job.id,
                    "description": job.name,
                    "trigger": describe_trigger(job.trigger),
                    "next_run": job.next_run_time.astimezone(dt.UTC) if job.next_run_time else None,
                    "paused": job.next_run_time is None,
                }
            )
        return sorted(rows, key=lambda r: r["id"])

    def _require(self, job_id: str) -> None:
        if self.scheduler.get_job(job_id, jobstore=STORE) is None:
            raise NotFoundError(
                f"no calendar job {job_id!r}", hint=f"one of {', '.join(sorted(KINDS))}"
            )

    def set_cron(self, job_id: str, expression: str) -> None:
        """Reschedule with a five-field crontab expression (UTC)."""
        self._require(job_id)
        try:
            trigger = CronTrigger.from_crontab(expression, timezone=dt.UTC)
        except ValueError as exc:
            raise InvalidArgumentError(
                f"{expression!r}: {exc}", field="cron", hint="five fields: min hour day month dow"
            ) from None
        self.scheduler.reschedule_job(job_id, jobstore=STORE, trigger=trigger)

    def set_interval(self, job_id: str, seconds: int) -> None:
        self._require(job_id)
        if seconds < 60:
            raise InvalidArgumentError("at least 60 seconds", field="every")
        self.scheduler.reschedule_job(
            job_id, jobstore=STORE, trigger=IntervalTrigger(seconds=seconds, timezone=dt.UTC)
        )

    def pause(self, job_id: str) -> None:
        self._require(job_id)
        self.scheduler.pause_job(job_id, jobstore=STORE)

    def resume(self, job_id: str) -> None:
        self._require(job_id)
        self.scheduler.resume_job(job_id, jobstore=STORE)

    def last_due(self, job_id: str, now: dt.datetime) -> dt.datetime | None:
        """When the job last fell due at or before ``now`` (None: paused, missing, or never).

        Read from the job store, not through the scheduler: jobs call this (the catch-up), and
        APScheduler's ``shutdown(wait=True)`` holds the scheduler's job-store lock while it
        waits for running jobs, so a job asking the scheduler would wait for the shutdown that
        waits for it — the node would never stop.
        """
        job = self._store.lookup_job(job_id)
        if job is None or job.next_run_time is None:
            return None
        return last_fire(job.trigger, now)

    def run_soon(self, job_id: str, at: dt.datetime) -> None:
        """Make the job due at ``at`` (e.g. now): a running node picks it up at its next sync."""
        self._require(job_id)
        try:
            self.scheduler.modify_job(job_id, jobstore=STORE, next_run_time=at)
        except JobLookupError:
            raise NotFoundError(f"no calendar job {job_id!r}") from None


_MAX_STEPS = 10_000  # fire times walked per window: bounded even for a per-second trigger
_WINDOWS = (
    dt.timedelta(hours=1),
    dt.timedelta(days=1),
    dt.timedelta(days=32),
    dt.timedelta(days=400),
)


def last_fire(trigger: Any, now: dt.datetime) -> dt.datetime | None:
    """The latest time at or before ``now`` that ``trigger`` fires (None: none in 400 days).

    APScheduler only looks forward, so this looks forward from growing windows before ``now``
    (an hour first, so a frequent trigger costs few steps) and keeps the last fire time found.
    """
    for window in _WINDOWS:
        found = None
        moment = trigger.get_next_fire_time(None, now - window)
        for _ in range(_MAX_STEPS):
            if moment is None or moment > now:
                break
            found = moment
            moment = trigger.get_next_fire_time(moment, moment + dt.timedelta(seconds=1))
        if found is not None:
            return found.astimezone(dt.UTC)  # type: ignore[no-any-return]
    return None


def describe_trigger(trigger: Any) -> str:
    """A short, stable text for a trigger (crontab fields, or the interval)."""
    if isinstance(trigger, CronTrigger):
        fields = {f.name: str(f) for f in trigger.fields}
        return "cron {minute} {hour} {day} {month} {day_of_week}".format(**fields)
    if isinstance(trigger, IntervalTrigger):
        return f"every {int(trigger.interval.total_seconds())} s"
    return str(trigger)


def edit_calendar(
    runtime: NodeRuntime, edit: Callable[[Calendar], None] | None = None
) -> list[dict[str, Any]]:
    """Open the calendar paused, apply ``edit``, and return the listing afterwards."""
    calendar = Calendar(runtime)
    calendar.open_for_edit()
    try:
        if edit is not None:
            edit(calendar)
        return calendar.listing()
    finally:
        calendar.shutdown()
