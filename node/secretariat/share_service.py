"""``enlace.v1.ShareService``: the member and helper sides of regional-only tables.

Flow of one round (the ST's side is :mod:`node.secretariat.rounds`)::

    ST ──Contribute──▶ member ──SubmitShare(h)──▶ helper        (member keeps nothing new)
    ST ◀──── s ─────── member                                     (s: uniform, says nothing)
    ST ──GetSum(members whose s it holds)──▶ helper ──Σh──▶ ST    (ST adds Σs: the regional sum)

Service semantics (what authorises each call):
* ``Contribute`` is a statistics release by the member to the ST, so it passes the member's
  agreement rule as service ``stats`` (dataset, every dimension and filter of the matrix, the
  purpose in the signed header, the quota). The ST receives only its share.
* ``SubmitShare`` is accepted by a ``helper`` node from senders with the ``member`` role;
  ``GetSum`` from the ``secretariat`` role only, and only for the shares addressed to it.

Invariants:
* A member's contribution to a round is fixed the first time it is made: asked again, it
  returns the same ST share and re-sends the same helper share.
* Every share of a round is bound to one (requester, matrix, canonical period, cell layout):
  the member signs them in ``SubmitShare``; the helper refuses a share whose binding differs
  from a share it already holds for the round, and refuses to sum a round whose shares do not
  all agree. A member refuses a round id it already contributed to with other parameters.
  Periods are keyed by :attr:`~node.stats.query.Period.canonical`, never by their spelling.
* The helper sums at least :data:`MIN_SHARES` members, and releases a sum only when no linear
  combination with the sums it released before to the same requester (any matrix, any
  overlapping period) isolates fewer than :data:`MIN_SHARES` members
  (:mod:`node.secretariat.differencing` states the rule).
* The helper never sees the ST's shares; the ST never sees a member's helper share.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import threading
from collections.abc import Callable
from typing import Any

from crypto.envelope import format_time
from enlace.v1 import secretariat_pb2
from node.client import PeerClient
from node.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    PeerError,
    UnavailableError,
)
from node.runtime import NodeRuntime
from node.secretariat.differencing import isolation, released
from node.secretariat.shares import add as add_shares
from node.secretariat.shares import cell_layout, decode, encode, split, to_vector
from node.server.pipeline import Ask, CallContext, MethodSpec
from node.stats.compute import count_cells
from node.stats.matrices import matrix
from node.stats.query import StatsQuery, build_query, parse_period
from node.trust.directory import DirectoryLookupError
from node.trust.member import MemberDescriptor

SERVICE = "enlace.v1.ShareService"
CONTRIBUTE = f"/{SERVICE}/Contribute"
SUBMIT = f"/{SERVICE}/SubmitShare"
GET_SUM = f"/{SERVICE}/GetSum"
MIN_SHARES = 3
_ROUND = re.compile(r"^[A-Za-z0-9._:-]{8,80}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_sum_lock = threading.Lock()


def _round_id(value: str) -> str:
    if not _ROUND.fullmatch(value):
        raise InvalidArgumentError("8 to 80 of A-Z a-z 0-9 . _ : -", field="round_id")
    return value


def matrix_query(matrix_id: str, period: str) -> StatsQuery:
    definition = matrix(matrix_id)
    return build_query(
        dataset="encounters",
        measure=definition.measure,
        dimensions=definition.dimensions,
        period=period,
        filters={k: list(v) for k, v in definition.filters.items()},
        margins=False,
        matrix=definition.id,
    )


def _describe_contribute(request: secretariat_pb2.ContributeRequest) -> Ask:
    query = matrix_query(request.matrix, request.period)
    return Ask(
        dataset="encounters",
        dimensions=frozenset(query.dimensions) | frozenset(query.filters),
        units=1,
    )


def _named_member(
    runtime: NodeRuntime, at: dt.datetime, country: str, field: str
) -> MemberDescriptor:
    """The directory member a body field names; an unknown one is the caller's bad argument.

    (``Directory.member`` raises an authentication error, meant for who signed a request; the
    caller here authenticated fine, only a field of its body is wrong.)
    """
    try:
        return runtime.directory.current(at).member(country)
    except DirectoryLookupError:
        raise InvalidArgumentError(
            f"{country!r} is not a member of the directory", field=field
        ) from None


def _helper_of(runtime: NodeRuntime, helper: str) -> str:
    member = _named_member(runtime, runtime.clock.now(), helper, "helper")
    if not member.has_role("helper"):
        raise InvalidArgumentError(
            f"{helper} does not hold the helper role in the directory", field="helper"
        )
    return member.country


def contribute(
    ctx: CallContext, request: secretariat_pb2.ContributeRequest
) -> secretariat_pb2.ContributeResponse:
    """Member side: split this node's raw table and hand each share to its holder."""
    runtime = ctx.runtime
    round_id = _round_id(request.round_id)
    helper = _helper_of(runtime, request.helper)
    query = matrix_query(request.matrix, request.period)
    layout = cell_layout(query.dimensions, query.period)
    if request.layout_sha256 != layout.sha256 or request.cells != layout.cells:
        raise FailedPreconditionError(
            "the cell layout differs from this node's",
            hint="both sides must run the same code lists",
        )
    store = runtime.store.secretariat
    made = store.contribution(round_id, ctx.peer.country)
    if made is None:
        vector = to_vector(layout, count_cells(runtime.store.engine, query).cells)
        st_share, helper_share = split(vector, os.urandom(32))
        made = store.save_contribution(
            {
                "round_id": round_id,
                "requester": ctx.peer.country,
                "matrix": query.matrix,
                "period": query.period.canonical,
                "helper": helper,
                "layout_sha256": layout.sha256,
                "st_share": encode(st_share),
                "helper_share": encode(helper_share),
                "as_of": runtime.store.records.data_as_of(),
                "created_at": ctx.now,
            }
        )
    elif _binding(made) != (query.matrix, query.period.canonical, helper, layout.sha256):
        raise InvalidArgumentError(
            f"this node already contributed to round {round_id} for {made['matrix']} "
            f"{made['period']} through {made['helper']}; a round id fixes the table, period "
            "and helper",
            field="round_id",
            hint="open a new round (a new round id) for another table, period or helper",
        )
    submit = secretariat_pb2.SubmitShareRequest(
        round_id=round_id,
        requester=ctx.peer.country,
        matrix=query.matrix,
        period=query.period.canonical,
        layout_sha256=layout.sha256,
        cells=layout.cells,
        share=made["helper_share"],
    )
    try:
        with PeerClient(runtime, helper, timeout=10.0) as client:
            receipt = client.call(
                SUBMIT, submit, secretariat_pb2.SubmitShareResponse, purpose=ctx.header.purpose
            ).message.receipt
    except PeerError as exc:
        raise UnavailableError(
            f"the helper {helper} did not take this node's share: {exc.message}",
            hint="this member does not contribute to the round; the ST may retry later",
        ) from None
    ctx.audit_extra.update(round=round_id, matrix=query.matrix, period=query.period.canonical)
    as_of = made["as_of"]
    return secretariat_pb2.ContributeResponse(
        round_id=round_id,
        st_share=made["st_share"],
        as_of=format_time(as_of) if as_of else "",
        helper_receipt=receipt,
    )


