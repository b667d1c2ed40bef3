"""Backup of a serving node, restore into a fresh home: the audit log verifies and the node
serves again (SQLite online backup; pg_dump / pg_restore on PostgreSQL)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from ops_support import serving_in_place_of_pan

from enlace.v1 import node_pb2
from node.errors import ConfigError
from node.ops.backup import backup_node, read_archive, restore_node
from node.server.jobs import write_checkpoint

PING = "/enlace.v1.NodeService/Ping"


def test_backup_restore_verify_and_serve_again(live, tmp_path: Path, restore_target) -> None:  # type: ignore[no-untyped-def]
    pan = live.runtimes["PAN"]
    with live.client("CRI", "PAN") as client:
        for _ in range(3):
            client.call(PING, node_pb2.PingRequest(), node_pb2.PingResponse)
    assert write_checkpoint(pan) == 3
    archive = tmp_path / "pan.tar.gz"
    manifest = backup_node(pan.home, archive, pan.clock.now())  # while PAN serves
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    assert manifest.audit_seq == 3 and manifest.country == "PAN"
    assert "home/keys/signing.key" in manifest.files

    target = tmp_path / "restored"
    report = restore_node(archive, target, database_url=restore_target(manifest.schema))
    assert (report.audit_entries, report.checkpoints, report.country) == (3, 1, "PAN")
    assert oct((target / "keys" / "signing.key").stat().st_mode & 0o777) == "0o600"
    assert oct((target / "keys").stat().st_mode & 0o777) == "0o700"  # as `enlace init` makes it
    assert oct((pan.home.root / "keys").stat().st_mode & 0o777) == "0o700"

    with serving_in_place_of_pan(live, target) as restored:
        assert restored.store.audit_head()[0] == 4  # the chain goes on from the backup


def test_restore_refuses_an_altered_archive_and_an_existing_home(live, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pan = live.runtimes["PAN"]
    archive = tmp_path / "pan.tar.gz"
    backup_node(pan.home, archive, pan.clock.now(), include_keys=False)
    manifest, contents = read_archive(archive)
    assert not any(name.startswith("home/keys/") for name in contents)
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        backup_node(pan.home, archive, pan.clock.now())
    mistyped = tmp_path / "mnt" / "backups" / "pan.tar.gz"  # the volume is not mounted
    with pytest.raises(ConfigError, match="does not exist; refusing to create it"):
        backup_node(pan.home, mistyped, pan.clock.now())
    assert not (tmp_path / "mnt").exists()
    with pytest.raises(ConfigError, match="already holds a node"):
        restore_node(archive, pan.home.root)

    altered = tmp_path / "altered.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(altered, "w:gz") as copy:
        for info in source.getmembers():
            data = source.extractfile(info).read()  # type: ignore[union-attr]
            if info.name == "home/member.json":
                data = json.dumps({**json.loads(data), "name": "someone else"}).encode()
                info.size = len(data)
            import io

            copy.addfile(info, io.BytesIO(data))
    with pytest.raises(ConfigError, match="does not match its hash"):
        restore_node(altered, tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()
    assert manifest.revision
