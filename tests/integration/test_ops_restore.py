"""Restoring a backup made without keys, and restores that fail: every check comes before the
first write, the operator's keys are checked against the node's published ones, and a failed
restore leaves the target home (and the target database) as they were, so it can be re-run."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from ops_support import serving_in_place_of_pan

from enlace.v1 import node_pb2
from node.errors import AuditIntegrityError, ConfigError
from node.home import NodeHome
from node.ops.backup import backup_node, restore_node
from node.server.jobs import write_checkpoint

PING = "/enlace.v1.NodeService/Ping"


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root`` with its bytes and mode: what "left as it was" compares."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mode)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _keyless_backup(live, tmp_path: Path):  # type: ignore[no-untyped-def]
    pan = live.runtimes["PAN"]
    with live.client("CRI", "PAN") as client:
        client.call(PING, node_pb2.PingRequest(), node_pb2.PingResponse)
    assert write_checkpoint(pan) == 1
    archive = tmp_path / "pan.tar.gz"
    return archive, backup_node(pan.home, archive, pan.clock.now(), include_keys=False)


def _with_keys_of(home: NodeHome, target: Path) -> Path:
    target.mkdir()
    shutil.copytree(home.root / "keys", target / "keys")
    return target


def test_backup_without_keys_restores_into_the_nodes_keys(live, tmp_path, restore_target) -> None:  # type: ignore[no-untyped-def]
    pan = live.runtimes["PAN"]
    archive, manifest = _keyless_backup(live, tmp_path)
    target = _with_keys_of(pan.home, tmp_path / "restored")
    keys_before = _snapshot(target / "keys")
    report = restore_node(
        archive, target, database_url=restore_target(manifest.schema), clock=live.clocks["PAN"]
    )
    assert (report.home, report.audit_entries, report.checkpoints) == (target, 1, 1)
    assert _snapshot(target / "keys") == keys_before  # the operator's keys, untouched
    assert not (target / "keys").is_symlink()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging

    with serving_in_place_of_pan(live, target):
        pass  # it answered CRI's Ping


def test_backup_without_keys_refuses_missing_or_foreign_keys_before_writing(
    live, tmp_path, restore_target
) -> None:  # type: ignore[no-untyped-def]
    archive, manifest = _keyless_backup(live, tmp_path)
    url = restore_target(manifest.schema)
    empty = tmp_path / "empty"
    with pytest.raises(ConfigError, match="made without keys") as missing:
        restore_node(archive, empty, database_url=url)
    assert "keys" in missing.value.hint
    assert not empty.exists()

    foreign = _with_keys_of(live.runtimes["CRI"].home, tmp_path / "foreign")
    before = _snapshot(foreign)
    with pytest.raises(ConfigError, match="not a signing key of PAN"):
        restore_node(archive, foreign, database_url=url)
    assert _snapshot(foreign) == before

    partial = _with_keys_of(live.runtimes["PAN"].home, tmp_path / "partial")
    (partial / "keys" / "x25519.key").unlink()
    before = _snapshot(partial)
    with pytest.raises(ConfigError, match=r"lacks x25519\.key"):
        restore_node(archive, partial, database_url=url)
    assert _snapshot(partial) == before

    crowded = _with_keys_of(live.runtimes["PAN"].home, tmp_path / "crowded")
    (crowded / "node.toml").write_text("")
    with pytest.raises(ConfigError, match="already holds a node"):
        restore_node(archive, crowded, database_url=url)

    (partial / "keys" / "x25519.key").write_bytes(
        (live.runtimes["PAN"].home.root / "keys" / "x25519.key").read_bytes()
    )
    (partial / "keys" / "x25519.key").chmod(0o600)
    report = restore_node(archive, partial, database_url=url, clock=live.clocks["PAN"])
    assert report.audit_entries == 1  # the database was never touched by the refusals


def test_a_restore_failing_verification_leaves_nothing_and_can_be_rerun(
    live, tmp_path, restore_target
) -> None:  # type: ignore[no-untyped-def]
    pan = live.runtimes["PAN"]
    with live.client("CRI", "PAN") as client:
        client.call(PING, node_pb2.PingRequest(), node_pb2.PingResponse)
    archive = tmp_path / "pan.tar.gz"
    manifest = backup_node(pan.home, archive, pan.clock.now())
    lying = tmp_path / "lying.tar.gz"  # a manifest claiming a head the dump does not hold
    with tarfile.open(archive) as source, tarfile.open(lying, "w:gz") as copy:
        for info in source.getmembers():
            data = source.extractfile(info).read()  # type: ignore[union-attr]
            if info.name == "manifest.json":
                data = json.dumps({**json.loads(data), "audit_head": "0" * 64}).encode()
                info.size = len(data)
            import io

            copy.addfile(info, io.BytesIO(data))
    url = restore_target(manifest.schema)
    work = tmp_path / "work"
    work.mkdir()
    target = work / "restored"
    with pytest.raises(AuditIntegrityError, match="without the head the backup recorded"):
        restore_node(lying, target, database_url=url, clock=live.clocks["PAN"])
    assert list(work.iterdir()) == []  # neither the home nor its staging folder
    report = restore_node(archive, target, database_url=url, clock=live.clocks["PAN"])
    assert report.audit_entries == 1  # same home, same database: nothing was left behind


def test_a_backup_with_keys_never_mixes_with_keys_in_place(live, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pan = live.runtimes["PAN"]
    archive = tmp_path / "pan.tar.gz"
    backup_node(pan.home, archive, pan.clock.now())
    target = _with_keys_of(pan.home, tmp_path / "restored")
    before = _snapshot(target)
    with pytest.raises(ConfigError, match="already holds a node"):
        restore_node(archive, target, database_url="sqlite:///unused.db")
    assert _snapshot(target) == before
