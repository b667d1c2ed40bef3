"""Pull tables from every member, concurrently, with per-node deadlines and retries.

Why: the Secretariat collects the quarterly matrices (and the brief's monthly tables) from up
to eleven nodes. One slow or absent node must never hold the others up or break the pull:
each node gets its own worker and its own deadline; failures are retried with exponential
backoff (with jitter) while the deadline allows; whatever did not arrive is recorded as
``missing`` and the pull is ``partial`` — a result, clearly marked, not an error. A later
:func:`retry_pull` asks only the missing members again and completes the same pull.

Invariants:
* Every answer is a signed, verified :class:`~node.client.PeerReply` under the member's
  agreement (the purpose is stated in the signed header); nothing else is stored.
* Per (member, table, period) the stored status is ``complete`` (answered, and the member's
  data as-of is at or after the period end), ``partial`` (answered, data older than the
  period end) or ``missing`` (no answer); a failure never erases an earlier answer.
* Only transient failures (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL) are
  retried; a refusal (PERMISSION_DENIED, INVALID_ARGUMENT…) is final for that pull. After a
  node is found unreachable, its remaining tables are not tried in the same pull.
* A pull stays ``running`` only while its process works on it; one still ``running`` after
  :func:`stalled_after` was interrupted, and :func:`retryable_pulls` offers it for retry
  with the partial ones, so no pull is left unfinished.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from enlace.v1 import stats_pb2
from node.client import PeerClient
from node.errors import EnlaceError, PeerError
from node.runtime import NodeRuntime
from node.secretariat.freshness import period_end
from node.secretariat.pull_types import (
    AGGREGATE,
    COMPLETE,
    MISSING,
    PARTIAL,
    UNREACHABLE,
    MemberOutcome,
    PullItem,
    PullPolicy,
    PullReport,
    Retrier,
    matrix_items,
    parse_as_of,
)
from node.stats.answer_check import check_aggregate
from node.store.secretariat_store import PullRow, ResultRow

__all__ = [
    "COMPLETE", "MISSING", "PARTIAL", "RUNNING", "MemberOutcome", "PullItem", "PullPolicy",
    "PullReport", "Retrier", "matrix_items", "member_countries", "parse_as_of", "retry_pull",
    "retryable_pulls", "run_pull", "stalled_after",
]  # fmt: skip

log = logging.getLogger("node.secretariat")

RUNNING = "running"  # a pull whose process has not finished it (yet, or ever)


def member_countries(runtime: NodeRuntime) -> list[str]:
    """Every directory member with the ``member`` role, except this node."""
    directory = runtime.directory.current(runtime.clock.now())
    me = runtime.config.country
    return sorted(m.country for m in directory.members_with_role("member") if m.country != me)


def _stored_cells(response: stats_pb2.AggregateResponse) -> list[list[Any]]:
    return [
        [list(c.key), c.value if c.has_value else None, c.obs_status, c.conf_status, c.perturbed]
        for c in response.cells
    ]


def _coverage(response: stats_pb2.AggregateResponse, elapsed_ms: float) -> dict[str, Any]:
    cov = response.coverage
    return {
        "suppressed_primary": cov.suppressed_primary,
        "suppressed_secondary": cov.suppressed_secondary,
        "perturbed": cov.perturbed,
        "profile": cov.disclosure_profile,
        "agreement_hash": cov.agreement_hash,
        "matrix_version": cov.matrix_version,
        "measure": cov.measure,
        "elapsed_ms": round(elapsed_ms, 1),
    }


class _MemberPull:
    """Everything one worker does for one member, within that member's deadline."""

    def __init__(
        self,
        runtime: NodeRuntime,
        country: str,
        pull_id: str,
        purpose: str,
        policy: PullPolicy,
        sleep: Callable[[float], None],
    ) -> None:
        self.runtime, self.country, self.pull_id = runtime, country, pull_id
        self.purpose, self.policy, self.sleep = purpose, policy, sleep
        self.outcome = MemberOutcome(country)

    def run(self, items: Sequence[PullItem]) -> MemberOutcome:
        started = time.monotonic()
        deadline = started + self.policy.node_deadline
        try:
            client = PeerClient(self.runtime, self.country, timeout=self.policy.call_timeout)
        except EnlaceError as exc:
            for item in items:
                self._fail(item, f"{exc}", 0)
            self.outcome.seconds = time.monotonic() - started
            return self._finish()
        unreachable = ""
        try:
            for item in items:
                if unreachable:
                    self._fail(item, f"not tried: {unreachable}", 0)
                    continue
                unreachable = self._one(client, item, deadline)
        finally:
            client.close()
        self.outcome.seconds = time.monotonic() - started
        return self._finish()

    def _one(self, client: PeerClient, item: PullItem, deadline: float) -> str:
        """Fetch one table; returns a reason when the node proved unreachable, else ''."""
        retrier = Retrier(self.policy, self.sleep)
        try:
            reply = retrier.call(
                client,
                AGGREGATE,
                item.request(),
                stats_pb2.AggregateResponse,
                purpose=self.purpose,
                deadline=deadline,
            )
            check_aggregate(client.peer, reply.message, item.answer_dimensions)
        except PeerError as exc:
            self.outcome.attempts += retrier.attempts
            self._fail(item, f"{exc.status_name}: {exc.message}", retrier.attempts)
            return exc.status_name if exc.status_name in UNREACHABLE else ""
        self.outcome.attempts += retrier.attempts
        self._succeed(
            item, reply.message, reply.header.agreement, reply.elapsed_ms, retrier.attempts
        )
        return ""

    def _succeed(
        self,
        item: PullItem,
        response: stats_pb2.AggregateResponse,
        agreement: str,
        elapsed_ms: float,
        attempts: int,
    ) -> None:
        now = self.runtime.clock.now()
        as_of = parse_as_of(response.coverage.as_of)
        status = COMPLETE if as_of is not None and as_of >= period_end(item.period) else PARTIAL
        self.runtime.store.secretariat.save_result(
            ResultRow(
                member=self.country,
                table_id=item.table,
                period=item.period,
                status=status,
                dimensions=tuple(response.dimensions),
                cells=_stored_cells(response),
                coverage=_coverage(response, elapsed_ms),
                as_of=as_of,
                agreement_id=agreement,
                pull_id=self.pull_id,
                attempts=attempts,
                received_at=now,
                last_attempt_at=now,
                last_error="",
            )
        )
        self.outcome.received.append(item.table)
        if status == PARTIAL:
            self.outcome.stale.append(item.table)
        if as_of is not None:
            self.outcome.as_of = as_of.isoformat()

    def _fail(self, item: PullItem, error: str, attempts: int) -> None:
        self.outcome.failed[item.table] = error
        self.runtime.store.secretariat.note_failure(
            self.country,
            item.table,
            item.period,
            dimensions=item.answer_dimensions,
            pull_id=self.pull_id,
            error=error,
            attempts=attempts,
            at=self.runtime.clock.now(),
        )

    def _finish(self) -> MemberOutcome:
        return self.outcome.settle()


