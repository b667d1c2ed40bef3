"""Biometric hit / no-hit end to end over real gRPC with mutual TLS, on both backends.

PAN holds synthetic templates imported through the importer; CRI probes through
:class:`~node.biometrics.client.BiometricClient`, exactly as ``enlace match biometric`` does.
Genuine probes are fresh captures of PAN's templates; impostors are faces PAN never enrolled.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bio_support import (
    PURPOSE,
    biometric_agreement,
    generated,
    install,
    load,
    pan_gallery,
    read_rows,
    recapture,
    strangers,
    vectors,
)

from crypto.biohash import DEFAULT_BITS, ProjectionKey, paired_hamming, pairwise_secret, protect
from enlace.v1 import biometric_pb2
from node.biometrics.client import BiometricClient
from node.biometrics.holder import GalleryHolder
from node.biometrics.service import GET_EPOCH, SEARCH
from node.errors import PeerError
from node.runtime import NodeRuntime
from policies.agreement import Agreement, Grant, Quotas


@pytest.fixture
def fed(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    return pan_gallery(live_federation_factory, tmp_path_factory.getbasetemp())


def _holder(runtime: NodeRuntime) -> GalleryHolder:
    return GalleryHolder(runtime.store, runtime.home, runtime.config.country, runtime.directory)


def _search(fed: Any, codes: np.ndarray, epoch: int, key_id: str) -> Any:
    request = biometric_pb2.BiometricSearchRequest(
        epoch=epoch, key_id=key_id, bits=codes.shape[1] * 8, codes=[c.tobytes() for c in codes]
    )
    with fed.client("CRI", "PAN") as client:
        return client.call(
            SEARCH, request, biometric_pb2.BiometricSearchResponse, purpose=PURPOSE
        ).message


def test_genuine_probes_hit_impostors_miss_and_a_hit_is_followed_up_once(fed: Any) -> None:
    files: Path = fed.files
    rows = read_rows(files / "biometric_templates.csv")[:5]
    probes = np.concatenate([recapture(vectors(rows), seed=1), strangers(5, seed=2)])
    with BiometricClient(fed.runtimes["CRI"]) as client:
        report = client.search(probes, PURPOSE)
        pan = [o for o in report.outcomes if o.peer == "PAN"]
        assert [o.status for o in pan[5:]] == ["no hit"] * 5
        assert all(o.hit and len(o.reference) == 40 for o in pan[:5])
        assert sum(o.status == "strong" for o in pan[:5]) >= 4
        assert all(not o.reference for o in pan[5:])
        assert {o.status for o in report.outcomes if o.peer == "HND"} == {"not granted"}
        record = client.follow_up(
            "PAN", purpose=PURPOSE, case_reference="CRI-CASE-9", reference=pan[0].reference
        )
        with pytest.raises(PeerError) as again:
            client.follow_up(
                "PAN", purpose=PURPOSE, case_reference="CRI-CASE-9", reference=pan[0].reference
            )
        shared = client.peer_key("PAN", PURPOSE)
    assert again.value.status_name == "FAILED_PRECONDITION"
    person = rows[0]["person_id"]
    encounters = [r for r in read_rows(files / "encounters.csv") if r["person_id"] == person]
    assert record.status == "released"
    assert record.released is not None
    assert record.released["nationality"] == encounters[-1]["nationality"]
    assert record.released["encounters"] == str(len(encounters))
    # PAN's audit: the probes' digests and counts, never a record id or a code.
    entries = [
        e.record
        for e in fed.runtimes["PAN"].store.iter_audit()
        if e.record.method == SEARCH and e.record.decision == "allowed"
    ]
    assert len(entries) == 1
    extra = dict(entries[0].extra)
    codes = protect(probes, shared.key)
    assert extra["probes"] == 10
    assert extra["code_sha256"] == ",".join(hashlib.sha256(c.tobytes()).hexdigest() for c in codes)
    assert (extra["strong"] + extra["probable"], extra["no_hit"]) == (5, 5)
    logged = json.dumps(extra)
    assert not any(r["record_id"] in logged for r in read_rows(files / "biometric_templates.csv"))


def test_a_probe_from_a_peer_without_a_biometric_grant_is_refused(fed: Any) -> None:
    now = fed.clocks["PAN"].now()
    start = (now - dt.timedelta(days=1)).replace(microsecond=0)
    matching_only = Agreement(
        id="PAN-HND-MATCH-ONLY",
        version=1,
        parties=("PAN", "HND"),
        title="Matching only",
        valid_from=start,
        valid_until=start + dt.timedelta(days=365),
        grants=(
            Grant(
                holder="PAN",
                requester="HND",
                service="match",
                datasets=("travel_documents",),
                purposes=(PURPOSE,),
                quotas=Quotas(per_day=100, per_quarter=None),
            ),
        ),
    )
    install(fed.runtimes, matching_only, now)
    probe = vectors(read_rows(fed.files / "biometric_templates.csv")[:1])
    with BiometricClient(fed.runtimes["HND"]) as client:
        assert {o.status for o in client.search(probe, PURPOSE).outcomes} == {"not granted"}
        asked = client.search(probe, PURPOSE, peers=["PAN"], ask_all=True).outcomes
    assert [(o.status, o.code) for o in asked] == [("error", "PERMISSION_DENIED")]
    with fed.client("HND", "PAN") as client, pytest.raises(PeerError) as refused:
        client.call(
            SEARCH,
            biometric_pb2.BiometricSearchRequest(
                epoch=1, key_id="x", bits=4096, codes=[bytes(512)]
            ),
            biometric_pb2.BiometricSearchResponse,
            purpose=PURPOSE,
        )
    assert refused.value.status_name == "PERMISSION_DENIED"
    assert "biometric" in refused.value.message


def test_codes_under_different_pairwise_keys_disagree_on_about_half_their_bits(fed: Any) -> None:
    now = fed.clocks["PAN"].now()
    pan = _holder(fed.runtimes["PAN"])
    state = pan.state()
    for_cri, for_hnd = pan.key_for("CRI", state, now), pan.key_for("HND", state, now)
    with BiometricClient(fed.runtimes["CRI"]) as client:
        assert client.peer_key("PAN", PURPOSE).key.key_id == for_cri.key_id  # both sides agree
    faces = vectors(read_rows(fed.files / "biometric_templates.csv"))
    bits = state.bits
    assert bits == DEFAULT_BITS == for_cri.bits
    across = paired_hamming(protect(faces, for_cri), protect(faces, for_hnd), bits) / bits
    mated = paired_hamming(protect(faces, for_cri), protect(recapture(faces, 3), for_cri), bits)
    assert len(faces) >= 50
    assert abs(across.mean() - 0.5) < 0.02
    assert across.min() > 0.4
    assert (mated / bits).mean() < 0.3


def test_rotation_makes_old_codes_miss_and_stale_epochs_are_refused(fed: Any) -> None:
    genuine = recapture(vectors(read_rows(fed.files / "biometric_templates.csv")[:4]), 5)
    with BiometricClient(fed.runtimes["CRI"]) as client:
        old = client.peer_key("PAN", PURPOSE)
        assert all(o.hit for o in client.search(genuine, PURPOSE, peers=["PAN"]).outcomes)
        old_codes = protect(genuine, old.key)
        now = fed.clocks["PAN"].now()
        state, reports = _holder(fed.runtimes["PAN"]).rotate(now, ["CRI"])
        assert state.epoch == old.epoch + 1 and reports[0].rebuilt
        with pytest.raises(PeerError) as stale:
            _search(fed, old_codes, old.epoch, old.key.key_id)
        assert stale.value.status_name == "FAILED_PRECONDITION"
        assert "resync epoch" in stale.value.message
        with fed.client("CRI", "PAN") as raw:
            current = raw.call(
                GET_EPOCH,
                biometric_pb2.BiometricEpochRequest(),
                biometric_pb2.BiometricEpochResponse,
                purpose=PURPOSE,
            ).message
        assert current.epoch == state.epoch and current.key_id != old.key.key_id
        missed = _search(fed, old_codes, current.epoch, current.key_id)
        assert [r.band for r in missed.results] == [biometric_pb2.ProbeResult.NO_HIT] * 4
        # The client still holds the old key: it is told to resync, does, and hits again.
        again = client.search(genuine, PURPOSE, peers=["PAN"]).outcomes
    assert all(o.hit and o.epoch == state.epoch for o in again)


def test_probes_of_code_format_1_are_refused_by_name(fed: Any) -> None:
    """A peer still sending format-1 codes (512 bits) learns why, before anything is searched."""
    with BiometricClient(fed.runtimes["CRI"]) as client:
        shared = client.peer_key("PAN", PURPOSE)
    with pytest.raises(PeerError) as refused:
        _search(fed, np.zeros((2, 64), np.uint8), shared.epoch, shared.key.key_id)
    assert refused.value.status_name == "INVALID_ARGUMENT"
    assert "format 1" in refused.value.message and "bits" in refused.value.message
    assert shared.key.bits == DEFAULT_BITS


def test_probes_are_metered_by_the_agreement_quota(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    live = live_federation_factory()
    now = live.clocks["PAN"].now()
    files = generated(tmp_path_factory.getbasetemp(), "PAN")
    load(live.runtimes["PAN"], files, now)
    install(live.runtimes, biometric_agreement("PAN", "CRI", now, per_day=6), now)
    live.serve("PAN")
    faces = recapture(vectors(read_rows(files / "biometric_templates.csv")[:4]), 7)
    with BiometricClient(live.runtimes["CRI"]) as client:
        first = client.search(faces, PURPOSE, peers=["PAN"]).outcomes  # 1 (epoch) + 4 probes
        second = client.search(faces, PURPOSE, peers=["PAN"]).outcomes  # 4 more: over 6
        last = client.search(faces[:1], PURPOSE, peers=["PAN"]).outcomes  # exactly the 6th
    assert all(o.hit for o in first)
    assert {(o.status, o.code) for o in second} == {("error", "RESOURCE_EXHAUSTED")}
    assert last[0].hit


def test_a_holder_announcing_an_unusable_epoch_is_one_error_row_not_an_aborted_search(
    fed: Any,
) -> None:
    """HND answers GetEpoch with 64-value templates under a key id it derived consistently (a
    faulty or hostile implementation); PAN's answers must survive and HND's be an error."""
    install(fed.runtimes, biometric_agreement("HND", "CRI", fed.clocks["HND"].now()),
            fed.clocks["HND"].now())  # fmt: skip
    fed.serve("HND")
    hnd_key = fed.federation.homes["HND"].keys.load_x25519_private()
    cri_public = fed.federation.homes["CRI"].keys.x25519_public()

    class Faulty:
        """HND's real client, whose GetEpoch answer is rewritten on the way in."""

        def __init__(self, real: Any) -> None:
            self.real = real

        def call(self, method: str, request: Any, response: Any, purpose: str = "") -> Any:
            reply = self.real.call(method, request, response, purpose=purpose)
            if method == GET_EPOCH:
                answer = reply.message
                secret = pairwise_secret(hnd_key, cri_public, me="HND", peer="CRI",
                                         epoch=answer.epoch)  # fmt: skip
                answer.dimension = 64
                answer.key_id = ProjectionKey.from_secret(secret, 64, answer.bits).key_id
            return reply

        def close(self) -> None:
            self.real.close()

    rows = read_rows(fed.files / "biometric_templates.csv")[:2]
    with BiometricClient(fed.runtimes["CRI"]) as client:
        real = client.client("HND")
        client._clients["HND"] = Faulty(real)  # type: ignore[assignment]
        report = client.search(recapture(vectors(rows), seed=3), PURPOSE)
    by_peer = {p: [o for o in report.outcomes if o.peer == p] for p in ("PAN", "HND")}
    assert all(o.hit for o in by_peer["PAN"]) and len(by_peer["PAN"]) == 2
    assert [o.status for o in by_peer["HND"]] == ["error", "error"]
    assert "64-value templates" in by_peer["HND"][0].detail
