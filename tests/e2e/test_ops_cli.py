"""The operations commands as an operator runs them: rotate, doctor, health, backup, restore."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from node.demo.federation import create_federation
from node.runtime import open_runtime


def enlace(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.mark.slow
def test_rotate_doctor_health_backup_restore(tmp_path: Path) -> None:
    federation = create_federation(tmp_path / "fed", ("PAN",), dt.datetime.now(dt.UTC))
    home = str(federation.homes["PAN"].root)
    open_runtime(federation.homes["PAN"]).close()  # creates the schema, as serve would

    rotated = enlace("rotate-signing-key", "--home", home, "--activate-in-hours", "24", "--json")
    assert rotated.returncode == 0, rotated.stderr
    new_key = json.loads(rotated.stdout)["new_key_id"]
    listed = json.loads((tmp_path / "fed" / "pan" / "member.json").read_text())["signing_keys"]
    assert [k["key_id"] for k in listed][-1] == new_key and len(listed) == 2

    doctor = enlace("doctor", "--home", home, "--no-peers", "--json")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr  # warnings only
    report = json.loads(doctor.stdout)
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert report["status"] == "warn" and statuses["signing-rotation"] == "warn"
    assert statuses["signing-key"] == "ok" and statuses["migrations"] == "ok"

    health = enlace("health", "--home", home, "--timeout", "1", "--json")
    assert health.returncode == 1  # not serving
    assert json.loads(health.stdout)["status"].startswith("unreachable")

    archive = tmp_path / "pan.tar.gz"
    assert enlace("backup", "--home", home, "--out", str(archive)).returncode == 0
    restored = enlace("restore", str(archive), "--home", str(tmp_path / "new"), "--json")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["country"] == "PAN"
    again = enlace("restore", str(archive), "--home", str(tmp_path / "new"))
    assert again.returncode == 1 and "already holds a node" in again.stderr