def submit_share(
    ctx: CallContext, request: secretariat_pb2.SubmitShareRequest
) -> secretariat_pb2.SubmitShareResponse:
    """Helper side: hold one member's share of a round for the secretariat named in it."""
    runtime = ctx.runtime
    round_id = _round_id(request.round_id)
    requester = _named_member(runtime, ctx.now, request.requester, "requester")
    if not requester.has_role("secretariat"):
        raise InvalidArgumentError(f"{request.requester} is not the secretariat", field="requester")
    query = matrix_query(request.matrix, request.period)
    layout = cell_layout(query.dimensions, query.period)
    if request.layout_sha256 != layout.sha256 or request.cells != layout.cells:
        raise FailedPreconditionError("the cell layout differs from this node's")
    decode(request.share, 2 * layout.cells)  # refuses a share of the wrong size
    store = runtime.store.secretariat
    row = {
        "round_id": round_id,
        "member": ctx.peer.country,
        "requester": requester.country,
        "matrix": query.matrix,
        "period": query.period.canonical,
        "layout_sha256": layout.sha256,
        "share": bytes(request.share),
        "received_at": ctx.now,
    }
    for other in store.helper_shares_of(round_id):
        if other["member"] != ctx.peer.country and _share_binding(other) != _share_binding(row):
            raise FailedPreconditionError(
                f"round {round_id} holds shares for {_describe(other)}; this share is for "
                f"{_describe(row)}",
                hint="every share of a round must be for the same table, period and "
                "secretariat; open a new round",
            )
    if not store.add_helper_share(row):
        held = store.helper_share(round_id, ctx.peer.country)
        if held is None or bytes(held["share"]) != bytes(request.share):
            raise FailedPreconditionError(
                f"{ctx.peer.country} already gave a different share for round {round_id}",
                hint="a round fixes each member's contribution; open a new round",
            )
    digest = hashlib.sha256(f"{round_id}|{ctx.peer.country}|".encode() + request.share)
    ctx.audit_extra.update(round=round_id, matrix=query.matrix)
    return secretariat_pb2.SubmitShareResponse(receipt=digest.hexdigest()[:32])


