"""Every agreement-ruled method refuses on the wire what no in-force agreement grants.

Why: DESIGN §2.3 and §5 — no agreement, an expired or not yet valid one, a purpose not granted,
an exhausted quota: each refused with the right status and a reason. The refusals used to be
tested on the wire mostly for Stats Aggregate, so remapping another service's rule (say
``directory`` to membership) or another method's service (Match GetManifest to ``node``) went
unnoticed. Here the factory's rule of each service and the service of each method are pinned,
and every such method is called by a member in each situation.

Callers of PAN: CRI (the baseline agreement, for purposes it does not grant), HND (expired
agreement only), GTM (an agreement that starts in ten days), SLV (none), BLZ (an unlimited
agreement plus, per method, one allowing one unit a day; the Secretariat CRM for its own
Contribute call).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from google.protobuf.message import Message

from enlace.v1 import biometric_pb2
from hostile.toolkit import (
    AGGREGATE,
    BACKENDS,
    BIO_EPOCH,
    DIRECTORY_PURPOSE,
    HELPER,
    MATCH_PURPOSE,
    ROWS,
    STATS_PURPOSE,
    Aim,
    Federation,
    backend_federation,
    deliver,
    furnish,
    hostile_agreement,
    install,
    valid,
)
from node.biometrics.service import MAX_PROBES
from node.server.agreement_rule import AgreementRule
from node.server.authorize import MembershipRule, ServiceAuthorizer
from node.server.factory import build_server

COUNTRIES = ("PAN", "CRI", "HND", "GTM", "SLV", "BLZ")
MATCH = "/enlace.v1.MatchService"
BIO = "/enlace.v1.BiometricService"
SEARCH = f"{BIO}/Search"
CONTRIBUTE = "/enlace.v1.ShareService/Contribute"
#: Every method whose service the agreement rule authorises, and that service.
AGREEMENT_RULED = {
    AGGREGATE: "stats",
    CONTRIBUTE: "stats",
    f"{MATCH}/GetManifest": "match",
    f"{MATCH}/SyncFilter": "match",
    f"{MATCH}/Evaluate": "match",
    f"{MATCH}/FollowUp": "followup",
    BIO_EPOCH: "biometric",
    SEARCH: "biometric",
    f"{BIO}/FollowUp": "followup",
    "/enlace.v1.ConsularService/ListConsulates": "directory",
}
#: Each service's purpose in the agreements; a request under another granted purpose is a
#: purpose the grant of this service does not name.
PURPOSE = {
    "stats": STATS_PURPOSE,
    "match": MATCH_PURPOSE,
    "biometric": MATCH_PURPOSE,
    "followup": MATCH_PURPOSE,
    "directory": DIRECTORY_PURPOSE,
}
#: What the first metered call answers once allowed: a follow-up without a hit fails after
#: the quota was taken. Every other method answers OK.
FIRST_ALLOWED = {
    f"{MATCH}/FollowUp": "FAILED_PRECONDITION",
    f"{BIO}/FollowUp": "FAILED_PRECONDITION",
}
CAP_ID = "Q1-CAP-Search"
BASELINE = {c: f"HOSTILE-PAN-{c}" for c in (*COUNTRIES, "CRM")}


def meter_caller(method: str) -> str:
    """Who spends the one-a-day quota: the Secretariat for its own call, else BLZ."""
    return "CRM" if method == CONTRIBUTE else "BLZ"


def quota_id(method: str) -> str:
    service, name = method.rsplit("/", 2)[-2:]
    return f"Q1-{service.rsplit('.', 1)[-1]}-{name}"


@pytest.fixture(scope="module", params=BACKENDS)
def fed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    with backend_federation(request, tmp_path_factory, "agreements", COUNTRIES, helper=HELPER) as (
        live,
        root,
    ):
        furnish(live, root / "data")  # PAN holds data; CRI has the baseline agreement
        now = live.now()
        past, future = now - dt.timedelta(days=400), now + dt.timedelta(days=10)
        install(live, hostile_agreement("PAN", "HND", past, agreement_id=BASELINE["HND"]))
        install(live, hostile_agreement("PAN", "GTM", future, agreement_id=BASELINE["GTM"]))
        install(live, hostile_agreement("PAN", "BLZ", now, agreement_id=BASELINE["BLZ"]))
        for method in AGREEMENT_RULED:
            install(
                live,
                hostile_agreement(
                    "PAN", meter_caller(method), now, agreement_id=quota_id(method), per_day=1
                ),
            )
        cap = hostile_agreement("PAN", "BLZ", now, agreement_id=CAP_ID, per_day=1)
        install(live, cap)
        live.serve("PAN")
        live.serve(HELPER)  # Contribute hands PAN's share to the helper
        yield live


def _body(fed: Federation, caller: str, method: str) -> Message:
    """The row's body, or for Search one coded under ``caller``'s own pairwise epoch."""
    with fed.client(caller, "PAN") as client:
        if method != SEARCH:
            return ROWS[method].body(client)
        epoch = client.call(
            BIO_EPOCH,
            biometric_pb2.BiometricEpochRequest(),
            biometric_pb2.BiometricEpochResponse,
            purpose=MATCH_PURPOSE,
            agreement=BASELINE[caller],
        ).message
    return biometric_pb2.BiometricSearchRequest(
        epoch=epoch.epoch, key_id=epoch.key_id, bits=epoch.bits, codes=[bytes(epoch.bits // 8)]
    )


def _call(
    fed: Federation, caller: str, method: str, body: Message, purpose: str, agreement: str = ""
) -> tuple[str, str]:
    streaming = fed.methods["PAN"][method].streaming
    with fed.client(caller, "PAN") as client:
        aim = Aim(client, method, body.SerializeToString(), purpose, agreement, streaming)
        delivery = deliver(client.channel, valid(aim), method, streaming=streaming)
    return delivery.status, delivery.details


def test_the_factory_rules_and_method_services_are_pinned(fed: Federation) -> None:
    """A service remapped to another rule, or a method moved to another service, fails here."""
    server = build_server(fed.runtimes["PAN"], listen="127.0.0.1:0")
    try:
        authorizer = server.pipeline.authorizer
        assert isinstance(authorizer, ServiceAuthorizer)
        rules = authorizer._rules  # the factory's table: no public accessor
    finally:
        server.stop(grace=0)
    for service in set(AGREEMENT_RULED.values()):
        assert type(rules[service]) is AgreementRule, service
    for service in ("node", "agreements"):
        assert type(rules[service]) is MembershipRule, service
    served = fed.methods["PAN"]
    actual = {
        name: spec.service
        for name, spec in served.items()
        if type(rules.get(spec.service)) is AgreementRule
    }
    assert actual == AGREEMENT_RULED


CASES = {
    # caller, agreement cited, reason the refusal must give
    "no-agreement": ("SLV", "", "There is no agreement"),
    "expired": ("HND", BASELINE["HND"], "expired on"),
    "not-yet-valid": ("GTM", BASELINE["GTM"], "not yet in force"),
    "purpose-not-granted": ("CRI", BASELINE["CRI"], "purpose"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("method", list(AGREEMENT_RULED))
def test_every_agreement_ruled_method_refuses_without_an_agreement_in_force(
    fed: Federation, method: str, case: str
) -> None:
    caller, agreement, reason = CASES[case]
    if method == CONTRIBUTE:  # its role rule comes first: these callers are members, not the ST
        reason = "accepts calls from nodes with the secretariat role only"
    purpose = PURPOSE[AGREEMENT_RULED[method]]
    if case == "purpose-not-granted":  # granted to CRI, but for another service
        purpose = MATCH_PURPOSE if purpose != MATCH_PURPOSE else STATS_PURPOSE
    body = _body(fed, "CRI", method)
    before = fed.runtimes["PAN"].store.audit_head()[0]
    status, details = _call(fed, caller, method, body, purpose, agreement)
    assert status == "PERMISSION_DENIED", details
    assert reason in details, details
    entries = [
        fed.runtimes["PAN"].store.audit_entry(seq)
        for seq in range(before + 1, fed.runtimes["PAN"].store.audit_head()[0] + 1)
    ]
    refused = [
        e.record
        for e in entries
        if e is not None and e.record.method == method and e.record.peer == caller
    ]
    assert [(r.status, r.decision) for r in refused] == [("PERMISSION_DENIED", "denied")]


@pytest.mark.parametrize("method", list(AGREEMENT_RULED))
def test_every_agreement_ruled_method_is_metered(fed: Federation, method: str) -> None:
    purpose = PURPOSE[AGREEMENT_RULED[method]]
    caller = meter_caller(method)
    body = _body(fed, caller, method)
    first = _call(fed, caller, method, body, purpose, quota_id(method))
    assert first[0] == FIRST_ALLOWED.get(method, "OK"), first
    status, details = _call(fed, caller, method, body, purpose, quota_id(method))
    assert status == "RESOURCE_EXHAUSTED", details
    assert "quota" in details, details
    # The unlimited agreement of the same pair still answers: the quota is per grant.
    again = _call(fed, caller, method, body, purpose, BASELINE[caller])
    assert again[0] == FIRST_ALLOWED.get(method, "OK"), again


def test_a_biometric_follow_up_for_an_attribute_not_granted_is_denied(fed: Federation) -> None:
    method = f"{BIO}/FollowUp"

    def ask(attribute: str) -> tuple[str, str]:
        body = biometric_pb2.BiometricFollowUpRequest(
            hit_reference="0" * 40, case_reference="CASE-1", attributes=[attribute]
        )
        return _call(fed, "CRI", method, body, MATCH_PURPOSE, BASELINE["CRI"])

    # An identity attribute a biometric follow-up offers, but the grant does not name.
    status, details = ask("last_seen_quarter")
    assert status == "PERMISSION_DENIED", details
    assert "last_seen_quarter" in details, details
    # The control: a granted attribute passes the agreement, and fails only for lack of a hit.
    assert ask("nationality")[0] == "FAILED_PRECONDITION"


def test_a_search_over_the_probe_cap_is_refused_by_field_and_not_metered(
    fed: Federation,
) -> None:
    good = _body(fed, "BLZ", SEARCH)
    assert isinstance(good, biometric_pb2.BiometricSearchRequest)
    over = biometric_pb2.BiometricSearchRequest()
    over.CopyFrom(good)
    del over.codes[:]
    over.codes.extend([bytes(good.bits // 8)] * (MAX_PROBES + 1))
    status, details = _call(fed, "BLZ", SEARCH, over, MATCH_PURPOSE, CAP_ID)
    assert status == "INVALID_ARGUMENT", details
    assert details.startswith("codes: ") and str(MAX_PROBES + 1) in details, details
    # The grant allows one probe a day: it is still there after the refused search.
    assert _call(fed, "BLZ", SEARCH, good, MATCH_PURPOSE, CAP_ID)[0] == "OK"
    assert _call(fed, "BLZ", SEARCH, good, MATCH_PURPOSE, CAP_ID)[0] == "RESOURCE_EXHAUSTED"
