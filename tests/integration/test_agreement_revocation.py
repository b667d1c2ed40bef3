"""Revocations and re-signing through the agreement book, on SQLite and PostgreSQL.

Why: revocation is the one control that must fail closed whatever happens afterwards — a
second revocation, a key leaving the directory, a fresh process reading the store — and a key
rotation must not silently make an agreement unusable. Each test drives a real store through
:class:`~node.agreements.AgreementBook`; the directory is a stand-in whose keys the test
retires, as a directory update would.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from crypto.signing import SigningKey
from node.agreements import AgreementBook
from node.store import Store, open_store
from node.store.schema import revocations
from node.trust.directory import DirectoryLookupError
from policies.agreement import Agreement, Grant, Quotas
from policies.decision import Request
from policies.errors import Denied
from policies.signatures import (
    Revocation,
    SignedAgreement,
    dump_revocation,
    sign_agreement,
    sign_revocation,
)

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
REQUEST = Request("CRI", "PAN", "match", "travel_documents", "identity_verification")


def key(label: str) -> SigningKey:
    return SigningKey(hashlib.sha256(f"revocation test {label}".encode()).digest())


PAN_OLD, PAN_NEW, CRI_OLD, CRI_NEW = key("pan-old"), key("pan-new"), key("cri-old"), key("cri-new")


class Directory:
    """The federation directory as the book sees it: a hash and a key resolver."""

    def __init__(self, *keys: tuple[str, SigningKey]) -> None:
        self.keys = {(country, k.key_id): k.public_key for country, k in keys}
        self.hash = hashlib.sha256(repr(sorted(self.keys)).encode()).hexdigest()

    def signing_key(self, country: str, key_id: str, at: dt.datetime) -> bytes:
        try:
            return self.keys[(country, key_id)]
        except KeyError:  # the real directory's error, not the one policies expects
            raise DirectoryLookupError(f"{country} has no signing key {key_id}") from None

    def current(self, now: dt.datetime) -> Directory:
        return self

    def without(self, retired: SigningKey) -> Directory:
        """The next directory version, with ``retired`` no longer listed."""
        smaller = Directory()
        smaller.keys = {k: v for k, v in self.keys.items() if k[1] != retired.key_id}
        smaller.hash = hashlib.sha256(repr(sorted(smaller.keys)).encode()).hexdigest()
        return smaller


@dataclasses.dataclass
class Config:
    country: str = "PAN"


@dataclasses.dataclass
class Node:
    """What the book reads of a node runtime: its country, its store and its directory."""

    store: Store
    directory: Directory
    config: Config = dataclasses.field(default_factory=Config)

    def book(self) -> AgreementBook:
        """A new book, as a new process (server, CLI) would build from the same store."""
        return AgreementBook(self)  # type: ignore[arg-type]


@pytest.fixture
def node(database_url: str) -> Iterator[Node]:
    store = open_store(database_url)
    everyone = Directory(("PAN", PAN_OLD), ("PAN", PAN_NEW), ("CRI", CRI_OLD), ("CRI", CRI_NEW))
    yield Node(store, everyone)
    store.close()


def agreement() -> Agreement:
    grant = Grant(
        holder="PAN",
        requester="CRI",
        service="match",
        datasets=("travel_documents",),
        purposes=("identity_verification",),
        quotas=Quotas(None, None),
    )
    return Agreement(
        id="PAN-CRI",
        version=1,
        parties=("PAN", "CRI"),
        title="Intercambio PAN-CRI",
        valid_from=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        valid_until=dt.datetime(2028, 1, 1, tzinfo=dt.UTC),
        grants=(grant,),
    )


def signed(pan: SigningKey = PAN_OLD, cri: SigningKey = CRI_NEW) -> SignedAgreement:
    return sign_agreement(sign_agreement(SignedAgreement(agreement()), "PAN", pan), "CRI", cri)


def revocation(by: str, signer: SigningKey, at: dt.datetime, reason: str = "terminated") -> str:
    return dump_revocation(
        sign_revocation(Revocation.for_agreement(agreement(), by, at, reason), signer)
    )


def refusal(book: AgreementBook, now: dt.datetime) -> str:
    with pytest.raises(Denied) as refused:
        book.decide(REQUEST, now)
    return str(refused.value)


# --- several revocations: the earliest wins -----------------------------------------------


@pytest.mark.parametrize("immediate_first", [False, True], ids=["notice-first", "immediate-first"])
def test_the_earliest_revocation_ends_the_agreement_whatever_the_order(
    node: Node, immediate_first: bool
) -> None:
    book = node.book()
    book.install_agreement(signed(), NOW)
    notice = revocation("PAN", PAN_OLD, NOW + dt.timedelta(days=180), "notice of termination")
    immediate = revocation("CRI", CRI_NEW, NOW + dt.timedelta(hours=1), "breach")
    first, second = (immediate, notice) if immediate_first else (notice, immediate)
    book.install_text(first, NOW)
    said = book.install_text(second, NOW)

    if immediate_first:
        assert "it changes nothing" in said and "by CRI already ends the agreement" in said
    else:
        assert "now ends on 2026-06-01T01:00:00Z" in said and "revocation by PAN" in said
    assert len(node.store.policies.revocations()) == 2
    fresh = node.book()
    assert fresh.decide(REQUEST, NOW).allowed
    message = refusal(fresh, NOW + dt.timedelta(days=1))
    assert "revoked by Costa Rica (CRI) on 2026-06-01T01:00:00Z: breach" in message
    assert "in force" not in fresh.status(NOW + dt.timedelta(days=1))[0].state


def test_installing_the_same_revocation_again_says_so(node: Node) -> None:
    book = node.book()
    book.install_agreement(signed(), NOW)
    text = revocation("CRI", CRI_NEW, NOW)
    assert book.install_text(text, NOW).endswith("from 2026-06-01T00:00:00Z installed")
    assert book.install_text(text, NOW).endswith("was already installed")
    assert len(node.store.policies.revocations()) == 1


# --- a revocation outlives the key that signed it -----------------------------------------


def test_a_revocation_stays_in_force_after_its_key_leaves_the_directory(node: Node) -> None:
    book = node.book()
    book.install_agreement(signed(), NOW)
    book.install_text(revocation("CRI", CRI_OLD, NOW), NOW)  # CRI's key at the time
    (stored,) = node.store.policies.revocations()
    assert (stored.key_id, stored.public_key) == (CRI_OLD.key_id, CRI_OLD.public_key)
    assert stored.directory_hash == node.directory.hash

    node.directory = node.directory.without(CRI_OLD)
    later = NOW + dt.timedelta(days=30)
    for reader in (book, node.book()):  # the running book and a fresh process
        assert "was revoked by Costa Rica (CRI)" in refusal(reader, later)


def test_a_revocation_altered_in_the_store_refuses_the_agreement(node: Node) -> None:
    book = node.book()
    book.install_agreement(signed(), NOW)
    book.install_text(revocation("CRI", CRI_NEW, NOW + dt.timedelta(days=10)), NOW)
    postponed = revocation("CRI", CRI_OLD, NOW + dt.timedelta(days=900))  # another key's bytes
    with node.store.engine.begin() as conn:
        conn.execute(update(revocations).values(document=postponed))

    message = refusal(node.book(), NOW)
    assert "refuses every request: a revocation of it installed at this node" in message
    assert "restore it from a backup" in message


def test_a_revocation_stored_without_its_key_fails_closed_once_the_key_is_gone(
    node: Node,
) -> None:
    """Rows installed before keys were recorded: checked against the directory while it can
    be, and refusing the agreement (not ignoring the revocation) once it cannot."""
    book = node.book()
    book.install_agreement(signed(), NOW)
    book.install_text(revocation("CRI", CRI_OLD, NOW + dt.timedelta(days=10)), NOW)
    with node.store.engine.begin() as conn:
        conn.execute(update(revocations).values(key_id=None, public_key=None, directory_hash=None))
    assert node.book().decide(REQUEST, NOW).allowed
    assert "was revoked" in refusal(node.book(), NOW + dt.timedelta(days=10))

    node.directory = node.directory.without(CRI_OLD)
    message = refusal(node.book(), NOW)
    assert "cannot be checked any more" in message and "predates recorded keys" in message


# --- re-signing after a key rotation --------------------------------------------------------


def test_re_signing_with_a_new_key_keeps_the_agreement_usable_after_the_old_key_retires(
    node: Node,
) -> None:
    book = node.book()
    server = node.book()  # another process, holding a verified view
    assert book.install_agreement(signed(pan=PAN_OLD), NOW).endswith("installed")
    assert server.decide(REQUEST, NOW).allowed

    said = book.install_agreement(signed(pan=PAN_NEW), NOW)
    assert "re-signed" in said and f"PAN key {PAN_OLD.key_id} → {PAN_NEW.key_id}" in said
    assert "the text and hash are unchanged" in said
    assert PAN_NEW.key_id in (book.signed_document("PAN-CRI") or "")
    assert book.install_agreement(signed(pan=PAN_NEW), NOW).endswith("was already installed")

    node.directory = node.directory.without(PAN_OLD)
    later = NOW + dt.timedelta(seconds=1)
    assert server.decide(REQUEST, later).agreement_id == "PAN-CRI"
    assert [s.state for s in node.book().status(later)] == ["in force"]


def test_the_marker_moves_when_an_agreement_is_re_signed(node: Node) -> None:
    book = node.book()
    book.install_agreement(signed(pan=PAN_OLD), NOW)
    before = node.store.policies.marker()
    book.install_agreement(signed(pan=PAN_NEW), NOW)
    assert node.store.policies.marker() != before
    assert len(node.store.policies.agreements()) == 1


def test_an_agreement_whose_signatures_no_longer_verify_is_named_with_the_fix(
    node: Node,
) -> None:
    book = node.book()
    book.install_agreement(signed(pan=PAN_OLD), NOW)
    node.directory = node.directory.without(PAN_OLD)

    message = refusal(book, NOW)
    assert "There is no agreement" not in message
    assert "Agreement 'PAN-CRI' (version 1) is installed at this node, but its stored " in message
    assert "signatures no longer verify against the federation directory" in message
    assert "signs this same version again with its current key (enlace policy sign)" in message
    (status,) = book.status(NOW)
    assert "stored signatures no longer verify" in status.state
    assert "enlace policy install" in status.state


# --- installing is not granting ---------------------------------------------------------------


def test_installing_an_agreement_out_of_force_says_so(node: Node) -> None:
    later = dt.datetime(2028, 2, 1, tzinfo=dt.UTC)  # a month after it expired
    said = node.book().install_agreement(signed(), later)
    assert said.startswith("agreement 'PAN-CRI' (version 1) installed, but it is not in force: ")
    assert "expired" in said
    again = node.book().install_agreement(signed(), NOW)  # in force then: nothing to add
    assert again == "agreement 'PAN-CRI' (version 1) was already installed"