def _binding(made: dict[str, Any]) -> tuple[str, str, str, str]:
    """What a member's contribution to a round is for: matrix, canonical period, helper and
    cell layout."""
    period = parse_period(made["period"]).canonical  # rows written before canonical keys
    return (made["matrix"], period, made["helper"], made["layout_sha256"])


def _share_binding(share: dict[str, Any]) -> tuple[str, str, str, str]:
    """What a helper share is for: every share of one round must agree on it."""
    period = parse_period(share["period"]).canonical
    return (share["requester"], share["matrix"], period, share["layout_sha256"])


def _describe(share: dict[str, Any]) -> str:
    return f"{share['matrix']} {share['period']} (requester {share['requester']})"


def _differencing_check(
    round_id: str, members: list[str], period: str
) -> Callable[[list[dict[str, Any]]], None]:
    wanted = released(round_id, members, period)

    def check(earlier: list[dict[str, Any]]) -> None:
        before = [
            released(e["round_id"], e["members"], e["period"])
            for e in earlier
            if e["round_id"] != round_id
        ]
        found = isolation(wanted, before, MIN_SHARES)
        if found is not None:
            raise FailedPreconditionError(
                f"this sum of {', '.join(members)} for {period} would differ from the sum(s) "
                f"of round {', '.join(found.earlier) or round_id} so that "
                f"{', '.join(found.group)} could be isolated ({found.month}) by difference",
                hint=f"sum the same members as the earlier round for an overlapping period, "
                f"or a set differing from it by at least {MIN_SHARES} members",
            )

    return check


def get_sum(
    ctx: CallContext, request: secretariat_pb2.GetSumRequest
) -> secretariat_pb2.GetSumResponse:
    """Helper side: the sum of the shares of the asked members that it holds, or a refusal."""
    round_id = _round_id(request.round_id)
    every = ctx.runtime.store.secretariat.helper_shares_of(round_id)
    bindings = {_share_binding(s) for s in every}
    if len(bindings) > 1:
        raise FailedPreconditionError(
            f"round {round_id} mixes shares made for different tables or periods: "
            + "; ".join(sorted(f"{m} {p}" for _r, m, p, _l in bindings))
            + "; no sum is released for it",
            hint="every member of a round must contribute the same table and period; "
            "open a new round",
        )
    held = [
        s
        for s in every
        if s["requester"] == ctx.peer.country and s["member"] in set(request.members)
    ]
    if not held:
        raise FailedPreconditionError(f"no share held for round {round_id}")
    layouts = {s["layout_sha256"] for s in held}
    if layouts != {request.layout_sha256}:
        raise FailedPreconditionError("the shares were made for another cell layout")
    if len(held) < MIN_SHARES:
        raise FailedPreconditionError(
            f"only {len(held)} member share(s) for round {round_id}; at least {MIN_SHARES} "
            "are needed before any sum is released",
            hint="retry when more members have contributed",
        )
    members = sorted(s["member"] for s in held)
    first = held[0]
    first_query = matrix_query(first["matrix"], first["period"])
    layout = cell_layout(first_query.dimensions, first_query.period)
    words = 2 * layout.cells
    total = add_shares([decode(bytes(s["share"]), words) for s in held], words)
    period = first_query.period.canonical
    with _sum_lock:
        ctx.runtime.store.secretariat.record_sum(
            {
                "round_id": round_id,
                "requester": ctx.peer.country,
                "matrix": first["matrix"],
                "period": period,
                "members": members,
                "answered_at": ctx.now,
            },
            _differencing_check(round_id, members, period),
        )
    ctx.audit_extra.update(round=round_id, members=",".join(members))
    return secretariat_pb2.GetSumResponse(round_id=round_id, members=members, sum=encode(total))


def member_specs() -> list[MethodSpec]:
    return [
        MethodSpec(
            CONTRIBUTE,
            "stats",
            secretariat_pb2.ContributeRequest,
            contribute,
            _describe_contribute,
        )
    ]


def helper_specs() -> list[MethodSpec]:
    return [
        MethodSpec(SUBMIT, "shares", secretariat_pb2.SubmitShareRequest, submit_share),
        MethodSpec(GET_SUM, "share-sums", secretariat_pb2.GetSumRequest, get_sum),
    ]