def _run_members(
    runtime: NodeRuntime,
    work: Mapping[str, Sequence[PullItem]],
    pull_id: str,
    purpose: str,
    policy: PullPolicy,
    sleep: Callable[[float], None],
) -> dict[str, MemberOutcome]:
    if not work:
        return {}
    workers = max(1, min(policy.max_workers, len(work)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="st-pull") as pool:
        futures = {
            country: pool.submit(
                _MemberPull(runtime, country, pull_id, purpose, policy, sleep).run, items
            )
            for country, items in work.items()
        }
        return {country: future.result() for country, future in futures.items()}


def run_pull(
    runtime: NodeRuntime,
    items: Sequence[PullItem],
    *,
    purpose: str,
    trigger: str,
    members: Sequence[str] | None = None,
    policy: PullPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PullReport:
    """Ask every member (or ``members``) for every item, concurrently; persist everything."""
    policy = policy or PullPolicy()
    countries = sorted(set(members)) if members is not None else member_countries(runtime)
    now = runtime.clock.now()
    period = ",".join(sorted({i.period for i in items}))
    pull_id = f"P{now.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
    store = runtime.store.secretariat
    store.add_pull(
        PullRow(
            pull_id=pull_id,
            created_at=now,
            finished_at=None,
            trigger=trigger,
            purpose=purpose,
            period=period,
            items=[i.to_dict() for i in items],
            members=countries,
            status=RUNNING,
            summary={},
        )
    )
    started = time.monotonic()
    outcomes = _run_members(
        runtime, {c: list(items) for c in countries}, pull_id, purpose, policy, sleep
    )
    report = PullReport(pull_id, trigger, purpose, period, outcomes, time.monotonic() - started)
    store.finish_pull(
        pull_id,
        report.status,
        {c: o.to_dict() for c, o in outcomes.items()},
        runtime.clock.now(),
    )
    log.info("pull %s: %s (%s missing)", pull_id, report.status, ",".join(report.missing) or "none")
    return report


def retry_pull(
    runtime: NodeRuntime,
    pull_id: str,
    *,
    policy: PullPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PullReport:
    """Ask again only the members whose tables are missing from ``pull_id``; merge results."""
    from node.errors import NotFoundError

    policy = policy or PullPolicy()
    store = runtime.store.secretariat
    row = store.pull(pull_id)
    if row is None:
        raise NotFoundError(f"no pull {pull_id!r}", hint="list pulls with `enlace st status`")
    items = {i["table"]: PullItem.from_dict(i) for i in row.items}
    # A pull whose process stopped before it finished has no summary: what it lacks is read
    # from the results it stored, so the retry asks exactly the tables never received.
    summary = row.summary or interrupted_summary(store.results(), row)
    work = {
        country: [items[t] for t in sorted(outcome.get("failed", {})) if t in items]
        for country, outcome in summary.items()
        if outcome.get("failed")
    }
    started = time.monotonic()
    fresh = _run_members(runtime, work, pull_id, row.purpose, policy, sleep)
    merged: dict[str, MemberOutcome] = {}
    for country, previous in summary.items():
        outcome = MemberOutcome(
            country,
            status=previous.get("status", MISSING),
            received=list(previous.get("received", [])),
            stale=list(previous.get("stale", [])),
            failed=dict(previous.get("failed", {})),
            attempts=int(previous.get("attempts", 0)),
            seconds=float(previous.get("seconds", 0.0)),
            as_of=str(previous.get("as_of", "")),
        )
        again = fresh.get(country)
        if again is not None:
            for table in again.received:
                outcome.failed.pop(table, None)
                if table not in outcome.received:
                    outcome.received.append(table)
                if table in outcome.stale and table not in again.stale:
                    outcome.stale.remove(table)
            outcome.stale.extend(t for t in again.stale if t not in outcome.stale)
            outcome.failed.update(again.failed)
            outcome.attempts += again.attempts
            outcome.seconds = again.seconds
            outcome.as_of = again.as_of or outcome.as_of
            outcome.settle()
        merged[country] = outcome
    report = PullReport(
        pull_id, "retry", row.purpose, row.period, merged, time.monotonic() - started
    )
    store.finish_pull(
        pull_id, report.status, {c: o.to_dict() for c, o in merged.items()}, runtime.clock.now()
    )
    log.info("retry of %s: %s", pull_id, report.status)
    return report


def interrupted_summary(results: Sequence[ResultRow], row: PullRow) -> dict[str, Any]:
    """The summary an unfinished pull would have written: per member, the tables it stored a
    received answer for under this pull, and every other table as failed (interrupted)."""
    received = {
        (r.member, r.table_id, r.period): r
        for r in results
        if r.pull_id == row.pull_id and r.received_at is not None
    }
    summary: dict[str, Any] = {}
    for country in row.members:
        outcome = MemberOutcome(country)
        for item in row.items:
            found = received.get((country, item["table"], item["period"]))
            if found is None:
                outcome.failed[item["table"]] = "interrupted: the pull stopped before an answer"
                continue
            outcome.received.append(item["table"])
            if found.status == PARTIAL:
                outcome.stale.append(item["table"])
        summary[country] = outcome.settle().to_dict()
    return summary


def stalled_after(row: PullRow, policy: PullPolicy) -> dt.timedelta:
    """How long a pull can run at most: each wave of ``max_workers`` members has the node
    deadline, and every call of a member stops at it. A pull still ``running`` after that
    has lost its process (stopped, killed, crashed) and will never finish by itself."""
    waves = max(1, math.ceil(len(row.members) / max(1, policy.max_workers)))
    return dt.timedelta(seconds=policy.node_deadline * waves)


def retryable_pulls(
    runtime: NodeRuntime, now: dt.datetime, max_age: dt.timedelta, policy: PullPolicy
) -> list[str]:
    """Pulls young enough to be retried, oldest first: the partial ones, and the ones left
    ``running`` past :func:`stalled_after` (interrupted; the retry completes them from the
    answers they stored)."""
    store = runtime.store.secretariat
    rows = [
        *store.pulls(status=PARTIAL, limit=200),
        *(
            r
            for r in store.pulls(status=RUNNING, limit=200)
            if now - r.created_at > stalled_after(r, policy)
        ),
    ]
    rows.sort(key=lambda r: r.created_at)
    return [r.pull_id for r in rows if now - r.created_at <= max_age]
