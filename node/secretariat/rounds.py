"""The Secretariat's side of a regional-only table: one round of shares through the helper.

Why: for a table the members marked regional-only (``regional_only`` in the ST settings), the
ST must learn the regional sum and nothing finer. A round asks every member to contribute
(:data:`~node.secretariat.share_service.CONTRIBUTE`), keeps the ST shares that arrive, asks
the helper for the sum of its shares of *exactly those* members, and adds the two sums.

Invariants:
* The ST holds only its own shares (uniform, independent of the data) and the two sums; it
  never asks a member for its table, and it never sees a helper share.
* A member that does not answer (down, late, refusing) simply does not contribute; the round
  names it as missing, and the table is ``partial``. A later round can include it.
* Fewer than :data:`~node.secretariat.share_service.MIN_SHARES` contributions produce no sum
  (the helper refuses too); the round is ``failed`` with the reason, never a crash.
* A round is stored and asked for under the period's canonical text (``2024-04..2024-06``),
  so the helper and the members see one key per date range, whatever spelling the ST used.
* The summed table passes the same publication rule as pulled tables
  (:func:`node.secretariat.regional.from_sums`), with ``N_CONTRIB`` from the indicator sums.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from enlace.v1 import secretariat_pb2
from node.client import PeerClient
from node.errors import EnlaceError, NotFoundError, PeerError
from node.runtime import NodeRuntime
from node.secretariat.pull import PullPolicy, Retrier, member_countries, parse_as_of
from node.secretariat.regional import PublicationRule, RegionalTable, from_sums
from node.secretariat.share_service import (
    CONTRIBUTE,
    GET_SUM,
    MIN_SHARES,
    matrix_query,
)
from node.secretariat.shares import add, cell_layout, decode, from_vector

log = logging.getLogger("node.secretariat")


@dataclass
class RoundReport:
    round_id: str
    matrix: str
    period: str
    helper: str
    contributors: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    status: str = "open"
    detail: str = ""
    table: RegionalTable | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "round_id": self.round_id,
            "matrix": self.matrix,
            "period": self.period,
            "helper": self.helper,
            "contributors": self.contributors,
            "missing": self.missing,
            "status": self.status,
            "detail": self.detail,
            "seconds": round(self.seconds, 3),
        }


def find_helper(runtime: NodeRuntime) -> str:
    helpers = runtime.directory.current(runtime.clock.now()).members_with_role("helper")
    if not helpers:
        raise NotFoundError(
            "the directory lists no helper node; regional-only tables need one",
            hint="add an independent node with the helper role to the directory",
        )
    return helpers[0].country


def _contribution(
    runtime: NodeRuntime,
    member: str,
    request: secretariat_pb2.ContributeRequest,
    purpose: str,
    policy: PullPolicy,
    sleep: Callable[[float], None],
) -> secretariat_pb2.ContributeResponse:
    deadline = time.monotonic() + policy.node_deadline
    with PeerClient(runtime, member, timeout=policy.call_timeout) as client:
        reply = Retrier(policy, sleep).call(
            client,
            CONTRIBUTE,
            request,
            secretariat_pb2.ContributeResponse,
            purpose=purpose,
            deadline=deadline,
        )
    return reply.message


def run_round(
    runtime: NodeRuntime,
    matrix_id: str,
    period: str,
    *,
    purpose: str = "quarterly_matrices",
    helper: str = "",
    members: Sequence[str] | None = None,
    policy: PullPolicy | None = None,
    rule: PublicationRule | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RoundReport:
    """Collect one regional-only table; the report carries the regional table when summed."""
    policy = policy or PullPolicy()
    query = matrix_query(matrix_id, period)
    layout = cell_layout(query.dimensions, query.period)
    helper = helper or find_helper(runtime)
    countries = sorted(set(members)) if members is not None else member_countries(runtime)
    countries = [c for c in countries if c != helper]
    now = runtime.clock.now()
    round_id = (
        f"R{now.strftime('%Y%m%dT%H%M%S')}-{query.matrix}-{query.period.canonical}-"
        f"{secrets.token_hex(4)}"
    )
    report = RoundReport(round_id, query.matrix, query.period.text, helper)
    store = runtime.store.secretariat
    store.add_round(
        {
            "round_id": round_id,
            "matrix": query.matrix,
            "period": query.period.canonical,
            "helper": helper,
            "layout_sha256": layout.sha256,
            "cells": layout.cells,
            "created_at": now,
            "status": "open",
            "members": "[]",
            "detail": "",
        }
    )
    request = secretariat_pb2.ContributeRequest(
        round_id=round_id,
        matrix=query.matrix,
        period=query.period.canonical,
        helper=helper,
        layout_sha256=layout.sha256,
        cells=layout.cells,
    )
    started = time.monotonic()
    words = 2 * layout.cells
    with ThreadPoolExecutor(
        max_workers=max(1, min(policy.max_workers, len(countries) or 1)),
        thread_name_prefix="st-round",
    ) as pool:
        futures = {
            c: pool.submit(_contribution, runtime, c, request, purpose, policy, sleep)
            for c in countries
        }
        for country, future in futures.items():
            try:
                answer = future.result()
                decode(answer.st_share, words)
            except EnlaceError as exc:
                report.missing[country] = str(exc)
                continue
            as_of = parse_as_of(answer.as_of)
            store.save_round_share(round_id, country, answer.st_share, as_of, runtime.clock.now())
    shares = store.round_shares(round_id)
    if len(shares) < MIN_SHARES:
        report.status = "failed"
        report.detail = (
            f"only {len(shares)} member(s) contributed; at least {MIN_SHARES} are needed"
        )
        return _finish(runtime, report, started)
    try:
        with PeerClient(runtime, helper, timeout=policy.call_timeout) as client:
            answer_sum = client.call(
                GET_SUM,
                secretariat_pb2.GetSumRequest(
                    round_id=round_id, members=sorted(shares), layout_sha256=layout.sha256
                ),
                secretariat_pb2.GetSumResponse,
                purpose=purpose,
            ).message
    except PeerError as exc:
        report.status, report.detail = "failed", f"helper {helper}: {exc}"
        return _finish(runtime, report, started)
    summed = sorted(answer_sum.members)
    if not set(summed) <= set(shares):
        report.status, report.detail = "failed", "the helper summed members the ST did not ask"
        return _finish(runtime, report, started)
    try:  # a helper's sum of another length, or one that does not add up, is its failure
        helper_sum = decode(answer_sum.sum, words)
        cells = from_vector(
            layout, add([decode(shares[m], words) for m in summed], words) + helper_sum
        )
    except EnlaceError as exc:
        report.status, report.detail = "failed", f"helper {helper}'s sum cannot be used: {exc}"
        return _finish(runtime, report, started)
    for country in sorted(set(shares) - set(summed)):
        report.missing[country] = "the helper holds no share of this member"
    report.contributors = summed
    report.table = from_sums(
        query.dimensions, cells, contributors=summed, missing=countries, rule=rule
    )
    report.status = "summed"
    report.detail = f"{len(summed)} member(s) summed; {len(report.missing)} missing"
    result = {
        "dimensions": list(query.dimensions),
        "cells": [[list(k), v, n] for k, (v, n) in cells.items() if v or n],
        "missing": sorted(report.missing),
    }
    return _finish(runtime, report, started, result)


def _finish(
    runtime: NodeRuntime,
    report: RoundReport,
    started: float,
    result: dict[str, Any] | None = None,
) -> RoundReport:
    report.seconds = time.monotonic() - started
    runtime.store.secretariat.finish_round(
        report.round_id,
        status=report.status,
        members=report.contributors,
        detail=report.detail,
        result=result,
    )
    log.info("round %s: %s (%s)", report.round_id, report.status, report.detail)
    return report
