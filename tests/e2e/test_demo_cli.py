"""``enlace demo --keep-running`` on a real federation: output in order, nodes listed with the
command that stops them, a re-run refused while they run, and ``--stop`` stopping them.

Why: a re-run deleted ``demo-home`` under the running nodes and orphaned them; the ping table
came out after step 9; step 5 promised a fetched copy it never showed; no step showed a peer
pulling a protected matrix. Loopback only, bounded waits, every node stopped in ``finally``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.demo.processes import NodeProcess, serves_home
from node.demo.run import PID_FILE, stop_demo
from node.home import NodeHome

COUNTRIES = "PAN,CRI,MEX"  # enough for the fetch (CRI from PAN) and the matrix (CRI from MEX)


def _enlace(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "100"},
    )


def _gone(pid: int, home: Path) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not serves_home(pid, home):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_keep_running_rerun_refused_then_stopped(tmp_path: Path) -> None:
    root = tmp_path / "demo-home"
    pids: dict[str, int] = {}
    try:
        first = _enlace("demo", "--countries", COUNTRIES, "--keep-running", cwd=tmp_path)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        out = first.stdout
        assert first.stderr == ""
        # Every step's narration is on stdout, in order, the ping table right after step 4.
        positions = [out.index(f"\n{n}. ") for n in range(2, 10)]
        assert positions == sorted(positions)
        assert out.index("\n4. ") < out.index("Signed Ping latency") < out.index("\n5. ")
        # Step 5 shows the fetched copy and a peer pulling a protected matrix.
        flat = " ".join(out.split())
        assert re.search(
            r"CRI fetched PAN's countersigned copy of PAN-CRI-MATCH version 1: signed by "
            r"PAN \(key [0-9a-f]+\) and CRI \(key [0-9a-f]+\); both signatures verify",
            flat,
        ), flat
        assert "A peer pulls a protected matrix: CRI asks MEX for M03" in flat
        assert "MEX answers under MEX-CRI-STATS, disclosure profile cell_key" in flat
        assert re.search(r"\d+ primary and \d+ secondary suppressions", flat)
        # Each node is listed with its pid and endpoint, then the command that stops them.
        for country in ("PAN", "CRI", "MEX", "CRM"):
            home = root / country.lower()
            endpoint = NodeHome(home).member().endpoint
            match = re.search(rf"{country}: pid (\d+), {re.escape(endpoint)}, home ", out)
            assert match, out[-1500:]
            pids[country] = int(match.group(1))
            assert (home / PID_FILE).read_text().strip() == match.group(1)
            assert serves_home(pids[country], home)
        assert out.rstrip().endswith("Stop them with: enlace demo --stop --dir demo-home")

        again = _enlace("demo", "--countries", COUNTRIES, cwd=tmp_path, timeout=60)
        assert again.returncode == 1
        assert "demo nodes are still running in demo-home" in again.stderr
        assert "enlace demo --stop --dir demo-home" in again.stderr
        assert "Traceback" not in again.stderr
        for country, pid in pids.items():
            home = root / country.lower()
            assert serves_home(pid, home), f"{country} was disturbed by the refused re-run"
            node = NodeProcess(country, NodeHome(home), NodeHome(home).member().endpoint)
            assert node.healthy(timeout=5.0), f"{country} no longer answers"

        stopped = _enlace("demo", "--stop", "--dir", "demo-home", cwd=tmp_path, timeout=60)
        assert stopped.returncode == 0, stopped.stderr
        for country, pid in pids.items():
            assert f"{country}: pid {pid} " in stopped.stdout
            assert _gone(pid, root / country.lower()), f"{country} (pid {pid}) still runs"
            assert not (root / country.lower() / PID_FILE).exists()
        assert stop_demo(root) == []
    finally:
        if (root / ".enlace-demo").exists():
            stop_demo(root)
        for country, pid in pids.items():  # only if --stop failed, and only our own nodes
            if serves_home(pid, root / country.lower()):
                os.kill(pid, signal.SIGKILL)
