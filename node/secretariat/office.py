"""The Secretariat of a running ST node: what its calendar, its CLI and its RPCs set in motion.

Why one object: the quarterly pull, the retries, the freshness check and reminders, the
emergency pulls, the regional outputs and the monthly brief all need the same runtime,
settings and background workers; the calendar (:mod:`node.secretariat.schedule`) and the
``EmergencyUpdate`` handler call into it, and ``enlace st`` drives it by hand.

Invariants:
* Only a node with the ``secretariat`` role starts the calendar, and among replicas of that
  node on one database only the elected one; the other methods can be used by tools
  (benchmarks, tests) on any runtime that holds the agreements.
* Emergency pulls run in a small background pool, never on a gRPC worker thread.
* The calendar collects each quarter once (:meth:`Secretariat.scheduled_pull`), even when
  the quarterly job and the catch-up check both reach it; an interrupted or partial pull is
  then completed by :meth:`Secretariat.retry`, not started again.
* Nothing here swallows a failure silently: pull and round outcomes are stored and returned;
  reminders record each channel's result.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from node.errors import EnlaceError
from node.ops.leader import CHECK_SECONDS as ELECTION_CHECK_SECONDS
from node.ops.leader import LeaderElection
from node.runtime import NodeRuntime
from node.secretariat.freshness import (
    FreshnessRule,
    MemberFreshness,
    assess_all,
    due_reminders,
    last_closed_month,
    last_closed_quarter,
)
from node.secretariat.notify import remind
from node.secretariat.pull import (
    PullPolicy,
    PullReport,
    matrix_items,
    member_countries,
    retry_pull,
    retryable_pulls,
    run_pull,
)
from node.secretariat.regional import PublicationRule
from node.secretariat.rounds import RoundReport, run_round
from node.secretariat.schedule import CATCH_UP, Calendar, edit_calendar, register, unregister
from node.secretariat.settings import SecretariatSettings, load_settings
from node.stats.query import canonical_period, parse_period

log = logging.getLogger("node.secretariat")

RETRY_MAX_AGE_DAYS = 90


@dataclass
class CollectionReport:
    """One collection of a period: the pulled matrices and the regional-only rounds."""

    period: str
    pull: PullReport | None
    rounds: list[RoundReport] = field(default_factory=list)

    @property
    def status(self) -> str:
        partial = (self.pull is not None and self.pull.status == "partial") or any(
            r.status != "summed" or r.missing for r in self.rounds
        )
        return "partial" if partial else "complete"

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "status": self.status,
            "pull": self.pull.to_dict() if self.pull else None,
            "rounds": [r.to_dict() for r in self.rounds],
        }


class Secretariat:
    def __init__(
        self,
        runtime: NodeRuntime,
        settings: SecretariatSettings | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.runtime = runtime
        self.settings = settings or load_settings(runtime.home.root)
        self.sleep = sleep
        self._background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="st-background")
        self.calendar: Calendar | None = None
        self._election: LeaderElection | None = None
        self._stopping = threading.Event()
        self._watching: threading.Thread | None = None
        self._scheduled_lock = threading.Lock()

    # -- settings as domain values -------------------------------------------------------
    @property
    def policy(self) -> PullPolicy:
        s = self.settings
        return PullPolicy(
            node_deadline=s.node_deadline_seconds,
            call_timeout=s.call_timeout_seconds,
            attempts=s.attempts,
            backoff=s.backoff_seconds,
            backoff_max=s.backoff_max_seconds,
            max_workers=s.max_workers,
        )

    @property
    def rule(self) -> PublicationRule:
        return PublicationRule(self.settings.min_countries, self.settings.min_persons)

    @property
    def freshness_rule(self) -> FreshnessRule:
        return FreshnessRule(
            grace=dt.timedelta(days=self.settings.grace_days),
            remind_every=dt.timedelta(days=self.settings.remind_every_days),
        )

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Serve emergencies, and run the calendar while this replica holds the election.

        Replicas of the ST sharing one PostgreSQL database elect one calendar runner (its own
        advisory lock, distinct from the node's upkeep jobs); a SQLite node always runs it.
        """
        register(self)
        self._election = LeaderElection(
            self.runtime.store.engine, f"{self.runtime.config.country}:secretariat"
        )
        self._follow_election()
        self._watching = threading.Thread(
            target=self._watch, name="st-calendar-election", daemon=True
        )
        self._watching.start()

    def _follow_election(self) -> None:
        assert self._election is not None
        leader = self._election.check()
        if leader and self.calendar is None:
            self.calendar = Calendar(self.runtime)
            self.calendar.start(self)
        elif not leader and self.calendar is not None:
            self.calendar.shutdown()
            self.calendar = None

    def _watch(self) -> None:
        while not self._stopping.wait(ELECTION_CHECK_SECONDS):
            try:
                self._follow_election()
            except Exception:  # the watcher must outlive a failed check
                log.exception("Secretariat calendar election check failed")

    def stop(self) -> None:
        self._stopping.set()
        if self._watching is not None:
            self._watching.join(timeout=10)
        if self.calendar is not None:
            self.calendar.shutdown()
            self.calendar = None
        if self._election is not None:
            self._election.release()
        unregister(self)
        self._background.shutdown(wait=True)

    def run_scheduled(self, kind: str) -> None:
        now = self.runtime.clock.now()
        if kind == "quarterly-pull":
            self.scheduled_pull(last_closed_quarter(now))
        elif kind == CATCH_UP:
            self.catch_up()
        elif kind == "retry-partial":
            self.retry()
        elif kind == "freshness-check":
            self.remind_late()
        elif kind == "monthly-brief":
            from node.secretariat.brief_collect import monthly_brief

            monthly_brief(self, last_closed_month(now), trigger="schedule")
        elif kind == "consular-directory":
            from node.secretariat.outputs import write_consular

            write_consular(self)
        else:
            log.warning("unknown calendar job %s", kind)

    # -- collecting ----------------------------------------------------------------------
    def collect(
        self,
        period: str,
        *,
        matrices: Sequence[str] | None = None,
        members: Sequence[str] | None = None,
        trigger: str = "manual",
        purpose: str = "quarterly_matrices",
    ) -> CollectionReport:
        """Pull the (non regional-only) matrices and run a round per regional-only matrix."""
        chosen = self.settings.matrices if matrices is None else matrices
        wanted = [m.upper() for m in chosen]
        shared = [m for m in wanted if m in self.settings.regional_only]
        pulled = [m for m in wanted if m not in shared]
        report = CollectionReport(period, None)
        if pulled:
            report.pull = run_pull(
                self.runtime,
                matrix_items(pulled, period),
                purpose=purpose,
                trigger=trigger,
                members=members,
                policy=self.policy,
                sleep=self.sleep,
            )
        for matrix_id in shared:
            try:
                done = run_round(
                    self.runtime,
                    matrix_id,
                    period,
                    purpose=purpose,
                    helper=self.settings.helper,
                    members=members,
                    policy=self.policy,
                    rule=self.rule,
                    sleep=self.sleep,
                )
            except EnlaceError as exc:  # e.g. no helper in the directory: a failed round
                done = RoundReport("", matrix_id, period, self.settings.helper)
                done.status, done.detail = "failed", str(exc)
            report.rounds.append(done)
        return report

    def scheduled_pull(self, period: str) -> CollectionReport | None:
        """The calendar's collection of ``period``, once: None when one was already made.

        The ``quarterly-pull`` job and :meth:`catch_up` may both reach a quarter (a misfire
        run by APScheduler on restart, and the catch-up check at start); the lock and the
        stored pulls make the second one a no-op. A manual ``enlace st pull`` never counts.
        """
        with self._scheduled_lock:
            if self.scheduled_for(period):
                log.info("scheduled collection of %s already made; not repeated", period)
                return None
            return self.collect(period, trigger="schedule")

    def scheduled_for(self, period: str) -> bool:
        """Whether the calendar already collected ``period`` (finished or still running: an
        interrupted pull is completed by :meth:`retry`, never started again)."""
        canonical = parse_period(period).canonical
        store = self.runtime.store.secretariat
        if any(m not in self.settings.regional_only for m in self.settings.matrices):
            return any(
                p.trigger == "schedule" and canonical_period(p.period) == canonical
                for p in store.pulls(limit=200)
            )
        return bool(store.rounds(period=canonical, limit=1))

    def catch_up(self) -> CollectionReport | None:
        """Collect the quarter of the latest due time of ``quarterly-pull`` if it never was.

        Why: a calendar that was down when the pull fell due skips misfires older than six
        hours, and ``retry-partial`` only completes pulls that exist. Paused, the job is left
        alone. Time comes from the node's clock.
        """
        now = self.runtime.clock.now()
        if self.calendar is not None:
            due = self.calendar.last_due("quarterly-pull", now)
        else:
            found: list[dt.datetime | None] = []
            edit_calendar(self.runtime, lambda c: found.append(c.last_due("quarterly-pull", now)))
            due = found[0]
        if due is None:
            return None
        return self.scheduled_pull(last_closed_quarter(due))

    def retry(self, pull_id: str | None = None) -> list[PullReport]:
        """Complete one pull, or every partial or interrupted pull of the last 90 days."""
        if pull_id is not None:
            return [retry_pull(self.runtime, pull_id, policy=self.policy, sleep=self.sleep)]
        now = self.runtime.clock.now()
        max_age = dt.timedelta(days=RETRY_MAX_AGE_DAYS)
        ids = retryable_pulls(self.runtime, now, max_age, self.policy)
        return [retry_pull(self.runtime, p, policy=self.policy, sleep=self.sleep) for p in ids]

    # -- freshness and reminders -----------------------------------------------------------
    def freshness(self, period: str | None = None) -> list[MemberFreshness]:
        """Each member's freshness for ``period`` (default: the last closed quarter)."""
        now = self.runtime.clock.now()
        period = period or last_closed_quarter(now)
        as_of: dict[str, Any] = {}
        answered: dict[str, Any] = {}
        for row in self.runtime.store.secretariat.results():
            if row.as_of is not None and (
                as_of.get(row.member) is None or row.as_of > as_of[row.member]
            ):
                as_of[row.member] = row.as_of
            if row.received_at is not None and (
                answered.get(row.member) is None or row.received_at > answered[row.member]
            ):
                answered[row.member] = row.received_at
        return assess_all(
            member_countries(self.runtime),
            period,
            as_of,
            now,
            self.freshness_rule,
            answered=answered,
        )

    def remind_late(
        self,
        period: str | None = None,
        *,
        channels: Sequence[str] = ("node", "email"),
        force: bool = False,
    ) -> list[dict[str, str]]:
        """Remind the late members not reminded recently (``force``: every late member)."""
        now = self.runtime.clock.now()
        states = self.freshness(period)
        period = states[0].period if states else (period or last_closed_quarter(now))
        last: dict[str, Any] = {}
        for row in self.runtime.store.secretariat.reminders(period=period):
            if row["status"] == "sent":
                last[row["member"]] = max(row["sent_at"], last.get(row["member"], row["sent_at"]))
        due = (
            [s for s in states if s.late]
            if force
            else due_reminders(states, last, now, self.freshness_rule)
        )
        if not due:
            return []
        channels = [c for c in channels if c != "email" or self.settings.smtp_host]
        return remind(self.runtime, self.settings, due, channels=channels)

    # -- emergency updates -----------------------------------------------------------------
    def start_emergency(
        self, member: str, period: str, matrices: list[str], emergency_id: str
    ) -> Future[CollectionReport]:
        """Pull ``member`` now, in the background (called by the EmergencyUpdate handler)."""
        return self._background.submit(self._emergency, member, period, matrices, emergency_id)

    def _emergency(
        self, member: str, period: str, matrices: list[str], emergency_id: str
    ) -> CollectionReport:
        store = self.runtime.store.secretariat
        # From here on the pull may read the member's data: a later update must queue its own.
        store.set_emergency(emergency_id, pull_id="", status="pulling")
        # A regional-only table needs a round with every member; the next scheduled round
        # refreshes it. An emergency pull asks the member for its own tables only.
        wanted = [
            m for m in (matrices or self.settings.matrices) if m not in self.settings.regional_only
        ]
        try:
            report = self.collect(
                period,
                matrices=wanted,
                members=[member],
                trigger="emergency",
                purpose="emergency_update",
            )
        except Exception as exc:
            store.set_emergency(emergency_id, pull_id="", status="failed")
            log.warning("emergency pull of %s failed: %s", member, exc)
            raise
        pull_id = report.pull.pull_id if report.pull else ""
        store.set_emergency(emergency_id, pull_id=pull_id, status=report.status)
        return report
