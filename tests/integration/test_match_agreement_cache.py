"""The agreement decisions a holder caches for Evaluate calls change exactly when they must.

``AgreementBook.decide`` keeps allowed decisions per verified view and per stretch of time
between the instants at which any agreement starts, ends or is revoked. These tests cross
each kind of instant and install documents between calls, and check the cached answer always
equals what the uncached ``current(now).evaluate`` says.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from match_support import install, match_agreement

from node.agreements import AgreementBook
from node.demo.federation import create_federation
from node.runtime import NodeRuntime, open_runtime
from policies.agreement import Agreement
from policies.decision import Decision, Request
from policies.errors import Denied
from policies.signatures import Revocation, dump_revocation, sign_revocation

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
REQUEST = Request("CRI", "PAN", "match", "travel_documents", "identity_verification", units=7)


@pytest.fixture
def runtimes(tmp_path: Path) -> Iterator[dict[str, NodeRuntime]]:
    federation = create_federation(tmp_path / "fed", ("PAN", "CRI"), NOW)
    opened = {c: open_runtime(federation.homes[c]) for c in ("PAN", "CRI")}
    yield opened
    for runtime in opened.values():
        runtime.close()


def uncached(runtime: NodeRuntime, request: Request, now: dt.datetime) -> Decision:
    return AgreementBook(runtime).current(now).evaluate(request, now)


def test_a_repeated_request_reuses_the_decision_whatever_its_units(
    runtimes: dict[str, NodeRuntime],
) -> None:
    install(runtimes, match_agreement("PAN", "CRI", NOW), NOW)
    book = AgreementBook(runtimes["PAN"])
    first = book.decide(REQUEST, NOW)
    again = book.decide(dataclasses.replace(REQUEST, units=512), NOW + dt.timedelta(seconds=5))
    assert again is first
    assert first == uncached(runtimes["PAN"], REQUEST, NOW)
    other = book.decide(dataclasses.replace(REQUEST, purpose="document_fraud"), NOW)
    assert other is not first and other.agreement_id == first.agreement_id


def test_the_end_of_an_agreement_is_never_crossed_by_a_cached_allow(
    runtimes: dict[str, NodeRuntime],
) -> None:
    ends = NOW + dt.timedelta(hours=1)
    agreement = dataclasses.replace(match_agreement("PAN", "CRI", NOW), valid_until=ends)
    install(runtimes, agreement, NOW)
    book = AgreementBook(runtimes["PAN"])
    just_before = agreement.valid_until - dt.timedelta(microseconds=1)
    # Same view (no minute passes between the two calls), so only the boundary can refuse.
    book.current(just_before - dt.timedelta(seconds=1))
    assert book.decide(REQUEST, just_before - dt.timedelta(seconds=1)).allowed
    assert book.decide(REQUEST, just_before).allowed
    with pytest.raises(Denied) as refused:
        book.decide(REQUEST, agreement.valid_until)
    assert "expired" in str(refused.value)
    with pytest.raises(Denied):  # refusals are recomputed, not cached
        book.decide(REQUEST, agreement.valid_until + dt.timedelta(seconds=1))


def test_a_later_version_takes_over_at_its_start(runtimes: dict[str, NodeRuntime]) -> None:
    first = match_agreement("PAN", "CRI", NOW)
    starts = NOW + dt.timedelta(seconds=30)
    second = dataclasses.replace(first, version=2, valid_from=starts)
    install(runtimes, first, NOW)
    install(runtimes, second, NOW)
    book = AgreementBook(runtimes["PAN"])
    before = book.decide(REQUEST, NOW)
    assert before.agreement_version == 1
    assert book.decide(REQUEST, starts - dt.timedelta(microseconds=1)) is before
    after = book.decide(REQUEST, starts)
    assert after.agreement_version == 2
    assert after == uncached(runtimes["PAN"], REQUEST, starts)


def _revoke(runtimes: dict[str, NodeRuntime], agreement: Agreement, at: dt.datetime) -> None:
    revocation = Revocation.for_agreement(agreement, "CRI", at, "ended by the parties")
    text = dump_revocation(sign_revocation(revocation, runtimes["CRI"].signing_key))
    AgreementBook(runtimes["PAN"]).install_text(text, NOW)


def test_an_installed_revocation_refuses_the_next_call(runtimes: dict[str, NodeRuntime]) -> None:
    agreement = match_agreement("PAN", "CRI", NOW)
    install(runtimes, agreement, NOW)
    book = AgreementBook(runtimes["PAN"])  # the server's book; the revocation comes from another
    assert book.decide(REQUEST, NOW).allowed
    _revoke(runtimes, agreement, NOW)
    with pytest.raises(Denied) as refused:
        book.decide(REQUEST, NOW + dt.timedelta(seconds=1))
    assert "revoked" in str(refused.value)


def test_a_revocation_dated_later_refuses_from_its_date(runtimes: dict[str, NodeRuntime]) -> None:
    agreement = match_agreement("PAN", "CRI", NOW)
    install(runtimes, agreement, NOW)
    ends = NOW + dt.timedelta(seconds=20)
    _revoke(runtimes, agreement, ends)
    book = AgreementBook(runtimes["PAN"])
    assert book.decide(REQUEST, NOW).allowed
    assert book.decide(REQUEST, ends - dt.timedelta(microseconds=1)).allowed
    with pytest.raises(Denied):
        book.decide(REQUEST, ends)


def test_a_refusal_is_not_remembered(runtimes: dict[str, NodeRuntime]) -> None:
    book = AgreementBook(runtimes["PAN"])
    with pytest.raises(Denied):
        book.decide(REQUEST, NOW)
    install(runtimes, match_agreement("PAN", "CRI", NOW), NOW)
    assert book.decide(REQUEST, NOW).allowed
