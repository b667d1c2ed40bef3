"""Full disk: the node's SQLite database on a small filesystem (or under a file-size quota).

A tmpfs of a few megabytes is mounted when the test runs as root with CAP_SYS_ADMIN (CI and
this sandbox do); otherwise those tests skip and the quota variant (``RLIMIT_FSIZE`` in the
child) still runs. What must hold: an import that runs out of space fails and leaves the store
exactly as it was (integrity check, counts, import log), and succeeds once there is room; a
serving node whose disk is full answers UNAVAILABLE, stays up, and serves again once space is
freed, with every acknowledged exchange in an audit chain that verifies.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from enlace.v1 import node_pb2
from faults.support import REPO, child_env, cli, cli_json
from node.client import PeerClient
from node.demo.federation import create_federation
from node.demo.processes import NodeProcess
from node.errors import PeerError
from node.records.generate import generate
from node.runtime import open_runtime
from node.store import open_store
from node.store.records_schema import DATASET_TABLES, imports

ROWS = 12000  # the rest needs more than the 4 MB file-size quota below


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mountpoint)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(directory: Path, leave: int = 0) -> Path:
    """Write a file until the filesystem refuses (ENOSPC), then give back ``leave`` bytes."""
    filler = directory / f"filler-{uuid.uuid4().hex}"
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 16384)
        except OSError:
            pass
        handle.truncate(max(0, handle.tell() - leave))
    return filler


def files(tmp_path: Path) -> tuple[Path, Path]:
    """Encounters split in two: a seed (acknowledged before the fault) and the rest."""
    generate("PAN", ROWS, 3, tmp_path / "data")
    lines = (tmp_path / "data" / "encounters.csv").read_text(encoding="utf-8").splitlines(True)
    seed, rest = tmp_path / "seed.csv", tmp_path / "rest.csv"
    seed.write_text("".join(lines[:301]), encoding="utf-8")
    rest.write_text(lines[0] + "".join(lines[301:]), encoding="utf-8")
    return seed, rest


def home_with_database(tmp_path: Path, database: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "node.toml").write_text(
        'country = "PAN"\nname = "Panamá"\nendpoint = "127.0.0.1:7001"\n'
        f'database_url = "sqlite+pysqlite:///{database}"\n',
        encoding="utf-8",
    )
    return home


def snapshot(database: Path) -> dict[str, Any]:
    store = open_store(f"sqlite+pysqlite:///{database}", migrate=False)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
            tables = [*DATASET_TABLES.values(), imports]
            return {t.name: sorted(map(tuple, conn.execute(select(t)))) for t in tables}
    finally:
        store.close()


def ingest(home: Path, path: Path, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "node.cli.main", "ingest", "encounters", str(path)]
    return subprocess.run(
        [*command, "--home", str(home)],
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        check=False,
        timeout=300,
        **kwargs,
    )


def test_an_import_on_a_full_disk_fails_and_loses_nothing(small_fs: Path, tmp_path: Path) -> None:
    seed, rest = files(tmp_path)
    database = small_fs / "pan.db"
    home = home_with_database(tmp_path, database)
    assert ingest(home, seed).returncode == 0
    before = snapshot(database)
    filler = fill(small_fs, leave=256 * 1024)  # room to start the import, not to finish it
    failed = ingest(home, rest)
    assert failed.returncode != 0
    assert b"disk is full" in failed.stderr, failed.stderr[-500:]
    assert snapshot(database) == before
    filler.unlink()
    done = ingest(home, rest)
    assert done.returncode == 0, done.stderr.decode()[-1000:]
    assert len(snapshot(database)["encounters"]) == ROWS


def test_an_import_on_a_full_disk_reports_one_line(small_fs: Path, tmp_path: Path) -> None:
    seed, rest = files(tmp_path)
    home = home_with_database(tmp_path, small_fs / "pan.db")
    assert ingest(home, seed).returncode == 0
    fill(small_fs, leave=256 * 1024)
    failed = ingest(home, rest)
    assert failed.returncode != 0 and b"Traceback" not in failed.stderr
    assert b"database or disk is full" in failed.stderr and b"free disk space" in failed.stderr


@pytest.mark.slow
def test_an_import_over_a_file_size_quota_fails_and_loses_nothing(tmp_path: Path) -> None:
    """The same without a mount: the child may not grow any file beyond a limit (EFBIG)."""
    seed, rest = files(tmp_path)
    database = tmp_path / "pan.db"
    home = home_with_database(tmp_path, database)
    assert ingest(home, seed).returncode == 0
    before = snapshot(database)
    # Above the 2.8 MB copy of libsodium rbcl writes at import, below what the rest needs.
    limit = max(4 * 1024 * 1024, database.stat().st_size + 1024 * 1024)

    def quota() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    failed = ingest(home, rest, preexec_fn=quota)
    assert failed.returncode != 0
    assert snapshot(database) == before
    assert ingest(home, rest).returncode == 0
    assert len(snapshot(database)["encounters"]) == ROWS


def test_a_serving_node_on_a_full_disk_answers_unavailable_and_recovers(
    small_fs: Path, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    urls = {c: f"sqlite+pysqlite:///{tmp_path / f'{c}.db'}" for c in ("CRI", "CRM")}
    urls["PAN"] = f"sqlite+pysqlite:///{small_fs / 'pan.db'}"
    fed = create_federation(tmp_path / "fed", ("PAN", "CRI"), now, database_urls=urls)
    pan = NodeProcess("PAN", fed.homes["PAN"], fed.endpoint("PAN"))
    pan.start()
    cri = open_runtime(fed.homes["CRI"])
    acknowledged: list[str] = []
    try:
        pan.wait_ready(time.monotonic() + 60)
        with PeerClient(cri, "PAN", timeout=3.0) as client:

            def calls(count: int) -> list[str]:
                statuses = []
                for _ in range(count):
                    try:
                        reply = client.call(
                            "/enlace.v1.NodeService/Ping",
                            node_pb2.PingRequest(payload=b"x" * 2000),
                            node_pb2.PingResponse,
                        )
                        acknowledged.append(reply.request_digest)
                        statuses.append("OK")
                    except PeerError as exc:
                        statuses.append(exc.status_name)
                        assert "disk" not in exc.message and "sqlite" not in exc.message
                return statuses

            assert set(calls(20)) == {"OK"}
            filler = fill(small_fs)
            full = calls(200)
            assert "UNAVAILABLE" in full and set(full) <= {"OK", "UNAVAILABLE"}, set(full)
            assert pan.process is not None and pan.process.poll() is None, "the node died"
            filler.unlink()
            assert set(calls(20)) == {"OK"}
    finally:
        pan.stop()
        cri.close()
    verified = cli_json("audit", "verify", "--home", str(fed.homes["PAN"].root))
    assert verified["status"] == "ok"
    runtime = open_runtime(fed.homes["PAN"])
    try:
        logged = {e.record.request_digest for e in runtime.store.iter_audit()}
    finally:
        runtime.close()
    assert set(acknowledged) <= logged


def test_no_process_leaves_a_copy_of_libsodium_in_the_temporary_directory(tmp_path: Path) -> None:
    """rbcl writes libsodium to TMPDIR at every import; crypto.ristretto deletes it (it
    leaked 2.8 MB per process, which fills a disk with CLI runs and filter workers)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import crypto.ristretto, sys; print(sys.modules['rbcl._sodium'].lib_path)",
        ],
        cwd=REPO,
        env=child_env(TMPDIR=str(scratch)),
        capture_output=True,
        check=True,
    )
    assert done.stdout.decode().startswith(str(scratch))
    assert os.listdir(scratch) == []
    assert cli("--help").returncode == 0
