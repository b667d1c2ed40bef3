"""What matching refuses, over real gRPC: each attack or mistake gets the promised status.

Deny by default (no agreement, wrong purpose, dataset not granted) for Evaluate, FollowUp and
SyncFilter; invalid points and the identity element; stale epochs and rotation; quotas that
stop enumeration; follow-ups without a hit or for attributes not granted; tampered filters
and manifests; and that the filter alone, without the holder's evaluations, tests nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from match_support import (
    holder,
    read_csv,
    serving_holder,
)

from crypto.errors import VerificationError
from crypto.match_keys import SignedManifest, oprf_key_for, sign_manifest
from crypto.oprf import blind
from crypto.ristretto import IDENTITY, base_mult, random_scalar
from crypto.signing import SigningKey
from enlace.v1 import match_pb2
from node.errors import AuthenticationError, PeerError
from node.matching.client import MatchClient, Outcome
from node.matching.followup import ATTRIBUTES
from node.matching.keys import document_input
from node.matching.peers import EVALUATE, FOLLOW_UP, SYNC
from node.matching.sources import document_query

PURPOSE = "identity_verification"


@pytest.fixture
def fed(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    return serving_holder(
        live_federation_factory(),
        tmp_path_factory.getbasetemp(),
        300,
        12,
        datasets=("travel_documents", "identities"),
        per_day=60,
    )


def _document(fed: Any, row: int = 0) -> dict[str, str]:
    files: Path = fed.files
    return read_csv(files / "travel_documents.csv")[row]


def _evaluate(client: MatchClient, elements: list[bytes], **changes: Any) -> PeerError:
    request = match_pb2.EvaluateRequest(dataset="travel_documents", epoch=1)
    request.blinded_elements.extend(elements)
    for name, value in changes.items():
        setattr(request, name, value)
    with pytest.raises(PeerError) as caught:
        client.client("PAN").call(
            EVALUATE, request, match_pb2.EvaluateResponse, purpose=changes.pop("purpose", PURPOSE)
        )
    return caught.value


def _status(call: Callable[[], object]) -> tuple[str, str]:
    with pytest.raises(PeerError) as caught:
        call()
    return caught.value.status_name, caught.value.message


def _denied_everywhere(
    client: MatchClient, dataset: str, purpose: str, element: list[bytes]
) -> list[str]:
    """Statuses of Evaluate, SyncFilter and FollowUp for (dataset, purpose)."""
    peer = client.client("PAN")
    evaluate = match_pb2.EvaluateRequest(dataset=dataset, epoch=1, blinded_elements=element)
    sync = match_pb2.SyncFilterRequest(dataset=dataset)
    follow = match_pb2.FollowUpRequest(
        dataset=dataset, epoch=1, output=os.urandom(64), case_reference="C-1",
        attributes=[ATTRIBUTES[dataset][0]],
    )  # fmt: skip
    return [
        _status(lambda: peer.call(EVALUATE, evaluate, match_pb2.EvaluateResponse, purpose=purpose))[
            0
        ],
        _status(
            lambda: peer.receive(SYNC, sync, match_pb2.FilterChunk, [].append, purpose=purpose)
        )[0],
        _status(lambda: peer.call(FOLLOW_UP, follow, match_pb2.FollowUpResponse, purpose=purpose))[
            0
        ],
    ]


def test_no_agreement_wrong_purpose_and_dataset_not_granted_are_denied(fed: Any) -> None:
    with MatchClient(fed.runtimes["HND"]) as stranger, MatchClient(fed.runtimes["CRI"]) as cri:
        element = [base_mult(random_scalar())]
        for client, dataset, purpose, why in (
            (stranger, "travel_documents", PURPOSE, "no agreement"),
            (cri, "travel_documents", "statistics", "purpose"),
            (cri, "document_alerts", PURPOSE, "dataset"),
        ):
            assert (
                _denied_everywhere(client, dataset, purpose, element) == ["PERMISSION_DENIED"] * 3
            ), why
        # The fan-out does not even call a peer our own copy of the agreements does not allow.
        report = stranger.run(
            [document_query("AB1234567", "PAN")], ["travel_documents"], purpose=PURPOSE
        )
        assert {o.status for o in report.outcomes if o.peer == "PAN"} == {"not granted"}
    refused = [
        e.record for e in fed.runtimes["PAN"].store.iter_audit() if e.record.decision == "denied"
    ]
    assert len(refused) == 9 and {r.status for r in refused} == {"PERMISSION_DENIED"}


def test_invalid_points_and_the_identity_are_refused(fed: Any) -> None:
    good = base_mult(random_scalar())
    non_canonical = bytes([0xFF] * 32)
    high_bit = bytes(good[:31]) + bytes([good[31] | 0x80])
    with MatchClient(fed.runtimes["CRI"]) as client:
        for bad in (IDENTITY, non_canonical, high_bit):
            error = _evaluate(client, [good, bad])
            assert error.status_name == "INVALID_ARGUMENT"
            assert "blinded_elements[1]" in error.message
        error = _evaluate(client, [good[:31]])
        assert error.status_name == "INVALID_ARGUMENT" and "32" in error.message


def test_quota_exhaustion_blocks_enumeration(fed: Any) -> None:
    with MatchClient(fed.runtimes["CRI"]) as client:
        cached = client.sync("PAN", "travel_documents", PURPOSE)  # one unit
        guesses = [document_input(f"X{n:07d}", "HTI") for n in range(60)]
        outputs, _, _ = client.evaluate("PAN", "travel_documents", guesses[:50], PURPOSE)
        assert len(outputs) == 50 and not any(cached.filter.contains_many(outputs))
        error = _evaluate(client, list(blind(guesses[50:]).blinded_elements))
    assert error.status_name == "RESOURCE_EXHAUSTED"
    assert "quota" in error.message
    # The next day the quota is back (windows are UTC days).
    fed.clocks["PAN"].advance(dt.timedelta(days=1))
    fed.clocks["CRI"].advance(dt.timedelta(days=1))
    with MatchClient(fed.runtimes["CRI"]) as client:
        outputs, _, _ = client.evaluate("PAN", "travel_documents", guesses[50:], PURPOSE)
    assert len(outputs) == 10


def test_the_filter_alone_reveals_nothing(fed: Any) -> None:
    doc = _document(fed)
    value = document_input(doc["document_number"], doc["issuing_state"])
    with MatchClient(fed.runtimes["CRI"]) as client:
        cached = client.sync("PAN", "travel_documents", PURPOSE)
        # Without the holder's key: plain hashes, or the querier's own OPRF key, never hit.
        guesses = [
            hashlib.sha512(value).digest(),
            oprf_key_for(os.urandom(32), "x", 1).evaluate(value),
        ]
        assert not any(cached.filter.contains_many(guesses))
        # Nor does the holder's key of another dataset or epoch (domain and epoch separation).
        master = holder(fed.runtimes["PAN"]).master
        for dataset, epoch in (("identities", 1), ("travel_documents", 2)):
            assert not cached.filter.contains(oprf_key_for(master, dataset, epoch).evaluate(value))
        # With one metered evaluation, the same question is answered.
        outputs, _, _ = client.evaluate("PAN", "travel_documents", [value], PURPOSE)
    assert cached.filter.contains(outputs[0])


def test_tampered_filters_and_manifests_are_detected(fed: Any) -> None:
    with MatchClient(fed.runtimes["CRI"]) as client:
        cached = client.sync("PAN", "travel_documents", PURPOSE)
        stored = cached.stored
        signed = SignedManifest(stored.manifest, stored.signature, stored.key_id)
        now = fed.clocks["CRI"].now()
        flipped = bytearray(stored.encoded)
        flipped[-1] ^= 1
        forged = sign_manifest(cached.manifest, SigningKey.generate())
        other_dataset = dataclasses.replace(cached.manifest, dataset="identities")
        bad_body = SignedManifest(other_dataset.to_json(), stored.signature, stored.key_id)
        cases: list[tuple[SignedManifest, bytes, type[Exception], str]] = [
            (signed, bytes(flipped), VerificationError, "SHA-256"),  # filter bytes changed
            (signed, stored.encoded[:-8], VerificationError, "manifest says"),  # cut short
            # a manifest signed by a key not in the directory
            (forged, stored.encoded, AuthenticationError, "no signing key"),
            (bad_body, stored.encoded, VerificationError, "signature"),  # body changed
        ]
        for manifest, payload, kind, reason in cases:
            with pytest.raises(kind, match=reason):
                client.filters.install("PAN", "travel_documents", manifest, 1, payload, now)
        # A genuine manifest for another dataset cannot be substituted either.
        with pytest.raises(VerificationError):
            client.filters.install("PAN", "identities", signed, 1, stored.encoded, now)
        # The cached copy is untouched by every refused install.
        assert client.filters.get("PAN", "travel_documents") == cached


def test_rotation_makes_old_outputs_miss_and_stale_epochs_fail(fed: Any) -> None:
    doc = _document(fed, 1)
    value = document_input(doc["document_number"], doc["issuing_state"])
    pan = holder(fed.runtimes["PAN"])
    with MatchClient(fed.runtimes["CRI"]) as client:
        old_outputs, old_filter, _ = client.evaluate("PAN", "travel_documents", [value], PURPOSE)
        assert old_filter.filter.contains(old_outputs[0])
        pan.rotate(fed.clocks["PAN"].now())
        assert pan.state().epoch == 2
        error = _evaluate(client, list(blind([value]).blinded_elements))
        assert error.status_name == "FAILED_PRECONDITION" and "resync" in error.message
        hit = Outcome(0, "PAN", "travel_documents", "hit", epoch=1, output=old_outputs[0])
        status, _ = _status(lambda: client.follow_up(hit, case_reference="C-9", purpose=PURPOSE))
        assert status == "FAILED_PRECONDITION"
        # The client resyncs on its own; the old output misses the new filter.
        outputs, new_filter, _ = client.evaluate("PAN", "travel_documents", [value], PURPOSE)
    assert new_filter.manifest.epoch == 2
    assert new_filter.filter.contains(outputs[0])
    assert not new_filter.filter.contains(old_outputs[0])
    assert fed.runtimes["PAN"].store.matching.count_entries("travel_documents", 1) == 0


def test_follow_up_needs_a_hit_and_granted_attributes(fed: Any) -> None:
    doc = _document(fed, 2)
    value = document_input(doc["document_number"], doc["issuing_state"])
    with MatchClient(fed.runtimes["CRI"]) as client:
        outputs, cached, _ = client.evaluate("PAN", "travel_documents", [value], PURPOSE)
        hit = Outcome(0, "PAN", "travel_documents", "hit", epoch=1, output=outputs[0])
        # A made-up output, and one sharing the public prefix of a real entry, are no hits.
        entry = cached.filter.values[0].tobytes()
        for fake in (os.urandom(64), entry + os.urandom(64 - len(entry))):
            miss = dataclasses.replace(hit, output=fake)
            status, message = _status(
                lambda m=miss: client.follow_up(m, case_reference="C-1", purpose=PURPOSE)
            )
            assert status == "FAILED_PRECONDITION" and "not a hit" in message
        status, _ = _status(
            lambda: client.follow_up(
                hit, case_reference="C-1", purpose=PURPOSE, attributes=["nationality"]
            )
        )
        assert status == "PERMISSION_DENIED"
        status, _ = _status(
            lambda: client.follow_up(
                hit, case_reference="C-1", purpose=PURPOSE, attributes=["home_address"]
            )
        )
        assert status == "INVALID_ARGUMENT"
        record = client.follow_up(hit, case_reference="C-1", purpose=PURPOSE)
    assert record.status == "released" and set(record.released or {}) == {"first_seen_quarter"}
