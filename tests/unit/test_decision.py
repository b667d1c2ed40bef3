"""Decisions: every refusal, every allowance, explanations, and the one allowed bypass."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crypto.errors import KeyError_
from crypto.signing import SigningKey
from policies.agreement import Agreement
from policies.decision import (
    AgreementSet,
    Request,
    UnsafeAllowAll,
    UnusableAgreement,
    evaluate,
)
from policies.errors import AgreementNotInForceError, AgreementSignatureError, Denied
from policies.explain import explain
from policies.in_force import require_in_force
from policies.signatures import (
    Revocation,
    SignedAgreement,
    VerifiedAgreement,
    VerifiedRevocation,
    sign_agreement,
    sign_revocation,
    verify_agreement,
    verify_revocation,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
KEYS = {c: SigningKey(hashlib.sha256(f"decision {c}".encode()).digest()) for c in ("PAN", "CRI")}


def resolver(country: str, key_id: str, at: datetime) -> bytes:
    key = KEYS.get(country)
    if key is None or key.key_id != key_id:
        raise KeyError_(f"{country} has no key {key_id}")
    return key.public_key


def grant(holder: str, requester: str, service: str, **extra: Any) -> dict[str, Any]:
    g: dict[str, Any] = {
        "holder": holder,
        "requester": requester,
        "service": service,
        "datasets": extra.pop("datasets", ["encounters"]),
        "purposes": extra.pop("purposes", ["quarterly_matrices"]),
        "quotas": {"per_day": 100, "per_quarter": None},
    }
    if service == "stats":
        g["dimensions"] = extra.pop("dimensions", ["sex", "nationality"])
        g["disclosure"] = {"profile": "standard"}
    g.update(extra)
    return g


STATS = grant("PAN", "CRI", "stats")
FOLLOWUP = grant(
    "PAN",
    "CRI",
    "followup",
    datasets=["travel_documents"],
    purposes=["identity_verification"],
    attributes=["first_seen_quarter", "event_type"],
)
MATCH_BACK = grant("CRI", "PAN", "match", datasets=["document_alerts"], purposes=["document_fraud"])


def doc(aid: str = "PAN-CRI-1", version: int = 1, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "format": "enlace-agreement/1",
        "id": aid,
        "version": version,
        "title": f"Test {aid} v{version}",
        "parties": ["PAN", "CRI"],
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2027-01-01T00:00:00Z",
        "grants": [STATS, FOLLOWUP, MATCH_BACK],
    }
    d.update(extra)
    return d


def signed(d: dict[str, Any], parties: tuple[str, ...] = ("PAN", "CRI")) -> SignedAgreement:
    s = SignedAgreement(Agreement.from_document(d))
    for p in parties:
        s = sign_agreement(s, p, KEYS[p])
    return s


def verified(d: dict[str, Any]) -> VerifiedAgreement:
    return verify_agreement(signed(d), resolver, NOW)


def revoked(v: VerifiedAgreement, at: datetime, by: str = "CRI") -> VerifiedRevocation:
    rev = sign_revocation(Revocation.for_agreement(v.agreement, by, at, "Ended by note."), KEYS[by])
    return verify_revocation(rev, v.agreement, resolver, NOW)


def stats_request(**changes: Any) -> Request:
    base = Request("CRI", "PAN", "stats", "encounters", "quarterly_matrices", frozenset({"sex"}))
    return replace(base, **changes)


# --- refusals (table) ---------------------------------------------------------------------


@dataclass
class Case:
    name: str
    request: Request
    agreements: Callable[[], list[VerifiedAgreement]]
    elements: set[str]
    fragments: list[str]
    now: datetime = NOW
    revocations: Callable[[list[VerifiedAgreement]], list[VerifiedRevocation]] = field(
        default=lambda _: []
    )


def one() -> list[VerifiedAgreement]:
    return [verified(doc())]


def two_agreements() -> list[VerifiedAgreement]:
    stats_only = doc("PAN-CRI-STATS", grants=[STATS])
    match_only = doc("PAN-CRI-MATCH", grants=[MATCH_BACK])
    return [verified(stats_only), verified(match_only)]


REFUSALS = [
    Case("no-agreement", stats_request(requester="MEX"), one, {"agreement"}, ["no agreement"]),
    Case(
        "none-at-all",
        stats_request(),
        list,
        {"agreement"},
        ["There is no agreement between Costa Rica (CRI) and Panama (PAN)"],
    ),
    Case("asks-itself", stats_request(requester="PAN"), one, {"party"}, ["both requester"]),
    Case(
        "before-validity",
        stats_request(),
        one,
        {"validity"},
        ["not yet in force", "2026-01-01T00:00:00Z"],
        now=START - timedelta(seconds=1),
    ),
    Case("after-validity", stats_request(), one, {"validity"}, ["expired on"], now=END),
    Case(
        "revoked",
        stats_request(),
        one,
        {"agreement"},
        ["revoked by Costa Rica (CRI)", "Ended by note"],
        revocations=lambda a: [revoked(a[0], NOW - timedelta(days=1))],
    ),
    Case(
        "service",
        stats_request(service="biometric"),
        one,
        {"service"},
        ["biometric", "granted services: 'followup', 'stats'"],
    ),
    Case(
        "dataset",
        stats_request(dataset="travel_documents"),
        one,
        {"dataset"},
        ["dataset 'travel_documents' is not granted", "granted: 'encounters'"],
    ),
    Case(
        "purpose",
        stats_request(purpose="prosecution"),
        one,
        {"purpose"},
        ["purpose 'prosecution' is not granted", "granted: 'quarterly_matrices'"],
    ),
    Case(
        "dimension",
        stats_request(dimensions=frozenset({"sex", "age_group", "border_post"})),
        one,
        {"dimension"},
        ["dimensions 'age_group', 'border_post' are not granted", "'nationality', 'sex'"],
    ),
    Case(
        "attribute",
        Request(
            "CRI",
            "PAN",
            "followup",
            "travel_documents",
            "identity_verification",
            attributes=frozenset({"first_seen_quarter", "full_name"}),
        ),
        one,
        {"attribute"},
        ["attribute 'full_name' is not granted", "'event_type', 'first_seen_quarter'"],
    ),
    Case(
        "wrong-direction",
        Request("PAN", "CRI", "stats", "encounters", "quarterly_matrices"),
        lambda: [verified(doc(grants=[STATS]))],
        {"party"},
        ["grants Panama (PAN) nothing from Costa Rica (CRI)"],
    ),
    Case(
        "empty-grant-list",
        stats_request(),
        lambda: [verified(doc(grants=[]))],
        {"agreement"},
        ["has no grants"],
    ),
    Case(
        "grant-without-datasets",
        stats_request(),
        lambda: [verified(doc(grants=[grant("PAN", "CRI", "stats", datasets=[])]))],
        {"dataset"},
        ["lists no datasets"],
    ),
    Case(
        "grant-without-purposes",
        stats_request(),
        lambda: [verified(doc(grants=[grant("PAN", "CRI", "stats", purposes=[])]))],
        {"purpose"},
        ["lists no purposes"],
    ),
    Case(
        "named-agreement-missing",
        stats_request(agreement_id="PAN-CRI-9"),
        lambda: [verified(doc(grants=[MATCH_BACK]))],
        {"agreement", "party"},
        ["no agreement 'PAN-CRI-9'", "agreements between them: 'PAN-CRI-1'"],
    ),
    Case(
        "named-agreement-fits-only-another",
        stats_request(agreement_id="PAN-CRI-MATCH"),
        two_agreements,
        {"agreement", "party"},
        [
            "nothing from Panama",
            "names agreement 'PAN-CRI-MATCH', but only agreement 'PAN-CRI-STATS'",
        ],
    ),
    Case(
        "several-reasons-at-once",
        stats_request(dataset="x", purpose="y"),
        one,
        {"validity", "dataset", "purpose"},
        ["expired", "dataset 'x'", "purpose 'y'"],
        now=END + timedelta(days=1),
    ),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[c.name for c in REFUSALS])
def test_refusals(case: Case) -> None:
    agreements = case.agreements()
    revocations = case.revocations(agreements)
    with pytest.raises(Denied) as info:
        evaluate(case.request, agreements, revocations, case.now)
    assert info.value.elements == case.elements
    text = str(info.value)
    for fragment in case.fragments:
        assert fragment in text
    explanation = explain(case.request, agreements, revocations, case.now)
    assert not explanation.allowed
    assert explanation.reasons == tuple(info.value.reasons)
    assert all(r.message in str(explanation) for r in info.value.reasons)


def test_missing_and_granted_values_are_machine_readable() -> None:
    request = stats_request(dimensions=frozenset({"sex", "age_group"}))
    with pytest.raises(Denied) as info:
        evaluate(request, one(), [], NOW)
    (reason,) = info.value.reasons
    assert (reason.missing, reason.granted) == (("age_group",), ("nationality", "sex"))
    assert reason.agreement_id == "PAN-CRI-1"


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: signed(doc(), ("PAN",)), "CRI has not signed"),
        (lambda: signed(doc(), ()), "PAN has not signed"),
    ],
    ids=["signed-by-one-party", "unsigned"],
)
def test_agreement_not_signed_by_both_never_reaches_evaluation(
    make: Callable[[], SignedAgreement], fragment: str
) -> None:
    with pytest.raises(AgreementSignatureError, match=fragment):
        verify_agreement(make(), resolver, NOW)
    with pytest.raises(Denied, match="no agreement"):
        AgreementSet(()).evaluate(stats_request(), NOW)


# --- allowances ---------------------------------------------------------------------------


def test_covered_request_is_allowed_and_cites_the_rule() -> None:
    v = verified(doc())
    decision = evaluate(stats_request(), [v], [], NOW)
    assert decision.allowed and not decision.unsafe
    assert (decision.agreement_id, decision.agreement_version) == ("PAN-CRI-1", 1)
    assert decision.agreement_hash == v.agreement.hash
    assert decision.grant_index == 0 and decision.grant == v.agreement.grants[0]


def test_validity_window_is_half_open() -> None:
    assert evaluate(stats_request(), one(), [], START).allowed
    assert evaluate(stats_request(), one(), [], END - timedelta(microseconds=1)).allowed
    with pytest.raises(Denied):
        evaluate(stats_request(), one(), [], END)


def test_revocation_applies_from_its_time_on() -> None:
    agreements = one()
    revs = [revoked(agreements[0], NOW)]
    assert evaluate(stats_request(), agreements, revs, NOW - timedelta(seconds=1)).allowed
    with pytest.raises(Denied, match="revoked"):
        evaluate(stats_request(), agreements, revs, NOW)


def test_revocation_of_another_version_does_not_apply() -> None:
    v1, v2 = (
        verified(doc()),
        verified(
            doc(version=2, valid_from="2027-01-01T00:00:00Z", valid_until="2028-01-01T00:00:00Z")
        ),
    )
    assert evaluate(stats_request(), [v1, v2], [revoked(v2, NOW)], NOW).agreement_version == 1


def test_followup_decision_says_approval_is_needed() -> None:
    request = Request(
        "CRI",
        "PAN",
        "followup",
        "travel_documents",
        "identity_verification",
        attributes=frozenset({"event_type"}),
    )
    decision = evaluate(request, one(), [], NOW)
    assert decision.grant_index == 1 and decision.requires_approval


def test_named_agreement_is_used_when_it_covers() -> None:
    agreements = two_agreements()
    request = Request("PAN", "CRI", "match", "document_alerts", "document_fraud")
    assert evaluate(request, agreements, [], NOW).agreement_id == "PAN-CRI-MATCH"
    named = replace(request, agreement_id="PAN-CRI-MATCH")
    assert evaluate(named, agreements, [], NOW).agreement_id == "PAN-CRI-MATCH"


def test_later_version_supersedes_once_started() -> None:
    v1 = verified(doc())
    narrower = doc(version=2, valid_from="2026-07-01T00:00:00Z", grants=[FOLLOWUP])
    v2 = verified(narrower)
    before, after = datetime(2026, 6, 30, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)
    assert evaluate(stats_request(), [v1, v2], [], before).agreement_version == 1
    with pytest.raises(Denied) as info:
        evaluate(stats_request(), [v1, v2], [], after)
    assert "superseded by version 2" in str(info.value)
    with pytest.raises(AgreementNotInForceError, match="superseded"):
        require_in_force(v1, [], after, others=[v1, v2])
    require_in_force(v2, [], after, others=[v1, v2])


def test_two_texts_for_one_version_are_both_refused() -> None:
    a, b = verified(doc()), verified(doc(title="A different text"))
    with pytest.raises(Denied, match="Two different signed documents"):
        evaluate(stats_request(), [a, b], [], NOW)


def test_require_in_force_reports_expiry_and_revocation() -> None:
    v = verified(doc())
    require_in_force(v, [], NOW)
    with pytest.raises(AgreementNotInForceError) as info:
        require_in_force(v, [revoked(v, START)], END)
    assert {r.element for r in info.value.reasons} == {"validity", "agreement"}


def test_time_must_be_aware_and_units_positive() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(stats_request(), one(), [], datetime(2026, 6, 1))
    with pytest.raises(ValueError, match="units"):
        stats_request(units=0)


# --- explanations -------------------------------------------------------------------------


def test_explanation_of_an_allowed_request_names_the_rule() -> None:
    v = verified(doc())
    text = str(AgreementSet((v,)).explain(stats_request(), NOW))
    assert text.startswith("ALLOWED: Costa Rica (CRI) may ask Panama (PAN) for statistics")
    for fragment in ("'PAN-CRI-1' version 1", v.agreement.hash, "grant #1", "PAN → CRI"):
        assert fragment in text
    assert "100 queries per UTC day, no limit per quarter" in text


def test_explanation_of_a_denied_request_lists_each_reason_with_a_hint() -> None:
    request = stats_request(dataset="x", purpose="y")
    explanation = explain(request, one(), [], NOW)
    assert explanation.lines[0].startswith("DENIED:")
    reason_lines = [line for line in explanation.lines if line.startswith("- [")]
    assert [line.split("]")[0] for line in reason_lines] == ["- [dataset", "- [purpose"]
    assert all("What to do:" in line for line in reason_lines)


# --- the bypass ---------------------------------------------------------------------------


def test_unsafe_allow_all_warns_on_every_use(caplog: pytest.LogCaptureFixture) -> None:
    policy = UnsafeAllowAll()
    request = stats_request(requester="MEX")
    with caplog.at_level(logging.WARNING, logger="policies"):
        decision = policy.evaluate(request, NOW)
        policy.evaluate(request, NOW)
        explanation = policy.explain(request, NOW)
    warnings = [r for r in caplog.records if r.name == "policies" and r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert decision.unsafe and decision.agreement_id == "unsafe-allow-all"
    assert explanation.allowed and "UnsafeAllowAll" in str(explanation)
    with pytest.raises(Denied):
        AgreementSet(()).evaluate(request, NOW)


# --- agreements held but unusable -----------------------------------------------------------


def _unusable(aid: str = "PAN-CRI-1") -> UnusableAgreement:
    return UnusableAgreement(
        Agreement.from_document(doc(aid)),
        f"Agreement '{aid}' (version 1) is installed, but its signatures no longer verify.",
        "re-sign it and install the re-signed copy",
    )


def test_an_unusable_agreement_is_named_instead_of_no_agreement() -> None:
    policy = AgreementSet((), (), (_unusable(),))
    with pytest.raises(Denied) as refused:
        policy.evaluate(stats_request(), NOW)
    (reason,) = refused.value.reasons
    assert (reason.element, reason.agreement_id) == ("agreement", "PAN-CRI-1")
    assert "signatures no longer verify" in reason.message
    assert reason.hint == "re-sign it and install the re-signed copy"
    lines = str(policy.explain(stats_request(), NOW))
    assert "no agreement" not in lines and "What to do: re-sign it" in lines


def test_an_unusable_agreement_allows_nothing_and_is_cited_beside_other_reasons() -> None:
    other = verified(doc("PAN-CRI-2", grants=[MATCH_BACK]))
    policy = AgreementSet((other,), (), (_unusable(),))
    with pytest.raises(Denied) as refused:
        policy.evaluate(stats_request(), NOW)
    messages = [r.message for r in refused.value.reasons]
    assert any("PAN-CRI-2" in m for m in messages)
    assert "signatures no longer verify" in messages[-1]


def test_an_unusable_agreement_between_other_parties_is_not_cited() -> None:
    policy = AgreementSet((), (), (_unusable(),))
    with pytest.raises(Denied) as refused:
        policy.evaluate(stats_request(requester="MEX"), NOW)
    assert "There is no agreement between Mexico (MEX)" in str(refused.value)


def test_an_unusable_agreement_never_hides_an_allow() -> None:
    policy = AgreementSet((verified(doc()),), (), (_unusable("PAN-CRI-9"),))
    assert policy.evaluate(stats_request(), NOW).agreement_id == "PAN-CRI-1"
