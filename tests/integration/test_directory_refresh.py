"""Nodes refresh the directory from their source, accept only verified successors, and
serve the directory they hold to peers."""

from __future__ import annotations

import dataclasses

import pytest

from node.server.jobs import refresh_directory
from node.trust.authoring import new_directory, sign_directory
from node.trust.directory import DirectoryRollbackError, DirectorySignatureError


def successor(live, signers: int = 2, version_step: int = 1):  # type: ignore[no-untyped-def]
    current = live.federation.directory
    candidate = new_directory(
        version=current.version + version_step,
        issued_at=current.issued_at,
        expires_at=current.expires_at,
        threshold=current.threshold,
        directory_keys=current.directory_keys,
        members=current.members,
    )
    for key in live.federation.directory_keys[:signers]:
        candidate = sign_directory(candidate, key)
    return candidate


def with_source(runtime, source: str):  # type: ignore[no-untyped-def]
    runtime.config = dataclasses.replace(runtime.config, directory_source=source)
    return runtime


def test_refresh_from_a_file_adopts_a_verified_successor(live, tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "published.json"
    runtime = with_source(live.runtimes["CRI"], str(source))
    source.write_text(successor(live).to_json())
    assert refresh_directory(runtime) is True
    assert runtime.directory.peek().version == 2
    assert refresh_directory(runtime) is False  # same version again: nothing to do


def test_refresh_refuses_below_threshold_and_rollback(live, tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "published.json"
    runtime = with_source(live.runtimes["CRI"], str(source))
    source.write_text(successor(live, signers=1).to_json())
    with pytest.raises(DirectorySignatureError):
        refresh_directory(runtime)
    assert runtime.directory.peek().version == 1
    source.write_text(successor(live, version_step=3).to_json())
    assert refresh_directory(runtime)
    source.write_text(successor(live, version_step=2).to_json())
    with pytest.raises(DirectoryRollbackError):
        refresh_directory(runtime)
    assert runtime.directory.peek().version == 4


def test_refresh_from_a_peer_over_the_signed_channel(live) -> None:  # type: ignore[no-untyped-def]
    newer = successor(live)
    pan = live.runtimes["PAN"]
    assert pan.directory.offer(newer, pan.clock.now())
    runtime = with_source(live.runtimes["CRI"], "peer:PAN")
    assert refresh_directory(runtime) is True
    assert runtime.directory.peek().hash == newer.hash
    assert refresh_directory(runtime) is False  # PAN answers "you are current"
