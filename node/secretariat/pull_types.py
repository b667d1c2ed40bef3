"""The vocabulary of a pull: what is asked (items), how hard to try (policy, retries), and what
came back per member (outcomes, report).

Why apart from :mod:`node.secretariat.pull`: rounds of regional-only tables and the consular
directory retry their calls the same way, and the reports are read by the CLI, the demo and
the calendar; none of them needs the pulling machinery itself.

Invariants:
* :class:`Retrier` retries only :data:`TRANSIENT` statuses, with exponential backoff and jitter,
  and never starts a call after the node's deadline; ``attempts`` counts the calls made.
* A :class:`MemberOutcome` is ``missing`` when nothing arrived, ``partial`` when some table
  failed or arrived with data older than the period end, else ``complete`` (:meth:`settle`).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import Message

from crypto.envelope import parse_time
from crypto.errors import CryptoError
from enlace.v1 import stats_pb2
from node.client import PeerClient, PeerReply
from node.errors import PeerError
from node.stats.matrices import matrix
from node.stats.query import parse_period

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
