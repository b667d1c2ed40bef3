"""Property: evaluate() allows exactly what some in-force grant covers (independent oracle)."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto.errors import KeyError_
from crypto.signing import SigningKey
from policies.agreement import Agreement, Grant
from policies.decision import Request, evaluate
from policies.diff import diff_agreements
from policies.errors import Denied
from policies.explain import explain
from policies.signatures import (
    Revocation,
    VerifiedAgreement,
    VerifiedRevocation,
    sign_agreement,
    sign_revocation,
    verify_agreement,
    verify_revocation,
)

COUNTRIES = ("PAN", "CRI", "MEX")
SERVICES = ("stats", "match", "biometric", "followup", "directory")
DATASETS = ("encounters", "matrices", "document_alerts")
PURPOSES = ("quarterly_matrices", "identity_verification")
DIMENSIONS = ("sex", "nationality", "age_group")
ATTRIBUTES = ("first_seen_quarter", "event_type")
BASE = datetime(2026, 1, 1, tzinfo=UTC)
KEYS = {c: SigningKey(hashlib.sha256(f"property {c}".encode()).digest()) for c in COUNTRIES}


def resolver(country: str, key_id: str, at: datetime) -> bytes:
    key = KEYS[country]
    if key.key_id != key_id:
        raise KeyError_("unknown key")
    return key.public_key


def day(n: int) -> datetime:
    return BASE + timedelta(days=n)


@functools.cache
def subset(values: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
    if not values:
        return st.just([])
    return st.lists(st.sampled_from(values), unique=True, max_size=len(values))


@functools.cache
def some(values: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), unique=True, min_size=1, max_size=len(values))


@st.composite
def grants(draw: st.DrawFn, parties: tuple[str, str]) -> dict[str, Any]:
    holder = draw(st.sampled_from(parties))
    service = draw(st.sampled_from(SERVICES))
    g: dict[str, Any] = {
        "holder": holder,
        "requester": parties[1] if holder == parties[0] else parties[0],
        "service": service,
        # Mostly non-empty, sometimes empty (an empty list must allow nothing).
        "datasets": draw(subset(DATASETS))
        if draw(st.integers(0, 9)) == 0
        else draw(some(DATASETS)),
        "purposes": draw(subset(PURPOSES))
        if draw(st.integers(0, 9)) == 0
        else draw(some(PURPOSES)),
        "quotas": {"per_day": None, "per_quarter": None},
    }
    if service == "stats":
        g["dimensions"] = draw(subset(DIMENSIONS))
        g["disclosure"] = {"profile": "standard"}
    if service == "followup":
        g["attributes"] = draw(subset(ATTRIBUTES))
    return g


@st.composite
def agreements(draw: st.DrawFn) -> Agreement:
    parties = tuple(draw(st.permutations(COUNTRIES))[:2])
    start = draw(st.integers(0, 40))
    min_grants = 0 if draw(st.integers(0, 9)) == 0 else 1  # sometimes no grant at all
    return Agreement.from_document(
        {
            "format": "enlace-agreement/1",
            "id": draw(st.sampled_from(("A", "B", "C"))),
            "version": draw(st.integers(1, 3)),
            "title": draw(st.sampled_from(("one text", "another text"))),
            "parties": list(parties),
            "valid_from": day(start).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "valid_until": day(start + draw(st.integers(1, 60))).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "grants": draw(st.lists(grants(parties), min_size=min_grants, max_size=4)),
        }
    )


@st.composite
def requests(draw: st.DrawFn) -> Request:
    return Request(
        requester=draw(st.sampled_from(COUNTRIES)),
        holder=draw(st.sampled_from(COUNTRIES)),
        service=draw(st.sampled_from(SERVICES)),
        dataset=draw(st.sampled_from((*DATASETS, "persons_of_interest"))),
        purpose=draw(st.sampled_from((*PURPOSES, "prosecution"))),
        dimensions=frozenset(draw(subset((*DIMENSIONS, "border_post")))),
        attributes=frozenset(draw(subset((*ATTRIBUTES, "full_name")))),
        agreement_id=draw(st.sampled_from((None, "A", "B", "D"))),
    )


@dataclass(frozen=True)
class World:
    agreements: list[VerifiedAgreement]
    revocations: list[VerifiedRevocation]
    now: datetime


@st.composite
def derived_requests(draw: st.DrawFn, agreement: Agreement) -> Request:
    """A request built from one of the agreement's grants, then perhaps pushed off it."""
    if not agreement.grants:
        return draw(requests())
    g = draw(st.sampled_from(agreement.grants))
    request = Request(
        requester=g.requester,
        holder=g.holder,
        service=g.service,
        dataset=draw(st.sampled_from(g.datasets or DATASETS)),
        purpose=draw(st.sampled_from(g.purposes or PURPOSES)),
        dimensions=frozenset(draw(subset(g.dimensions))),
        attributes=frozenset(draw(subset(g.attributes))),
        agreement_id=draw(st.sampled_from((None, agreement.id))),
    )
    push = draw(st.sampled_from(("none",) * 5 + ("dataset", "dimension", "id", "direction")))
    if push == "dataset":
        request = replace(request, dataset="persons_of_interest")
    elif push == "dimension":
        request = replace(request, dimensions=request.dimensions | {"border_post"})
    elif push == "id":
        request = replace(request, agreement_id="B" if agreement.id == "A" else "A")
    elif push == "direction":
        request = replace(request, requester=g.holder, holder=g.requester)
    return request


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[World, Request]:
    drawn = draw(st.lists(agreements(), min_size=1, max_size=4))
    verified = []
    for agreement in drawn:
        signed = agreement
        for party in agreement.parties:
            signed = sign_agreement(signed, party, KEYS[party])
        verified.append(verify_agreement(signed, resolver, BASE))
    target = draw(st.sampled_from(drawn)) if draw(st.integers(0, 4)) else None
    if target is None:
        request = draw(requests())
        now = day(0) + timedelta(hours=draw(st.integers(0, 100 * 24)))
    else:
        request = draw(derived_requests(target))
        span = int((target.valid_until - target.valid_from).total_seconds()) // 3600
        now = target.valid_from + timedelta(hours=draw(st.integers(-24, span + 24)))
    revocations = []
    for v in verified:
        if draw(st.integers(0, 3)) == 0:
            by = draw(st.sampled_from(v.agreement.parties))
            at = now + timedelta(minutes=draw(st.integers(-3 * 24 * 60, 3 * 24 * 60)))
            rev = Revocation.for_agreement(v.agreement, by, at, "r")
            signed_rev = sign_revocation(rev, KEYS[by])
            revocations.append(verify_revocation(signed_rev, v.agreement, resolver, BASE))
    return World(verified, revocations, now), request


