"""Who may call each Secretariat method, pinned on the wire, both ways.

Why: the Secretariat's services are membership-level rules by role (``node/secretariat/
services.py``) or the agreement rule, and every node registers every one of them, so the only
thing keeping a member from sending another member's operator a "Secretariat" notice, or the
ST from filing an emergency update at a member, is the rule the authoriser picks. Here every
method the Secretariat package serves (and Stats ``Aggregate``, the ST's pulls of members'
tables) is called on the ST (CRM), a member (PAN) and the helper (HLP), each by a caller the
rule must refuse — with its status, its reason and a ``denied`` entry in the callee's audit
log — and by one it must admit, answered ``OK``. A second test pins the rule of every method
served on those three nodes, and that every Secretariat method on every node has a row here.

``Contribute`` is narrowed by a rule keyed by the method: a member's own ``stats`` grant used
to pass it, and PAN split its raw table for that member (the helper's requester check alone
stopped the round). The callee's audit entry is found by the request's digest: the ST's
calendar runs pulls and rounds in the background, and their entries interleave with ours.

Callers: PAN, CRI, SLV (role ``member``; PAN→CRI and PAN→CRM agreements grant every service,
SLV has none), CRM (role ``secretariat``), HLP (role ``helper``, no agreement).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from google.protobuf.message import Message
from sqlalchemy import text

from enlace.v1 import secretariat_pb2
from hostile.toolkit import (
    AGGREGATE,
    AGREEMENT_ID,
    BACKENDS,
    DIRECTORY_PURPOSE,
    HELPER,
    ROWS,
    STATS_PURPOSE,
    Aim,
    Federation,
    backend_federation,
    deliver,
    furnish,
    valid,
)
from node.secretariat import services as secretariat_services
from node.secretariat.consular import LIST
from node.secretariat.emergency import EMERGENCY
from node.secretariat.notify import NOTIFY
from node.secretariat.services import RoleRule
from node.secretariat.share_service import CONTRIBUTE, GET_SUM, SUBMIT
from node.server.agreement_rule import AgreementRule
from node.server.authorize import MembershipRule, ServiceAuthorizer

COUNTRIES = ("PAN", "CRI", "SLV")
ST, MEMBER = "CRM", "PAN"
SERVED = (ST, MEMBER, HELPER)
ROLES = {"PAN": "member", "CRI": "member", "SLV": "member", ST: "secretariat", HELPER: "helper"}
#: The agreement each caller cites (PAN is the holder); callers without one cite none.
AGREEMENTS = {"CRI": AGREEMENT_ID, ST: "HOSTILE-PAN-CRM"}
PURPOSES = {CONTRIBUTE: STATS_PURPOSE, AGGREGATE: STATS_PURPOSE, LIST: DIRECTORY_PURPOSE}
#: Share rounds of the tests, one per use, so no test's shares bind another's round.
ROUNDS = {CONTRIBUTE: "R-ROLES-CONTRIBUTE", SUBMIT: "R-ROLES-SUBMIT", GET_SUM: "R-ROLES-SUM"}
SUMMED = ("CRI", "PAN", "SLV")
NO_AGREEMENT = "There is no agreement"
#: PAN→CRM agreements grant the ST, never PAN: the ST holds nothing PAN may ask for.
ONE_WAY = "its grants run in the other direction only"


def role(service: str, wanted: str, caller: str) -> str:
    """The refusal of :class:`RoleRule`, word for word."""
    return (
        f"{service} accepts calls from nodes with the {wanted} role only; "
        f"{caller} holds {ROLES[caller]}"
    )


def absent(service: str, caller: str) -> str:
    """The refusal of a service without a rule on the callee (deny by default)."""
    return f"service {service!r} is not offered to {caller} by this node"


@dataclass(frozen=True)
class Case:
    """``caller`` calls ``method`` on ``callee``: ``reason`` is "" when it must be answered OK,
    else a text of the PERMISSION_DENIED refusal that names the rule."""

    callee: str
    method: str
    caller: str
    reason: str = ""

    @property
    def id(self) -> str:
        verdict = "denied" if self.reason else "admitted"
        return f"{self.method.rsplit('/', 1)[1]}-{self.caller}-to-{self.callee}-{verdict}"


CASES = (
    # Notify: the ST's signed notice, to any node; nobody else may send one, not to the ST either.
    Case(MEMBER, NOTIFY, ST),
    Case(HELPER, NOTIFY, ST),
    Case(MEMBER, NOTIFY, "CRI", role("notifications", "secretariat", "CRI")),
    Case(MEMBER, NOTIFY, HELPER, role("notifications", "secretariat", HELPER)),
    Case(HELPER, NOTIFY, MEMBER, role("notifications", "secretariat", MEMBER)),
    Case(ST, NOTIFY, MEMBER, role("notifications", "secretariat", MEMBER)),
    # EmergencyUpdate: a member to the ST; no other node offers it.
    Case(ST, EMERGENCY, MEMBER),
    Case(ST, EMERGENCY, HELPER, role("emergency", "member", HELPER)),
    Case(MEMBER, EMERGENCY, "CRI", absent("emergency", "CRI")),
    Case(MEMBER, EMERGENCY, ST, absent("emergency", ST)),
    Case(HELPER, EMERGENCY, MEMBER, absent("emergency", MEMBER)),
    # Contribute: the ST asks a member under the member's stats grant to the ST. A member with a
    # stats grant of its own is no Secretariat: it must not get a share of PAN's raw table. The
    # role is checked first, so a caller it is not for spends none of its quota on the refusal.
    Case(MEMBER, CONTRIBUTE, ST),
    Case(MEMBER, CONTRIBUTE, "CRI", role(CONTRIBUTE, "secretariat", "CRI")),
    Case(MEMBER, CONTRIBUTE, "SLV", role(CONTRIBUTE, "secretariat", "SLV")),
    Case(MEMBER, CONTRIBUTE, HELPER, role(CONTRIBUTE, "secretariat", HELPER)),
    Case(ST, CONTRIBUTE, MEMBER, role(CONTRIBUTE, "secretariat", MEMBER)),
    Case(HELPER, CONTRIBUTE, ST, NO_AGREEMENT),
    # SubmitShare: members to the helper, agreement or not; not the ST, and no other node.
    Case(HELPER, SUBMIT, MEMBER),
    Case(HELPER, SUBMIT, "SLV"),
    Case(HELPER, SUBMIT, ST, role("shares", "member", ST)),
    Case(MEMBER, SUBMIT, "CRI", absent("shares", "CRI")),
    Case(ST, SUBMIT, MEMBER, absent("shares", MEMBER)),
    # GetSum: the ST to the helper; no other node offers it.
    Case(HELPER, GET_SUM, ST),
    Case(HELPER, GET_SUM, MEMBER, role("share-sums", "secretariat", MEMBER)),
    Case(MEMBER, GET_SUM, ST, absent("share-sums", ST)),
    Case(ST, GET_SUM, MEMBER, absent("share-sums", MEMBER)),
    # ListConsulates: the agreement rule (directory grant), whoever holds the grant.
    Case(MEMBER, LIST, ST),
    Case(MEMBER, LIST, "CRI"),
    Case(MEMBER, LIST, "SLV", NO_AGREEMENT),
    Case(MEMBER, LIST, HELPER, NO_AGREEMENT),
    Case(ST, LIST, MEMBER, ONE_WAY),
    Case(HELPER, LIST, ST, NO_AGREEMENT),
    # Aggregate, the ST's pulls of a member's tables: the agreement rule (stats grant).
    Case(MEMBER, AGGREGATE, ST),
    Case(MEMBER, AGGREGATE, "SLV", NO_AGREEMENT),
    Case(MEMBER, AGGREGATE, HELPER, NO_AGREEMENT),
    Case(ST, AGGREGATE, MEMBER, ONE_WAY),
    Case(HELPER, AGGREGATE, ST, NO_AGREEMENT),
)

#: The rule of every method served, on (a member, the ST, the helper): ``membership``,
#: ``agreement``, ``role:<role>``, ``none`` (refused by default), and ``+role:<role>`` for a
#: rule the authoriser keys by the method itself, checked after its service's rule.
_NODE, _AGREE, _MATCH, _BIO = (
    "/enlace.v1.NodeService",
    "/enlace.v1.AgreementService",
    "/enlace.v1.MatchService",
    "/enlace.v1.BiometricService",
)
EVERYWHERE = {
    **dict.fromkeys(
        (f"{_NODE}/GetInfo", f"{_NODE}/Ping", f"{_NODE}/GetDirectory", f"{_AGREE}/GetAgreement"),
        "membership",
    ),
    **dict.fromkeys(
        (
            AGGREGATE,
            LIST,
            *(f"{_MATCH}/{m}" for m in ("GetManifest", "SyncFilter", "Evaluate", "FollowUp")),
            *(f"{_BIO}/{m}" for m in ("GetEpoch", "Search", "FollowUp")),
        ),
        "agreement",
    ),
    NOTIFY: "role:secretariat",
    CONTRIBUTE: "agreement+role:secretariat",
}
EXPECTED_RULES: dict[str, dict[str, str]] = {
    **{m: dict.fromkeys(SERVED, rule) for m, rule in EVERYWHERE.items()},
    EMERGENCY: {ST: "role:member", MEMBER: "none", HELPER: "none"},
    SUBMIT: {ST: "none", MEMBER: "none", HELPER: "role:member"},
    GET_SUM: {ST: "none", MEMBER: "none", HELPER: "role:secretariat"},
}


@pytest.fixture(scope="module", params=BACKENDS)
def fed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    with backend_federation(request, tmp_path_factory, "roles", COUNTRIES, helper=HELPER) as (
        live,
        root,
    ):
        furnish(live, root / "data")  # PAN holds data and grants CRI and CRM every service
        for node in SERVED:
            live.serve(node)
        yield live


def _kind(rule: object) -> str:
    if rule is None:
        return "none"
    if isinstance(rule, RoleRule):
        return f"role:{rule.role}"
    if type(rule) is AgreementRule:
        return "agreement"
    if type(rule) is MembershipRule:
        return "membership"
    return type(rule).__name__  # a rule of a kind the table does not know: never matches


def _rules(fed: Federation, node: str) -> dict[str, str]:
    """The rule kind of every method ``node`` serves, read from its running authoriser."""
    authorizer = fed.servers[node].pipeline.authorizer
    assert isinstance(authorizer, ServiceAuthorizer)
    table = authorizer._rules  # the factory's table: no public accessor
    out = {}
    for name, spec in fed.methods[node].items():
        narrower = table.get(name)
        out[name] = _kind(table.get(spec.service)) + (f"+{_kind(narrower)}" if narrower else "")
    return out


def test_every_method_has_a_rule_and_every_secretariat_method_a_pinned_outcome(
    fed: Federation,
) -> None:
    """A method added without a rule, a rule changed, or a Secretariat method (or a node it is
    served on) without rows in :data:`CASES` fails here."""
    actual = {node: _rules(fed, node) for node in SERVED}
    served = set().union(*(actual[node] for node in SERVED))
    assert served == set(EXPECTED_RULES), "a method without a pinned rule (or one gone)"
    for method in sorted(served):
        got = {node: actual[node].get(method, "not served") for node in SERVED}
        assert got == EXPECTED_RULES[method], method
        assert set(got.values()) != {"none"}, f"{method}: no node has a rule for it"
    secretariat = {
        spec.full_name
        for _service, specs in secretariat_services.services(fed.runtimes[ST])
        for spec in specs
    }
    assert {c.method for c in CASES} == secretariat | {AGGREGATE}
    for method in secretariat | {AGGREGATE}:
        rows = [c for c in CASES if c.method == method]
        assert {c.callee for c in rows} == set(SERVED), f"{method}: a node without a row"
        assert any(not c.reason for c in rows), f"{method}: no caller it must admit"
        assert any(c.reason for c in rows), f"{method}: no caller it must refuse"
    for case in CASES:  # a "not offered" row is on a node with no rule for the service
        assert case.reason.startswith("service '") == (
            EXPECTED_RULES[case.method][case.callee] == "none"
        ), case.id
    assert len({c.id for c in CASES}) == len(CASES)


def _body(fed: Federation, case: Case) -> Message:
    """The row's body in this module's share rounds; for GetSum, a round that can be summed."""
    if case.method == GET_SUM:
        submit = _body(fed, Case(HELPER, SUBMIT, MEMBER))
        assert isinstance(submit, secretariat_pb2.SubmitShareRequest)
        submit.round_id = ROUNDS[GET_SUM]
        for member in SUMMED:  # three members' shares, enough for the helper to sum
            with fed.client(member, HELPER) as client:
                client.call(SUBMIT, submit, secretariat_pb2.SubmitShareResponse)
        return secretariat_pb2.GetSumRequest(
            round_id=ROUNDS[GET_SUM], members=SUMMED, layout_sha256=submit.layout_sha256
        )
    with fed.client(case.caller, case.callee) as client:
        body = ROWS[case.method].body(client)
    if case.method in ROUNDS:
        body.round_id = ROUNDS[case.method]  # type: ignore[attr-defined]
    return body


def _quota_usage(store: Any, requester: str) -> dict[tuple[str, str], int]:
    """``requester``'s quota counters at ``store``'s node (scopes read ``id:HOLDER>REQUESTER:
    service``). The ST's own are left out: its calendar pulls members in the background."""
    if requester == ST:
        return {}
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT scope, window_key, used FROM quota_usage")).all()
    return {(s, k): int(used) for s, k, used in rows if f">{requester}:" in s}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_rule_admits_or_refuses_the_caller(fed: Federation, case: Case) -> None:
    body = _body(fed, case)
    callee = fed.runtimes[case.callee].store
    before = callee.audit_head()[0]
    quotas = _quota_usage(callee, case.caller)
    purpose = PURPOSES.get(case.method, "")
    agreement = AGREEMENTS.get(case.caller, "") if purpose else ""
    with fed.client(case.caller, case.callee) as client:
        aim = Aim(client, case.method, body.SerializeToString(), purpose, agreement)
        sealed = valid(aim)
        delivery = deliver(client.channel, sealed, case.method)
    if case.reason:
        assert delivery.status == "PERMISSION_DENIED", delivery
        assert case.reason in delivery.details, delivery.details
    else:
        assert delivery.status == "OK", delivery
        assert len(delivery.responses) == 1
    entries = [callee.audit_entry(seq) for seq in range(before + 1, callee.audit_head()[0] + 1)]
    mine = [e.record for e in entries if e and e.record.request_digest == sealed.digest]
    assert [(r.peer, r.method, r.status, r.decision) for r in mine] == [
        (
            case.caller,
            case.method,
            "PERMISSION_DENIED" if case.reason else "OK",
            "denied" if case.reason else "allowed",
        )
    ]
    if case.reason:
        assert case.reason in mine[0].reason
        assert _quota_usage(callee, case.caller) == quotas, "a refusal spent the caller's quota"
