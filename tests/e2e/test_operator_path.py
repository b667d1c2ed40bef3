"""An operator's path with the CLI only: init two nodes, build and publish a directory,
serve, list peers, and audit — including detection of a tampered audit log."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

from node.demo.processes import NodeProcess
from node.home import NodeHome


def enlace(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, "-m", "node.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    if check:
        assert completed.returncode == 0, completed.stderr + completed.stdout
    return completed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_operator_path_from_init_to_audit(tmp_path: Path) -> None:
    homes = {c: tmp_path / c.lower() for c in ("PAN", "CRI")}
    for country, home in homes.items():
        enlace(
            "init",
            "--home",
            str(home),
            "--country",
            country,
            "--endpoint",
            f"127.0.0.1:{free_port()}",
        )
        assert oct((home / "keys" / "signing.key").stat().st_mode & 0o777) == "0o600"
    again = enlace("init", "--home", str(homes["PAN"]), "--country", "PAN", check=False)
    assert again.returncode == 1 and "refusing" in again.stderr

    keys = [tmp_path / f"dir{i}.key" for i in (1, 2, 3)]
    for key in keys:
        enlace("directory", "keygen", "--out", str(key))
    directory = tmp_path / "directory.json"
    enlace(
        "directory",
        "new",
        "--out",
        str(directory),
        "--threshold",
        "2",
        "--version",
        "1",
        *[arg for key in keys for arg in ("--key-pub", f"{key}.pub")],
    )
    for home in homes.values():
        enlace("directory", "add-member", str(directory), "--member", str(home / "member.json"))
    enlace("directory", "sign", str(directory), "--key", str(keys[0]))
    unsigned = enlace("directory", "verify", str(directory), check=False)
    assert unsigned.returncode == 1  # 1 of 2 signatures
    enlace("directory", "sign", str(directory), "--key", str(keys[2]))
    assert json.loads(enlace("directory", "verify", str(directory), "--json").stdout)
    for home in homes.values():
        enlace("directory", "publish", str(directory), "--home", str(home))

    pan = NodeProcess(
        "PAN",
        NodeHome(homes["PAN"]),
        json.loads((homes["PAN"] / "member.json").read_text())["endpoint"],
    )
    pan.start()
    try:
        import time

        pan.wait_ready(time.monotonic() + 30)
        peers = json.loads(enlace("peers", "--home", str(homes["CRI"]), "--json").stdout)
        assert [p["country"] for p in peers] == ["PAN"]
        assert peers[0]["reachable"] is True and peers[0]["directory_version"] == 1
    finally:
        assert pan.stop() == 0  # graceful shutdown on SIGTERM

    shown = json.loads(enlace("audit", "show", "--home", str(homes["CRI"]), "--json").stdout)
    assert {row["method"].rsplit("/", 1)[1] for row in shown} == {"Ping", "GetInfo"}
    assert all(row["direction"] == "outbound" and row["status"] == "OK" for row in shown)
    verified = json.loads(enlace("audit", "verify", "--home", str(homes["PAN"]), "--json").stdout)
    assert verified["status"] == "ok" and verified["entries"] == 2

    evidence = tmp_path / "evidence.json"
    enlace("audit", "export", "1", "--home", str(homes["PAN"]), "--out", str(evidence))
    report = json.loads(
        enlace(
            "audit", "check-evidence", str(evidence), "--directory", str(directory), "--json"
        ).stdout
    )
    assert report["requester"] == "CRI" and report["responder"] == "PAN"

    # An insider edits the stored decision of entry 1: verification names the entry.
    with sqlite3.connect(homes["PAN"] / "enlace.db") as db:
        db.execute("UPDATE audit_entries SET reason = 'nothing happened' WHERE seq = 1")
    tampered = enlace("audit", "verify", "--home", str(homes["PAN"]), check=False)
    assert tampered.returncode == 1
    assert "audit entry 1" in tampered.stderr