# --- the oracle: written from the specification, sharing no code with policies.decision -----


def in_force(a: Agreement, world: World) -> bool:
    if not (a.valid_from <= world.now < a.valid_until):
        return False
    for r in world.revocations:
        if r.revocation.agreement_hash == a.hash and r.revocation.at <= world.now:
            return False
    for other in world.agreements:
        o = other.agreement
        if o.id != a.id or set(o.parties) != set(a.parties) or o.hash == a.hash:
            continue
        if o.version == a.version:
            return False  # two texts claim the same version
        if o.version > a.version and o.valid_from <= world.now:
            return False  # superseded
    return True


def grant_covers(g: Grant, request: Request) -> bool:
    return (
        g.holder == request.holder
        and g.requester == request.requester
        and g.service == request.service
        and request.dataset in g.datasets
        and request.purpose in g.purposes
        and request.dimensions <= set(g.dimensions)
        and request.attributes <= set(g.attributes)
    )


def covers(a: Agreement, request: Request) -> bool:
    return any(grant_covers(g, request) for g in a.grants)


def oracle_allows(request: Request, world: World) -> bool:
    return any(
        set(v.agreement.parties) == {request.requester, request.holder}
        and request.requester != request.holder
        and (request.agreement_id is None or v.id == request.agreement_id)
        and in_force(v.agreement, world)
        and covers(v.agreement, request)
        for v in world.agreements
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_evaluate_allows_exactly_what_an_in_force_grant_covers(
    scenario: tuple[World, Request],
) -> None:
    world, request = scenario
    expected = oracle_allows(request, world)
    try:
        decision = evaluate(request, world.agreements, world.revocations, world.now)
    except Denied as denied:
        assert not expected, "denied a request that an in-force grant covers"
        assert denied.reasons
        return
    assert expected, "allowed a request that no in-force grant covers"
    cited = [v for v in world.agreements if v.hash == decision.agreement_hash]
    assert cited and in_force(cited[0].agreement, world)
    assert cited[0].agreement.grants[decision.grant_index] == decision.grant
    assert grant_covers(decision.grant, request)
    if request.agreement_id is not None:
        assert decision.agreement_id == request.agreement_id


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_explanation_agrees_with_the_decision(scenario: tuple[World, Request]) -> None:
    world, request = scenario
    explanation = explain(request, world.agreements, world.revocations, world.now)
    assert explanation.allowed == oracle_allows(request, world)
    assert explanation.lines[0].startswith("ALLOWED" if explanation.allowed else "DENIED")


@settings(max_examples=60, deadline=None)
@given(old=agreements(), new=agreements())
def test_diff_is_empty_exactly_when_the_signed_bytes_are_equal(
    old: Agreement, new: Agreement
) -> None:
    sentences = diff_agreements(old, new)
    assert (sentences == []) == (old.canonical_bytes() == new.canonical_bytes())
    assert diff_agreements(old, old) == []


@settings(max_examples=60, deadline=None)
@given(agreement=agreements(), data=st.data())
def test_canonical_bytes_ignore_key_and_set_order(
    agreement: Agreement, data: st.DataObject
) -> None:
    sets = {"datasets", "purposes", "dimensions", "attributes"}

    def shuffled(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            keys = data.draw(st.permutations(list(value)))
            return {k: shuffled(value[k], k) for k in keys}
        if key in sets:
            return data.draw(st.permutations(value))
        if isinstance(value, list):
            return [shuffled(v) for v in value]
        return value

    again = Agreement.from_document(shuffled(agreement.to_document()))
    assert again.canonical_bytes() == agreement.canonical_bytes()
