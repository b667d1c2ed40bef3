"""Hostile peers against every method the nodes serve, over real gRPC with mutual TLS.

Why: DESIGN §2-§4 promise deny by default and fail closed. Each attack of
:data:`hostile.toolkit.ATTACKS` is sent to every served method (table-driven: a new service
is attacked as soon as the factory registers it), every injection string to every text field
of every request message, and the requests a curious or greedy member would try: outside or
across agreements, follow-ups without a hit, enumeration against the quotas.

Invariants checked: no attack is answered OK, INTERNAL or UNKNOWN; every refusal the pipeline
makes is in the audit chain, which still verifies; the store holds what it held; the node keeps
serving. One federation per backend serves the whole module (set-up is the slow part).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from google.protobuf.message import Message

from crypto.envelope import MAX_HEADER_BYTES, sha256_hex
from crypto.oprf import hash_to_group
from enlace.v1 import biometric_pb2, match_pb2, node_pb2, stats_pb2
from hostile.toolkit import (
    AGGREGATE,
    AGREEMENT_ID,
    ATTACKS,
    BACKENDS,
    HELPER,
    INJECTIONS,
    MATCH_PURPOSE,
    PING,
    REFUSALS,
    ROWS,
    STATS_PURPOSE,
    Aim,
    Attack,
    Federation,
    Row,
    backend_federation,
    deliver,
    furnish,
    hostile_agreement,
    injected,
    install,
    launch,
    row_for,
    text_paths,
    until_refused,
    valid,
)
from node.audit import verify_chain
from node.server.pipeline import MethodSpec

COUNTRIES = ("PAN", "CRI", "HND", "GTM")  # GTM has no agreement with anyone
SERVED = ("PAN", "CRM", HELPER)
#: Body fields that name a country: a non-member there is the caller's bad argument
#: (INVALID_ARGUMENT), never an authentication failure of a caller that signed correctly.
COUNTRY_FIELDS = (
    ("/enlace.v1.ShareService/Contribute", "helper"),
    ("/enlace.v1.ShareService/SubmitShare", "requester"),
)
QUOTA_ID, EXPIRED_ID = "HOSTILE-PAN-HND-QUOTA", "HOSTILE-PAN-HND-EXPIRED"
STATS_QUOTA = 5


@dataclass(frozen=True)
class Target:
    callee: str
    spec: MethodSpec
    row: Row


@pytest.fixture(scope="module", params=BACKENDS)
def fed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    with backend_federation(request, tmp_path_factory, "hostile", COUNTRIES, helper=HELPER) as (
        live,
        root,
    ):
        furnish(live, root / "data")
        install(
            live,
            hostile_agreement("PAN", "HND", live.now(), agreement_id=QUOTA_ID, per_day=STATS_QUOTA),
        )
        past = live.now() - dt.timedelta(days=400)
        install(live, hostile_agreement("PAN", "HND", past, agreement_id=EXPIRED_ID))
        for node in SERVED:
            live.serve(node)
        yield live


def targets(fed: Federation) -> list[Target]:
    """Every method served, once: by the node its row names when that node serves it."""
    out: list[Target] = []
    for name in sorted({n for table in fed.methods.values() for n in table}):
        wanted = ROWS[name].callee if name in ROWS else "PAN"
        callee = (
            wanted
            if name in fed.methods.get(wanted, {})
            else next(c for c, table in fed.methods.items() if name in table)
        )
        spec = fed.methods[callee][name]
        out.append(Target(callee, spec, row_for(spec)))
    return out


def aim_at(fed: Federation, target: Target, body: Message | None = None, **header: str) -> Aim:
    caller = target.row.caller if target.row.caller != target.callee else "CRI"
    client = fed.client(caller, target.callee)
    message = body if body is not None else target.row.body(client)
    return Aim(
        client,
        target.spec.full_name,
        message.SerializeToString(),
        purpose=header.get("purpose", target.row.purpose),
        agreement=header.get("agreement", target.row.agreement),
        streaming=target.spec.streaming,
        accomplice=fed.runtimes["HND"],
    )


def audit_head(fed: Federation, country: str) -> int:
    return fed.runtimes[country].store.audit_head()[0]


def still_serving(fed: Federation) -> None:
    with fed.client("CRI", "PAN") as client:
        reply = client.call(PING, node_pb2.PingRequest(payload=b"ok"), node_pb2.PingResponse)
    assert reply.message.payload == b"ok"


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_is_refused_on_every_method_and_audited(fed: Federation, attack: Attack) -> None:
    wrong: list[str] = []
    all_targets = targets(fed)
    assert {"/enlace.v1.StatsService/Aggregate", "/enlace.v1.MatchService/SyncFilter"} <= {
        t.spec.full_name for t in all_targets
    }
    if not attack.audited:  # refused by gRPC's size limit, the same for every method
        services = {t.spec.full_name.rsplit("/", 1)[0]: t for t in all_targets}
        all_targets = list(services.values())
    for target in all_targets:
        aim = aim_at(fed, target)
        before = audit_head(fed, target.callee)
        with aim.client:
            delivery = launch(aim, attack)
        if delivery.status not in attack.expect:
            wrong.append(f"{target.spec.full_name}: {delivery.status} {delivery.details[:150]}")
            continue
        if attack.reason not in delivery.details:
            wrong.append(
                f"{target.spec.full_name}: refused for another reason than "
                f"{attack.reason!r}: {delivery.details[:200]}"
            )
            continue
        store = fed.runtimes[target.callee].store
        head = store.audit_head()[0]
        if not attack.audited:
            continue
        # The callee's own entry for this request, found by its digest: a handler may have
        # started outbound work of its own (EmergencyUpdate starts a pull), and the ST's
        # calendar runs pulls and share rounds, whose entries land in between or after. A
        # replay's first delivery is audited too (allowed): the refusal is the last entry.
        assert delivery.request is not None
        digest = sha256_hex(delivery.request.header[:MAX_HEADER_BYTES])
        appended = [store.audit_entry(seq) for seq in range(before + 1, head + 1)]
        mine = [
            e
            for e in appended
            if e is not None
            and e.record.direction == "inbound"
            and e.record.request_digest == digest
        ]
        assert head > before and mine, f"{target.spec.full_name}: no audit entry for the request"
        last = mine[-1]
        if (last.record.method, last.record.status, last.record.decision) != (
            target.spec.full_name,
            delivery.status,
            "denied",
        ):
            wrong.append(f"{target.spec.full_name}: not audited as refused ({last.record})")
    assert not wrong, f"{attack.name}:\n" + "\n".join(wrong)
    for country in SERVED:
        verify_chain(fed.runtimes[country].store.iter_audit())
    still_serving(fed)


def _record_counts(fed: Federation) -> dict[str, int]:
    return dict(fed.runtimes["PAN"].store.records.counts())


@pytest.mark.parametrize("name", list(INJECTIONS))
def test_injection_in_every_text_field_is_answered_and_the_store_is_intact(
    fed: Federation, name: str
) -> None:
    value = INJECTIONS[name]
    counts = _record_counts(fed)
    wrong: list[str] = []
    calls = 0
    for target in targets(fed):
        aim = aim_at(fed, target)
        base = target.spec.request_type.FromString(aim.body)
        variants: list[tuple[str, Aim]] = [
            (".".join(path), aim_at(fed, target, injected(base, path, value)))
            for path in text_paths(target.spec.request_type.DESCRIPTOR)
        ]
        variants += [
            ("header.purpose", aim_at(fed, target, base, purpose=value)),
            ("header.agreement", aim_at(fed, target, base, agreement=value)),
        ]
        for where, variant in variants:
            with variant.client as client:
                delivery = deliver(
                    client.channel, valid(variant), variant.method, streaming=variant.streaming
                )
            calls += 1
            if delivery.status not in REFUSALS | {"OK"}:
                wrong.append(
                    f"{target.spec.full_name} {where}: {delivery.status} {delivery.details[:200]}"
                )
        aim.client.close()
    assert calls > 40
    assert not wrong, "\n".join(wrong)
    for country in SERVED:
        store = fed.runtimes[country].store
        assert store.audit_count() > 0
        verify_chain(store.iter_audit())
    assert _record_counts(fed) == counts
    still_serving(fed)


def _status(fed: Federation, caller: str, method: str, body: Message, **header: str) -> str:
    streaming = fed.methods["PAN"][method].streaming
    with fed.client(caller, "PAN") as client:
        aim = Aim(
            client,
            method,
            body.SerializeToString(),
            header.get("purpose", ""),
            header.get("agreement", ""),
            streaming,
        )
        return deliver(client.channel, valid(aim), method, streaming=streaming).status


STATS = stats_pb2.AggregateRequest(dataset="encounters", dimensions=["nationality"], period="2023")
EVALUATE = "/enlace.v1.MatchService/Evaluate"
SYNC = "/enlace.v1.MatchService/SyncFilter"


def _evaluate(count: int) -> match_pb2.EvaluateRequest:
    elements = [hash_to_group(os.urandom(8)) for _ in range(count)]
    return match_pb2.EvaluateRequest(dataset="travel_documents", epoch=1, blinded_elements=elements)


@pytest.mark.parametrize(
    ("caller", "method", "body", "header", "expected"),
    [
        ("GTM", AGGREGATE, STATS, {"purpose": STATS_PURPOSE}, "PERMISSION_DENIED"),
        (
            "CRI",
            AGGREGATE,
            STATS,
            {"purpose": STATS_PURPOSE, "agreement": QUOTA_ID},
            "PERMISSION_DENIED",
        ),
        ("CRI", AGGREGATE, STATS, {"purpose": "smuggling_investigation"}, "PERMISSION_DENIED"),
        ("CRI", AGGREGATE, STATS, {}, "INVALID_ARGUMENT"),
        (
            "HND",
            AGGREGATE,
            STATS,
            {"purpose": STATS_PURPOSE, "agreement": EXPIRED_ID},
            "PERMISSION_DENIED",
        ),
        (
            "HND",
            AGGREGATE,
            STATS,
            {"purpose": STATS_PURPOSE, "agreement": AGREEMENT_ID},
            "PERMISSION_DENIED",
        ),
        ("GTM", EVALUATE, _evaluate(1), {"purpose": MATCH_PURPOSE}, "PERMISSION_DENIED"),
        ("CRI", EVALUATE, _evaluate(1), {"purpose": STATS_PURPOSE}, "PERMISSION_DENIED"),
        ("CRI", EVALUATE, _evaluate(4097), {"purpose": MATCH_PURPOSE}, "INVALID_ARGUMENT"),
        (
            "CRI",
            AGGREGATE,
            stats_pb2.AggregateRequest(
                dataset="encounters", period="2023", dimensions=["person_id"]
            ),
            {"purpose": STATS_PURPOSE},
            "INVALID_ARGUMENT",
        ),
    ],
    ids=[
        "no-agreement",
        "another-pairs-agreement",
        "purpose-not-granted",
        "no-purpose",
        "expired-agreement",
        "agreement-of-other-parties",
        "match-without-agreement",
        "match-under-stats-purpose",
        "batch-over-limit",
        "dimension-not-in-code-lists",
    ],
)
def test_requests_outside_or_across_agreements_are_refused(
    fed: Federation, caller: str, method: str, body: Message, header: dict[str, str], expected: str
) -> None:
    assert _status(fed, caller, method, body, **header) == expected


def test_followups_without_a_hit_are_refused(fed: Federation) -> None:
    followup = "/enlace.v1.MatchService/FollowUp"
    random_output = match_pb2.FollowUpRequest(
        dataset="travel_documents",
        epoch=1,
        output=os.urandom(64),
        case_reference="CASE-9",
        attributes=["first_seen_quarter"],
    )
    made_up_id = match_pb2.FollowUpRequest(
        dataset="travel_documents",
        followup_id=os.urandom(16).hex(),
        attributes=["first_seen_quarter"],
    )
    reference = biometric_pb2.BiometricFollowUpRequest(
        hit_reference=os.urandom(20).hex(), case_reference="CASE-9", attributes=["nationality"]
    )
    header = {"purpose": MATCH_PURPOSE, "agreement": AGREEMENT_ID}
    assert _status(fed, "CRI", followup, random_output, **header) == "FAILED_PRECONDITION"
    assert _status(fed, "CRI", followup, made_up_id, **header) == "NOT_FOUND"
    bio = "/enlace.v1.BiometricService/FollowUp"
    assert _status(fed, "CRI", bio, reference, **header) == "FAILED_PRECONDITION"
    assert _status(fed, "GTM", followup, random_output, purpose=MATCH_PURPOSE) == (
        "PERMISSION_DENIED"
    )
    assert not fed.runtimes["PAN"].store.matching.followups(direction="inbound")


def test_enumeration_stops_at_the_quota(fed: Federation) -> None:
    """HND's agreement allows STATS_QUOTA units a day per grant: queries, or blinded elements."""
    header = {"purpose": STATS_PURPOSE, "agreement": QUOTA_ID}
    stats = until_refused(lambda: _status(fed, "HND", AGGREGATE, STATS, **header), 50)
    assert stats == ["OK"] * STATS_QUOTA + ["RESOURCE_EXHAUSTED"]
    header = {"purpose": MATCH_PURPOSE, "agreement": QUOTA_ID}
    # A batch larger than what is left is refused whole; single elements use up the rest.
    assert _status(fed, "HND", EVALUATE, _evaluate(STATS_QUOTA + 1), **header) == (
        "RESOURCE_EXHAUSTED"
    )
    singles = until_refused(lambda: _status(fed, "HND", EVALUATE, _evaluate(1), **header), 50)
    assert singles == ["OK"] * STATS_QUOTA + ["RESOURCE_EXHAUSTED"]
    # Fetching the filter again (to probe it offline) is metered by the same grant.
    sync = match_pb2.SyncFilterRequest(dataset="travel_documents")
    assert _status(fed, "HND", SYNC, sync, **header) == "RESOURCE_EXHAUSTED"
    # The next UTC day the quota is fresh again (the holder's clock decides).
    fed.clocks["PAN"].advance(dt.timedelta(days=1))
    fed.clocks["HND"].advance(dt.timedelta(days=1))
    try:
        assert (
            _status(fed, "HND", AGGREGATE, STATS, purpose=STATS_PURPOSE, agreement=QUOTA_ID) == "OK"
        )
    finally:
        fed.clocks["PAN"].advance(dt.timedelta(days=-1))
        fed.clocks["HND"].advance(dt.timedelta(days=-1))
    refused = [
        e
        for e in fed.runtimes["PAN"].store.iter_audit()
        if e.record.peer == "HND" and e.record.status == "RESOURCE_EXHAUSTED"
    ]
    assert len(refused) >= 3


@pytest.mark.parametrize(
    "where",
    [pytest.param(w, id=f"{w[0].rsplit('/', 1)[1]}.{w[1]}") for w in COUNTRY_FIELDS],
)
def test_a_non_member_named_in_the_body_is_an_invalid_argument(
    fed: Federation, where: tuple[str, str]
) -> None:
    method, field_name = where
    target = next(t for t in targets(fed) if t.spec.full_name == method)
    aim = aim_at(fed, target)
    base = target.spec.request_type.FromString(aim.body)
    aim.client.close()
    variant = aim_at(fed, target, injected(base, (field_name,), "ZZZ"))
    with variant.client as client:
        delivery = deliver(client.channel, valid(variant), method)
    assert delivery.status == "INVALID_ARGUMENT", delivery.details
    assert delivery.details.startswith(f"{field_name}: "), delivery.details
