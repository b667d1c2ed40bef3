"""Nodes on distinct loopback hosts (127.0.0.2, .3, .4 — Linux routes all of 127/8 to lo):
one is cut off; the others keep serving, and ``peers`` and ``doctor`` report the missing one."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crypto.signing import SigningKey
from node.demo.federation import free_port
from node.demo.processes import NodeProcess
from node.home import NodeHome, init_home
from node.trust.authoring import add_member, new_directory, sign_directory
from node.trust.directory import DirectoryKey
from node.trust.freshness import install_directory

HOSTS = {"PAN": "127.0.0.2", "CRI": "127.0.0.3", "HND": "127.0.0.4"}


def enlace(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


def federation(root: Path) -> dict[str, NodeHome]:
    now = dt.datetime.now(dt.UTC)
    homes = {
        country: init_home(
            root / country.lower(),
            country=country,
            name=country,
            endpoint=f"{host}:{free_port(host)}",
            roles=("member",),
            now=now,
        )
        for country, host in HOSTS.items()
    }
    keys = [SigningKey.generate() for _ in range(2)]
    directory = new_directory(
        version=1,
        issued_at=now,
        expires_at=now + dt.timedelta(days=30),
        threshold=2,
        directory_keys=[
            DirectoryKey.from_public_key(k.public_key, f"k{i}") for i, k in enumerate(keys)
        ],
    )
    for home in homes.values():
        directory = add_member(directory, home.member())
    for key in keys:
        directory = sign_directory(directory, key)
    for home in homes.values():
        install_directory(home.root, directory, now)
    return homes


@pytest.mark.slow
def test_one_host_cut_off_the_others_keep_serving(tmp_path: Path) -> None:
    homes = federation(tmp_path)
    nodes = {c: NodeProcess(c, h, h.member().endpoint) for c, h in homes.items()}
    for node in nodes.values():
        node.start()
    try:
        deadline = time.monotonic() + 90
        for node in nodes.values():
            node.wait_ready(deadline)
        # Each node is bound to its own address only.
        port = int(nodes["PAN"].endpoint.rsplit(":", 1)[1])
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.3", port)) != 0

        before = json.loads(enlace("peers", "--home", str(homes["PAN"].root), "--json").stdout)
        assert {p["country"]: p["reachable"] for p in before} == {"CRI": True, "HND": True}

        nodes["HND"].kill()  # the host drops off the network
        after = enlace("peers", "--home", str(homes["PAN"].root), "--json")
        rows = {p["country"]: p for p in json.loads(after.stdout)}
        assert rows["CRI"]["reachable"] is True and rows["CRI"]["directory_version"] == 1
        assert rows["HND"]["reachable"] is False and "127.0.0.4" in rows["HND"]["error"]

        doctor = enlace("doctor", "--home", str(homes["CRI"].root), "--json", "--timeout", "2")
        assert doctor.returncode == 1, doctor.stderr
        checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
        assert checks["peer PAN"]["status"] == "ok"
        assert checks["peer HND"]["status"] == "fail" and checks["peer HND"]["fix"]
        assert nodes["PAN"].healthy() and nodes["CRI"].healthy()
    finally:
        codes = {c: n.stop() for c, n in nodes.items()}
    assert codes["PAN"] == 0 and codes["CRI"] == 0
