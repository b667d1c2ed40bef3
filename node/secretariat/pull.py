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
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import Message

from crypto.envelope import parse_time
from crypto.errors import CryptoError
from enlace.v1 import stats_pb2
from node.client import PeerClient, PeerReply
from node.errors import EnlaceError, PeerError
from node.runtime import NodeRuntime
from node.secretariat.freshness import period_end
from node.stats.matrices import matrix
from node.stats.query import parse_period
from node.store.secretariat_store import PullRow, ResultRow

log = logging.getLogger("node.secretariat")

AGGREGATE = "/enlace.v1.StatsService/Aggregate"
TRANSIENT = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "INTERNAL"})
UNREACHABLE = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})
COMPLETE, PARTIAL, MISSING = "complete", "partial", "missing"
M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class PullItem:
    """One table to ask every member for: a named matrix, or explicit dimensions."""

    table: str
    period: str
    matrix: str = ""
    dimensions: tuple[str, ...] = ()
    measure: str = "persons"
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    margins: bool = True

    @property
    def answer_dimensions(self) -> tuple[str, ...]:
        return matrix(self.matrix).dimensions if self.matrix else self.dimensions

    def request(self) -> stats_pb2.AggregateRequest:
        return stats_pb2.AggregateRequest(
            dataset="encounters",
            measure=self.measure,
            dimensions=list(self.dimensions),
            filters=[
                stats_pb2.Filter(dimension=k, values=list(v)) for k, v in self.filters.items()
            ],
            period=self.period,
            margins=self.margins,
            matrix=self.matrix,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "period": self.period,
            "matrix": self.matrix,
            "dimensions": list(self.dimensions),
            "measure": self.measure,
            "filters": {k: list(v) for k, v in self.filters.items()},
            "margins": self.margins,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PullItem:
        return cls(
            table=str(data["table"]),
            period=str(data["period"]),
            matrix=str(data.get("matrix", "")),
            dimensions=tuple(data.get("dimensions", ())),
            measure=str(data.get("measure", "persons")),
            filters={k: tuple(v) for k, v in dict(data.get("filters", {})).items()},
            margins=bool(data.get("margins", True)),
        )


def matrix_items(matrices: Iterable[str], period: str) -> list[PullItem]:
    parse_period(period)
    return [PullItem(table=matrix(m).id, period=period, matrix=matrix(m).id) for m in matrices]


@dataclass(frozen=True)
class PullPolicy:
    node_deadline: float = 30.0
    call_timeout: float = 20.0
    attempts: int = 3
    backoff: float = 0.5
    backoff_max: float = 8.0
    max_workers: int = 12


@dataclass
class MemberOutcome:
    country: str
    status: str = MISSING
    received: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    seconds: float = 0.0
    as_of: str = ""

    def settle(self) -> MemberOutcome:
        """Set ``status`` from what was received, stale and failed."""
        if not self.received:
            self.status = MISSING
        elif self.failed or self.stale:
            self.status = PARTIAL
        else:
            self.status = COMPLETE
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "received": self.received,
            "stale": self.stale,
            "failed": self.failed,
            "attempts": self.attempts,
            "seconds": round(self.seconds, 3),
            "as_of": self.as_of,
        }


@dataclass
class PullReport:
    pull_id: str
    trigger: str
    purpose: str
    period: str
    members: dict[str, MemberOutcome]
    seconds: float = 0.0

    @property
    def status(self) -> str:
        return PARTIAL if self.missing else COMPLETE

    @property
    def missing(self) -> list[str]:
        return sorted(c for c, o in self.members.items() if o.failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pull_id": self.pull_id,
            "trigger": self.trigger,
            "purpose": self.purpose,
            "period": self.period,
            "status": self.status,
            "missing": self.missing,
            "seconds": round(self.seconds, 3),
            "members": {c: o.to_dict() for c, o in sorted(self.members.items())},
        }


def parse_as_of(text: str) -> dt.datetime | None:
    """A peer's as-of time, or None when absent or not in the header time form."""
    if not text:
        return None
    try:
        return parse_time(text)
    except CryptoError:
        return None


class Retrier:
    """One call with retries: exponential backoff with jitter, within a node's deadline.

    Only :data:`TRANSIENT` statuses are retried; ``attempts`` counts the calls made.
    """

    def __init__(self, policy: PullPolicy, sleep: Callable[[float], None] = time.sleep) -> None:
        self.policy, self.sleep, self.attempts = policy, sleep, 0

    def delay(self) -> float:
        growth = float(2 ** max(0, self.attempts - 1))
        base = min(self.policy.backoff_max, self.policy.backoff * growth)
        return base * (0.5 + random.random() / 2)  # jitter: members are not hit in lockstep

    def call(
        self,
        client: PeerClient,
        method: str,
        request: Message,
        response_type: type[M],
        *,
        purpose: str,
        deadline: float,
    ) -> PeerReply[M]:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PeerError(
                    "node deadline passed",
                    peer=client.peer,
                    status_name="DEADLINE_EXCEEDED",
                    hint="the node is late; a later retry asks it again",
                )
            self.attempts += 1
            try:
                return client.call(
                    method,
                    request,
                    response_type,
                    purpose=purpose,
                    timeout=min(self.policy.call_timeout, remaining),
                )
            except PeerError as exc:
                delay = self.delay()
                if (
                    exc.status_name not in TRANSIENT
                    or self.attempts >= self.policy.attempts
                    or time.monotonic() + delay >= deadline
                ):
                    raise
                log.info("%s %s: %s; retrying in %.2fs", client.peer, method, exc, delay)
                self.sleep(delay)


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
        "records_considered": cov.records_considered,
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
            status="running",
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
    work = {
        country: [items[t] for t in sorted(outcome.get("failed", {})) if t in items]
        for country, outcome in row.summary.items()
        if outcome.get("failed")
    }
    started = time.monotonic()
    fresh = _run_members(runtime, work, pull_id, row.purpose, policy, sleep)
    merged: dict[str, MemberOutcome] = {}
    for country, previous in row.summary.items():
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


def partial_pulls(runtime: NodeRuntime, now: dt.datetime, max_age: dt.timedelta) -> list[str]:
    """Partial pulls young enough to be retried, oldest first."""
    rows = runtime.store.secretariat.pulls(status=PARTIAL, limit=200)
    return [r.pull_id for r in reversed(rows) if now - r.created_at <= max_age]
