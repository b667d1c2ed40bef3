"""The querier's filter sync holds the holder to what it announced, and never goes back.

A holder (authentic, but faulty or hostile) that announces a filter of some size and then
streams more is cut off at the first message past what it announced, before anything more is
taken in; and a signed filter older than the copy this node holds (a replayed manifest, or a
holder restored from a backup) is refused unless the operator asks for a full re-sync.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from match_support import holder, serving_holder
from sqlalchemy import delete

import node.matching.peers as peers_mod
import node.matching.service as service_mod
from crypto.chunks import MIN_CHUNK_SIZE
from crypto.errors import EncodingError
from crypto.match_keys import SignedManifest, filter_sha256
from enlace.v1 import match_pb2
from node.client import PeerReply
from node.errors import PeerError
from node.matching.client import MatchClient
from node.matching.peers import SYNC, PeerFilters
from node.store.matching_store import StoredFilter, match_filters

PURPOSE = "identity_verification"
DATASET = "travel_documents"
JUNK = os.urandom(64 * 1024)


@pytest.fixture
def fed(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    return serving_holder(
        live_federation_factory(), tmp_path_factory.getbasetemp(), 300, 12, publish=[DATASET]
    )


# -- the announced size ----------------------------------------------------------------------


def _chunk(index: int, count: int, data: bytes, total: int, *, manifest: bool) -> Any:
    message = match_pb2.FilterChunk(
        kind=match_pb2.FilterChunk.FULL, total_size=total, payload_sha256=filter_sha256(b"x"),
        index=index, count=count, data=data,
    )  # fmt: skip
    if manifest:
        message.manifest.body = b"{}"
    return PeerReply(message, None, "", 0.0)  # type: ignore[arg-type]


def test_each_chunk_is_checked_as_it_arrives() -> None:
    total = 3 * MIN_CHUNK_SIZE
    stream = peers_mod._FilterStream()
    stream(_chunk(0, 3, bytes(MIN_CHUNK_SIZE), total, manifest=True))
    stream(_chunk(1, 3, bytes(MIN_CHUNK_SIZE), total, manifest=False))
    with pytest.raises(EncodingError, match=f"exceeds the announced {total} bytes"):
        stream(_chunk(2, 3, bytes(MIN_CHUNK_SIZE + 1), total, manifest=False))
    refused = {
        "the manifest": [_chunk(0, 1, b"", 10, manifest=False)],
        "announce at most": [_chunk(0, 1, b"", peers_mod.MAX_SYNC_BYTES + 1, manifest=True)],
        "300 chunks announced": [_chunk(0, 300, b"", 1864, manifest=True)],
        "only the first": [_chunk(0, 2, b"", total, manifest=True)] * 2,
        "out of order": [_chunk(0, 2, b"", total, manifest=True), _chunk(0, 2, b"", total,
                                                                        manifest=False)],
    }  # fmt: skip
    for problem, replies in refused.items():
        stream = peers_mod._FilterStream()
        with pytest.raises(EncodingError, match=problem):
            for reply in replies:
                stream(reply)
    stream = peers_mod._FilterStream()
    stream(_chunk(0, 2, b"", total, manifest=True))
    with pytest.raises(EncodingError, match="1 of 2 chunks arrived"):
        stream.finish()


@pytest.mark.parametrize(
    ("pieces", "problem"),
    [(1, "exceeds the announced"), (300, "300 chunks announced")],
)
def test_a_stream_past_its_announced_size_is_cut_off_at_once(
    fed: Any, monkeypatch: pytest.MonkeyPatch, pieces: int, problem: str
) -> None:
    # The holder announces its real filter (size and SHA-256), then sends 64 KiB pieces.
    monkeypatch.setattr(service_mod, "iter_chunks", lambda payload, size: [JUNK] * pieces)
    taken: list[int] = []
    verify = peers_mod.StreamingPeerClient._verify

    def counting(self: Any, response: Any, *args: Any) -> Any:
        taken.append(len(response.body))
        return verify(self, response, *args)

    monkeypatch.setattr(peers_mod.StreamingPeerClient, "_verify", counting)
    cri = fed.runtimes["CRI"]
    with MatchClient(cri) as client, pytest.raises(PeerError) as caught:
        client.sync("PAN", DATASET, PURPOSE)
    assert problem in caught.value.message and "refused at message 1" in caught.value.message
    assert len(taken) == 1 and sum(taken) < 70 * 1024  # one message taken in, not 300
    assert client.filters.get("PAN", DATASET) is None
    assert cri.store.matching.peer_filters() == []
    last = list(cri.store.iter_audit())[-1].record
    assert (last.direction, last.method, last.status) == ("outbound", SYNC, "UNAUTHENTICATED")
    assert problem in last.reason


# -- never back ------------------------------------------------------------------------------


def test_an_older_filter_never_replaces_a_newer_one_unless_asked(fed: Any) -> None:
    pan = holder(fed.runtimes["PAN"])
    pan_store = fed.runtimes["PAN"].store
    cri = fed.runtimes["CRI"]
    now = fed.clocks["CRI"].now()
    with MatchClient(cri) as client:
        assert client.sync("PAN", DATASET, PURPOSE).manifest.version == 1
        pan.update(fed.clocks["PAN"].now(), [DATASET], force_publish=True)
        assert client.sync("PAN", DATASET, PURPOSE).manifest.version == 2

        # A replayed, genuinely signed version 1 is refused; the cached copy stays version 2.
        old = pan_store.matching.published(DATASET, 1, 1)
        assert old is not None
        signed = SignedManifest(old.manifest, old.signature, old.key_id)
        full = match_pb2.FilterChunk.FULL
        with pytest.raises(PeerError) as caught:
            client.filters.install("PAN", DATASET, signed, full, old.encoded, now)
        assert caught.value.status_name == "FAILED_PRECONDITION"
        assert "version 1 is older than the epoch 1 version 2" in caught.value.message
        assert "--full" in caught.value.hint
        assert client.filters.get("PAN", DATASET).manifest.version == 2  # type: ignore[union-attr]
        assert [f.version for f in cri.store.matching.peer_filters()] == [2]

        # The holder goes back to version 1 (restored from a backup): a sync refuses it...
        with pan_store.engine.begin() as conn:
            conn.execute(delete(match_filters).where(match_filters.c.version == 2))
        with pytest.raises(PeerError, match="older than"):
            client.sync("PAN", DATASET, PURPOSE)
        assert [f.version for f in cri.store.matching.peer_filters()] == [2]
        # ...until the operator asks for a full re-sync.
        assert client.sync("PAN", DATASET, PURPOSE, full=True).manifest.version == 1
    assert [f.version for f in cri.store.matching.peer_filters()] == [1]
    assert PeerFilters(cri).get("PAN", DATASET).manifest.version == 1  # type: ignore[union-attr]


def test_the_store_compares_and_replaces_in_one_step(fed: Any) -> None:
    matching = fed.runtimes["CRI"].store.matching
    now = fed.clocks["CRI"].now()

    def copy(epoch: int, version: int) -> StoredFilter:
        return StoredFilter(DATASET, epoch, version, b"{}", b"s", "k", b"f", now, peer="PAN")

    assert matching.save_peer_filter(copy(2, 1)) is None
    assert matching.save_peer_filter(copy(1, 9)) == (2, 1)  # an older epoch, however new
    assert matching.save_peer_filter(copy(2, 1)) is None  # the same version again is fine
    assert matching.save_peer_filter(copy(2, 3)) is None
    assert matching.save_peer_filter(copy(2, 2)) == (2, 3)
    assert [(f.epoch, f.version) for f in matching.peer_filters()] == [(2, 3)]
    assert matching.save_peer_filter(copy(1, 1), allow_older=True) is None
    assert [(f.epoch, f.version) for f in matching.peer_filters()] == [(1, 1)]
