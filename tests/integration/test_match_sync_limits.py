"""The querier's filter sync holds the holder to what it announced.

A holder (authentic, but faulty or hostile) that announces a filter of some size and then
streams more is cut off at the first message past what it announced, before anything more is
taken in.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from match_support import holder, install, load_records, match_agreement, synthetic

import node.matching.peers as peers_mod
import node.matching.service as service_mod
from crypto.errors import EncodingError
from crypto.filter import MIN_CHUNK_SIZE
from crypto.match_keys import filter_sha256
from enlace.v1 import match_pb2
from node.client import PeerReply
from node.errors import PeerError
from node.matching.client import MatchClient
from node.matching.peers import SYNC

PURPOSE = "identity_verification"
DATASET = "travel_documents"
JUNK = os.urandom(64 * 1024)


@pytest.fixture
def fed(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    live = live_federation_factory()
    now = live.clocks["PAN"].now()
    files = synthetic(tmp_path_factory.getbasetemp(), "PAN", 300, 12)
    load_records(live.runtimes["PAN"], files, now)
    holder(live.runtimes["PAN"]).rebuild(now, [DATASET])
    install(live.runtimes, match_agreement("PAN", "CRI", now), now)
    live.serve("PAN")
    return live


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
