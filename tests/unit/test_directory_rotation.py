"""Directory updates: versions only go up, and directory keys rotate the TUF way."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crypto.signing import SigningKey
from node.trust import (
    Directory,
    DirectoryExpiredError,
    DirectoryKey,
    DirectoryRollbackError,
    DirectorySignatureError,
    install_directory,
    new_directory,
    sign_directory,
    verify_chain,
    verify_root,
    verify_update,
)

T0 = datetime(2025, 6, 1, tzinfo=UTC)


def version(
    n: int,
    keys: Sequence[SigningKey],
    signers: Sequence[SigningKey],
    threshold: int = 2,
    issued: datetime = T0,
    days: int = 90,
    federation: str = "crm-enlace",
) -> Directory:
    d = new_directory(
        version=n,
        issued_at=issued,
        expires_at=issued + timedelta(days=days),
        threshold=threshold,
        directory_keys=[DirectoryKey.from_public_key(k.public_key, "holder") for k in keys],
        federation=federation,
    )
    for k in signers:
        d = sign_directory(d, k)
    return d


@pytest.fixture(scope="module")
def keys() -> list[SigningKey]:
    return [SigningKey.generate() for _ in range(6)]


def test_update_with_same_keys_accepted(keys: list[SigningKey]) -> None:
    a, b, c = keys[:3]
    v1 = verify_root(version(1, [a, b, c], [a, b]), T0)
    v2 = version(2, [a, b, c], [b, c])
    assert verify_update(v1, v2, T0) is v2


def test_rollback_refused(keys: list[SigningKey]) -> None:
    a, b, c = keys[:3]
    v1 = version(1, [a, b, c], [a, b])
    v2 = version(2, [a, b, c], [a, b])
    with pytest.raises(DirectoryRollbackError, match="not newer") as info:
        verify_update(v2, v1, T0)
    assert info.value.status_name == "FAILED_PRECONDITION"


def test_same_version_identical_is_noop_different_is_refused(keys: list[SigningKey]) -> None:
    a, b, c = keys[:3]
    v2 = version(2, [a, b, c], [a, b])
    reparsed = Directory.from_dict(v2.to_dict())
    assert verify_update(v2, reparsed, T0) is v2
    other = version(2, [a, b, c], [a, b], days=30)
    with pytest.raises(DirectoryRollbackError):
        verify_update(v2, other, T0)


def test_update_signed_only_by_new_keys_refused(keys: list[SigningKey]) -> None:
    a, b, c, d, e, f = keys
    v1 = version(1, [a, b, c], [a, b])
    takeover = version(2, [d, e, f], [d, e, f])
    verify_root(takeover, T0)  # fine on its own: a root is self-signed
    with pytest.raises(DirectorySignatureError, match="trusted v1"):
        verify_update(v1, takeover, T0)


def test_rotation_needs_old_and_new_thresholds(keys: list[SigningKey]) -> None:
    a, b, c, d, e, _ = keys
    v1 = version(1, [a, b, c], [a, b])
    # v2 retires a and b, introduces d and e; threshold stays 2.
    only_old = version(2, [c, d, e], [a, b])
    with pytest.raises(DirectorySignatureError, match="v2 itself"):
        verify_update(v1, only_old, T0)
    one_old = version(2, [c, d, e], [c, d, e])
    with pytest.raises(DirectorySignatureError, match=r"1 valid signature.*trusted v1"):
        verify_update(v1, one_old, T0)
    rotated = version(2, [c, d, e], [a, b, d, e])
    assert verify_update(v1, rotated, T0) is rotated
    # From now on only the new keys count.
    v3_by_retired = version(3, [c, d, e], [a, b])
    with pytest.raises(DirectorySignatureError):
        verify_update(rotated, v3_by_retired, T0)
    assert verify_update(rotated, version(3, [c, d, e], [c, e]), T0).version == 3


def test_chain_walks_through_a_rotation(keys: list[SigningKey]) -> None:
    a, b, c, d, e, f = keys
    v1 = version(1, [a, b, c], [a, b])
    v2 = version(2, [d, e, f], [a, b, d, e], issued=T0 - timedelta(days=200), days=30)
    v3 = version(3, [d, e, f], [e, f])
    with pytest.raises(DirectorySignatureError):
        verify_update(v1, v3, T0)  # v1 keys never signed v3
    assert verify_chain(v1, [v2, v3], T0) is v3  # expired v2 is only a stepping stone
    with pytest.raises(DirectoryExpiredError):
        verify_chain(v1, [v2], T0)


def test_expired_candidate_refused_even_if_trusted_expired(keys: list[SigningKey]) -> None:
    a, b, c = keys[:3]
    old = version(1, [a, b, c], [a, b], issued=T0 - timedelta(days=120))
    fresh = version(2, [a, b, c], [a, c])
    assert verify_update(old, fresh, T0) is fresh  # an expired node can still recover
    stale = version(3, [a, b, c], [a, c], issued=T0 - timedelta(days=100))
    with pytest.raises(DirectoryExpiredError):
        verify_update(fresh, stale, T0)


def test_other_federation_refused(keys: list[SigningKey]) -> None:
    a, b, c = keys[:3]
    v1 = version(1, [a, b, c], [a, b])
    with pytest.raises(DirectorySignatureError, match="federation"):
        verify_update(v1, version(2, [a, b, c], [a, b], federation="elsewhere"), T0)


def test_threshold_can_change_with_rotation(keys: list[SigningKey]) -> None:
    a, b, c, d, _, _ = keys
    v1 = version(1, [a, b, c], [a, b], threshold=2)
    v2 = version(2, [a, b, c, d], [a, b, c], threshold=3)
    assert verify_update(v1, v2, T0) is v2
    with pytest.raises(DirectorySignatureError, match=r"2 valid signature.*3 required"):
        verify_update(v2, version(3, [a, b, c, d], [a, b], threshold=3), T0)


def test_install_refuses_rollback_and_keeps_file(tmp_path: Path, keys: list[SigningKey]) -> None:
    a, b, c = keys[:3]
    v1 = version(1, [a, b, c], [a, b])
    v2 = version(2, [a, b, c], [b, c])
    install_directory(tmp_path, v1, T0)
    assert install_directory(tmp_path, v2, T0) == (v2, True)
    before = (tmp_path / "directory.json").read_bytes()
    with pytest.raises(DirectoryRollbackError):
        install_directory(tmp_path, v1, T0)
    assert (tmp_path / "directory.json").read_bytes() == before
